"""The staff CLI: create users and set passwords, never echoing the password."""

from werkzeug.security import check_password_hash

from app.extensions import db
from app.models import AuditLog, StaffUser


def test_create_user_with_password_from_stdin(app):
    result = app.test_cli_runner().invoke(
        args=[
            "users",
            "create",
            "Akinyi@Daystar.co.ke",
            "--role",
            "loan_officer",
            "--password-stdin",
        ],
        input="a long enough secret\n",
    )
    assert result.exit_code == 0, result.output
    assert "a long enough secret" not in result.output
    user = db.session.query(StaffUser).one()
    assert user.email == "akinyi@daystar.co.ke" and user.role == "loan_officer"
    assert check_password_hash(user.password_hash, "a long enough secret")
    assert db.session.query(AuditLog).filter_by(action="staff.created").count() == 1


def test_create_user_from_prompt_and_set_password(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["users", "create", "otieno@daystar.co.ke", "--role", "admin"],
        input="first password 1\nfirst password 1\n",
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        args=["users", "set-password", "otieno@daystar.co.ke", "--password-stdin"],
        input="second password 2\n",
    )
    assert result.exit_code == 0, result.output
    user = db.session.query(StaffUser).one()
    db.session.refresh(user)
    assert check_password_hash(user.password_hash, "second password 2")


def test_cli_errors_are_clear(app):
    runner = app.test_cli_runner()
    short = runner.invoke(
        args=["users", "create", "a@daystar.co.ke", "--role", "admin", "--password-stdin"],
        input="short\n",
    )
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    role = runner.invoke(
        args=["users", "create", "a@daystar.co.ke", "--role", "boss", "--password-stdin"],
        input="long enough pw\n",
    )
    assert role.exit_code == 2 and "boss" in role.output
    missing = runner.invoke(
        args=["users", "set-password", "nobody@daystar.co.ke", "--password-stdin"],
        input="long enough pw\n",
    )
    assert missing.exit_code == 1 and "no staff account" in missing.output
    assert db.session.query(StaffUser).count() == 0
