"""Staff accounts: creation, passwords, and sign-in with lockout after repeated failures."""

from datetime import timedelta

from flask import current_app
from sqlalchemy import func, or_, select
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models import LoginFailure, Role, StaffUser
from app.models.base import utcnow
from app.services import audit
from app.services.actor import Actor
from app.services.errors import NotFound, ServiceError, ValidationFailed
from app.services.validation import normalize_email

MIN_PASSWORD_LENGTH = 10


class LockedOut(ServiceError):
    status_code = 429


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationFailed({"password": f"Use at least {MIN_PASSWORD_LENGTH} characters."})


def create_user(
    email: str, password: str, role: str, actor: Actor, full_name: str = ""
) -> StaffUser:
    """A new active staff account; the password is stored only as a hash."""
    errors = {}
    try:
        email = (normalize_email(email) or "").lower()  # sign-in compares lower-case
    except ValueError as exc:
        errors["email"] = str(exc)
    if not email and "email" not in errors:
        errors["email"] = "Enter an email address."
    if role not in set(Role):
        errors["role"] = f"Choose one of {', '.join(Role)}."
    if email and db.session.scalar(select(StaffUser.id).where(StaffUser.email == email)):
        errors["email"] = "A staff account with this email exists already."
    if errors:
        raise ValidationFailed(errors)
    _check_password(password)
    user = StaffUser(
        email=email,
        password_hash=generate_password_hash(password),
        role=role,
        full_name=full_name.strip(),
    )
    db.session.add(user)
    db.session.flush()
    audit.record(actor, "staff.created", "staff_user", user.id, email=email, role=role)
    db.session.commit()
    return user


def find_user(email: str) -> StaffUser | None:
    return db.session.scalar(
        select(StaffUser).where(StaffUser.email == (email or "").strip().lower())
    )


def set_password(email: str, password: str, actor: Actor) -> StaffUser:
    """Replace a staff member's password."""
    user = find_user(email)
    if user is None:
        raise NotFound(f"There is no staff account for {email}.")
    _check_password(password)
    user.password_hash = generate_password_hash(password)
    audit.record(actor, "staff.password_set", "staff_user", user.id)
    db.session.commit()
    return user


def authenticate(email: str, password: str, ip: str) -> StaffUser:
    """The staff user for these credentials. After too many recent failures for the account or the
    IP, every attempt is refused (LockedOut) until the lockout window has passed."""
    email = (email or "").strip().lower()
    max_failures = current_app.config["LOGIN_MAX_FAILURES"]
    minutes = current_app.config["LOGIN_LOCKOUT_MINUTES"]
    since = utcnow() - timedelta(minutes=minutes)
    recent = db.session.scalar(
        select(func.count(LoginFailure.id)).where(
            LoginFailure.at >= since, or_(LoginFailure.email == email, LoginFailure.ip == ip)
        )
    )
    if recent >= max_failures:
        raise LockedOut(
            f"Too many failed sign-ins. Try again in {minutes} minutes, or ask an administrator."
        )
    user = find_user(email)
    if (
        user is None
        or not user.active
        or not check_password_hash(user.password_hash, password or "")
    ):
        db.session.add(LoginFailure(email=email[:254], ip=ip))
        db.session.commit()
        raise ServiceError("The email or password is wrong, or the account is disabled.")
    user.last_login_at = utcnow()
    audit.record(Actor.staff(user, ip), "staff.signed_in", "staff_user", user.id)
    db.session.commit()
    return user
