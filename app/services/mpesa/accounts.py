"""Account numbers members type on the paybill: their member number (DST000123) for deposits, or
a loan's account number (LN000045) for repayments; and, when the account names nobody, the payer's
phone number as a fallback."""

import re
from dataclasses import dataclass

from sqlalchemy import select

from app.extensions import db
from app.integrations.daraja_payloads import msisdn_kind
from app.models import Loan, Member
from app.services.lookup import ID_MAX
from app.services.validation import normalize_phone

LOAN_ACCOUNT = re.compile(r"LN0*(\d{1,10})")
MEMBER_NUMBER = re.compile(r"DST\d{6}")


def loan_account(loan_id: int) -> str:
    return f"LN{loan_id:06d}"


@dataclass(frozen=True)
class Account:
    member: Member
    loan: Loan | None = None


def find_account(reference: str | None) -> Account | None:
    """The member (and loan) an account reference names, ignoring case and spaces; None when it
    names nothing we hold."""
    text = re.sub(r"[\s-]", "", reference or "").upper()
    if match := LOAN_ACCOUNT.fullmatch(text):
        loan_id = int(match.group(1))
        loan = db.session.get(Loan, loan_id) if 1 <= loan_id <= ID_MAX else None
        if loan is not None:
            return Account(db.session.get(Member, loan.member_id), loan)
        return None
    if MEMBER_NUMBER.fullmatch(text):
        member = db.session.scalar(select(Member).where(Member.member_number == text))
        return Account(member) if member is not None else None
    return None


def member_by_msisdn(msisdn: str | None) -> Member | None:
    """The one member whose phone a paybill payer's MSISDN is: plain, or hashed as M-Pesa hashes
    it (SHA-256 of 2547...). A masked number names nobody; two members sharing a number neither."""
    text = (msisdn or "").replace(" ", "")
    kind = msisdn_kind(text)
    if kind == "hashed":
        condition = Member.phone_sha256 == text.lower()
    elif kind == "plain":
        try:
            condition = Member.phone == normalize_phone(text)
        except ValueError:
            return None
    else:
        return None
    found = list(db.session.scalars(select(Member).where(condition).limit(2)))
    return found[0] if len(found) == 1 else None
