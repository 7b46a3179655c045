"""Command-line tools: `flask --app wsgi users ...`, `api-keys ...` and `seed-demo`."""

import sys

import click
from flask.cli import AppGroup

from app.cli_doctor import doctor_cli
from app.cli_mpesa import mpesa_cli
from app.cli_notify import notify_cli
from app.models import Role
from app.services import api_keys, staff
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


api_keys_cli = AppGroup("api-keys", help="Manage accounting API keys.")

CLI_ACTOR = Actor.system("cli")


def _show_new_key(key, plaintext: str, verb: str) -> None:
    # The key alone on stdout (KEY=$(flask api-keys create ...)); the words on stderr.
    click.echo(
        f"{verb} {key.id} '{key.name}' ({key.prefix}…), permissions "
        f"{', '.join(key.permissions)}"
        + (f", expires {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else "")
        + ". Store the key now: it cannot be shown again.",
        err=True,
    )
    click.echo(plaintext)


@api_keys_cli.command("create")
@click.argument("name")
@click.option(
    "--permissions",
    required=True,
    help="Comma-separated: read_loans, read_repayments, read_contributions, read_members, "
    "read_financial_summary, manage_webhooks.",
)
@click.option("--expires-in-days", type=int, default=None, help="Expire after N days (1-3650).")
@click.option("--rate-limit", type=int, default=None, help="Requests a minute (default: config).")
@click.option(
    "--allowed-ip",
    "allowed_ips",
    multiple=True,
    help="Only from this address or CIDR range (repeat for several).",
)
def create_api_key(name, permissions, expires_in_days, rate_limit, allowed_ips):
    """Create an API key and print it, once."""
    key, plaintext = _run(
        lambda: api_keys.create_key(
            name,
            permissions,
            CLI_ACTOR,
            expires_in_days=expires_in_days,
            rate_limit_per_minute=rate_limit,
            allowed_ips=list(allowed_ips),
        )
    )
    _show_new_key(key, plaintext, "Created API key")


def _when(value) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "-"


@api_keys_cli.command("list")
def list_api_keys():
    """List the keys (never the keys themselves: their prefixes)."""
    rows = api_keys.list_keys()
    if not rows:
        click.echo("No API keys.")
        return
    table = [("ID", "NAME", "PREFIX", "PERMISSIONS", "STATUS", "EXPIRES", "LAST USED", "24H")]
    for row in rows:
        key = row.key
        status = row.status
        if status == "rotated":
            status = f"rotated, works until {_when(key.grace_until)}"
        table.append(
            (
                str(key.id),
                key.name,
                key.prefix + "…",
                ",".join(key.permissions),
                status,
                _when(key.expires_at),
                _when(key.last_used_at) + (f" {key.last_used_ip}" if key.last_used_ip else ""),
                str(row.requests_24h),
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    click.echo("Times are UTC.", err=True)


@api_keys_cli.command("revoke")
@click.argument("key_id", type=int)
@click.option("--reason", default=None, help="Why, for the audit log.")
def revoke_api_key(key_id, reason):
    """Revoke a key: it stops working at once."""
    key = _run(lambda: api_keys.revoke_key(key_id, CLI_ACTOR, reason=reason))
    click.echo(f"Revoked API key {key.id} '{key.name}' ({key.prefix}…).")


@api_keys_cli.command("rotate")
@click.argument("key_id", type=int)
@click.option(
    "--grace-hours",
    type=int,
    default=24,
    show_default=True,
    help="How long the old key keeps working.",
)
def rotate_api_key(key_id, grace_hours):
    """Issue a replacement key (printed once); the old one works for the grace period."""
    key, plaintext = _run(lambda: api_keys.rotate_key(key_id, CLI_ACTOR, grace_hours=grace_hours))
    old = api_keys.get_key(key_id)
    _show_new_key(key, plaintext, f"Issued, to replace key {old.id}, API key")
    click.echo(
        f"The old key {old.prefix}… keeps working until {_when(old.grace_until)} UTC.", err=True
    )


@click.command("seed-demo")
@click.option("--members", default=2000, show_default=True, help="How many members to create.")
@click.option("--seed", default=42, show_default=True, help="Same seed, same SACCO.")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database has members already.")
@click.option(
    "--loans-per-member",
    type=click.FloatRange(0, 10),
    help="Average loans a member (default: the usual mix, about 0.6).",
)
@click.option(
    "--instalment-parts",
    default=4,
    show_default=True,
    type=click.IntRange(1, 4),
    help="Most payments an instalment is paid in (1: each instalment at once).",
)
def seed_demo(members, seed, if_empty, loans_per_member, instalment_parts):
    """Fill the database with a realistic demo SACCO (deterministic for a given seed)."""
    from app.services import demo

    result = demo.seed(
        members=members,
        seed=seed,
        if_empty=if_empty,
        loans_per_member=loans_per_member,
        instalment_parts=instalment_parts,
    )
    click.echo(result.summary())


def register_cli(app) -> None:
    app.cli.add_command(users)
    app.cli.add_command(api_keys_cli)
    app.cli.add_command(seed_demo)
    app.cli.add_command(mpesa_cli)
    app.cli.add_command(notify_cli)
    app.cli.add_command(doctor_cli)
