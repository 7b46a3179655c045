"""`flask --app wsgi doctor`: checks the deployment and prints what is wrong and how to fix it."""

import json

import click
from flask import current_app
from flask.cli import with_appcontext

from app.services import doctor

COLOURS = {doctor.Status.OK: "green", doctor.Status.WARN: "yellow", doctor.Status.FAIL: "red"}


def _print_text(results: list[doctor.CheckResult]) -> None:
    width = max(len(result.name) for result in results)
    click.echo(f"Daystar doctor: the {current_app.config.get('ENV_NAME')} configuration")
    for result in results:
        status = click.style(f"{result.status:<4}", fg=COLOURS[result.status], bold=True)
        click.echo(f"{status}  {result.name:<{width}}  {result.message}")
        if result.fix:
            click.echo(f"      {'':<{width}}  fix: {result.fix}")
    counts = dict.fromkeys(doctor.Status, 0)
    for result in results:
        counts[result.status] += 1
    click.echo(", ".join(f"{counts[status]} {status}" for status in doctor.Status))


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@with_appcontext
def doctor_cli(as_json: bool) -> None:
    """Check the configuration, database and migrations, stored secrets, Redis, the RQ workers
    and cron scheduler, M-Pesa and the notification providers. Exits 1 if any check FAILs."""
    results = doctor.run_checks()
    failed = doctor.has_failures(results)
    if as_json:
        counts = dict.fromkeys(map(str, doctor.Status), 0)
        for result in results:
            counts[str(result.status)] += 1
        report = {
            "ok": not failed,
            "environment": current_app.config.get("ENV_NAME"),
            "counts": counts,
            "checks": [result.as_dict() for result in results],
        }
        click.echo(json.dumps(report, indent=2))
    else:
        _print_text(results)
    if failed:
        raise SystemExit(1)
