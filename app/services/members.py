"""Members: registration, edits and search."""

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from app import clock
from app.extensions import db
from app.models import Member, MemberStatus
from app.services import audit, snapshots
from app.services.actor import Actor
from app.services.errors import ValidationFailed
from app.services.events import record_event
from app.services.lookup import get_or_not_found
from app.services.pagination import Page, paginate
from app.services.validation import normalize_email, normalize_phone, parse_date


def member_number_for(member_id: int) -> str:
    return f"DST{member_id:06d}"


def search_key(first_name: str, last_name: str) -> tuple[str, str]:
    """The lower-case columns that name search matches by prefix."""
    return f"{first_name} {last_name}".lower(), last_name.lower()


def clean_member_data(data: dict, member_id: int | None = None) -> dict:
    """Validated, normalised member fields; ValidationFailed naming every bad field."""
    errors: dict[str, str] = {}
    clean: dict = {}
    for name in ("first_name", "last_name"):
        value = (data.get(name) or "").strip()
        if not value:
            errors[name] = "This field is required."
        elif len(value) > 80:
            errors[name] = "Use at most 80 characters."
        clean[name] = value
    try:
        clean["phone"] = normalize_phone(data.get("phone", ""))
    except ValueError as exc:
        errors["phone"] = str(exc)
    try:
        clean["email"] = normalize_email(data.get("email"))
    except ValueError as exc:
        errors["email"] = str(exc)
    national_id = (data.get("national_id") or "").strip()
    if not national_id.isdigit() or not 6 <= len(national_id) <= 10:
        errors["national_id"] = "Enter the national ID number: 6 to 10 digits."
    elif national_id_taken(national_id, member_id):
        errors["national_id"] = "Another member already has this national ID."
    clean["national_id"] = national_id
    status = data.get("status") or MemberStatus.ACTIVE
    if status not in set(MemberStatus):
        errors["status"] = "Choose active, dormant or exited."
    clean["status"] = status
    joined = data.get("joined_on") or clock.today()
    clean["joined_on"] = parse_date(joined, "joined_on", errors)
    clean["sms_opt_in"] = bool(data.get("sms_opt_in", True))
    clean["email_opt_in"] = bool(data.get("email_opt_in", True))
    if errors:
        raise ValidationFailed(errors)
    return clean


def national_id_taken(national_id: str, except_member_id: int | None = None) -> bool:
    query = select(Member.id).where(Member.national_id == national_id)
    if except_member_id is not None:
        query = query.where(Member.id != except_member_id)
    return db.session.scalar(query.limit(1)) is not None


def create_member(data: dict, actor: Actor) -> Member:
    """Register a member with a new DST number; records `member.created`."""
    clean = clean_member_data(data)
    member = Member(**clean)
    member.search_name, member.search_last_name = search_key(member.first_name, member.last_name)
    db.session.add(member)
    try:
        db.session.flush()
        member.member_number = member_number_for(member.id)
        db.session.flush()
        audit.record(
            actor, "member.created", "member", member.id, member_number=member.member_number
        )
        record_event("member.created", "member", member.id, snapshots.member(member))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ValidationFailed(
            {"national_id": "Another member already has this national ID."}
        ) from None
    return member


def update_member(member_id: int, data: dict, actor: Actor) -> Member:
    """Change a member's details; the audit entry lists the fields that changed."""
    member = get_member(member_id)
    clean = clean_member_data(data, member_id)
    changed = {k: v for k, v in clean.items() if getattr(member, k) != v}
    for name, value in changed.items():
        setattr(member, name, value)
    member.search_name, member.search_last_name = search_key(member.first_name, member.last_name)
    if changed:
        audit.record(actor, "member.updated", "member", member.id, fields=sorted(changed))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ValidationFailed(
            {"national_id": "Another member already has this national ID."}
        ) from None
    return member


def get_member(member_id: int) -> Member:
    return get_or_not_found(Member, member_id, f"There is no member with id {member_id}.")


def find_by_number(text: str) -> Member | None:
    """The member a member number (DST000123, any case or spacing) names, or None."""
    number = "".join(text.split()).upper()
    return db.session.scalar(select(Member).where(Member.member_number == number))


def _prefix(column, text: str):
    # A range instead of LIKE: an ordinary index serves it on SQLite and PostgreSQL alike.
    return (column >= text) & (column < text + "\uffff")


def search_members(
    q: str = "", status: str | None = None, page: int = 1, per_page: int = 25
) -> Page:
    """Members whose name, number, phone or national ID starts with `q`, newest first."""
    query = select(Member)
    text = (q or "").strip()
    if text:
        lowered = " ".join(text.lower().split())
        conditions = [
            _prefix(Member.search_name, lowered),
            _prefix(Member.search_last_name, lowered),
        ]
        upper = text.upper().replace(" ", "")
        if upper.startswith("DST"):
            conditions.append(_prefix(Member.member_number, upper))
        digits = "".join(ch for ch in text if ch.isdigit())
        if digits and len(digits) == len(text.replace(" ", "").lstrip("+")):
            conditions.append(_prefix(Member.national_id, digits))
            phone = "254" + digits[1:] if digits.startswith("0") else digits
            conditions.append(_prefix(Member.phone, phone))
        query = query.where(or_(*conditions))
    if status:
        query = query.where(Member.status == status)
    # With a search term, `id + 0` stops the planner from walking the whole table in id order
    # looking for rare matches (SQLite does, for a bound LIMIT); the few matches are sorted instead.
    newest_first = (Member.id + 0).desc() if text else Member.id.desc()
    return paginate(query.order_by(newest_first), page, per_page)
