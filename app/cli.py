"""Command-line tools: `flask --app wsgi users ...` and `flask --app wsgi seed-demo`."""

import sys

import click
from flask.cli import AppGroup

from app.models import Role
from app.services import staff
from app.services.actor import Actor
from app.services.errors import ServiceError

users = AppGroup("users", help="Manage staff accounts.")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _run(action):
    try:
        return action()
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None


@users.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--name", "full_name", default="", help="The person's name, shown in the portal.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--if-missing", is_flag=True, help="Do nothing when the account exists already.")
def create_user(email, role, full_name, password_stdin, if_missing):
    """Create a staff account."""
    password = _read_password(password_stdin)
    if if_missing and staff.find_user(email) is not None:
        click.echo(f"{email} exists already; left as it is.")
        return
    user = _run(lambda: staff.create_user(email, password, role, Actor.system("cli"), full_name))
    click.echo(f"Created {user.email} ({user.role}).")


@users.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def set_password(email, password_stdin):
    """Set a staff member's password."""
    password = _read_password(password_stdin)
    user = _run(lambda: staff.set_password(email, password, Actor.system("cli")))
    click.echo(f"Password changed for {user.email}.")


@click.command("seed-demo")
@click.option("--members", default=2000, show_default=True, help="How many members to create.")
@click.option("--seed", default=42, show_default=True, help="Same seed, same SACCO.")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database has members already.")
def seed_demo(members, seed, if_empty):
    """Fill the database with a realistic demo SACCO (deterministic for a given seed)."""
    from app.services import demo

    result = demo.seed(members=members, seed=seed, if_empty=if_empty)
    click.echo(result.summary())


def register_cli(app) -> None:
    app.cli.add_command(users)
    app.cli.add_command(seed_demo)
