"""Test records, made through the services so that they obey the same rules as real ones."""

import itertools
from datetime import date
from decimal import Decimal

from app.extensions import db
from app.models import InterestMethod, LoanProduct, StaffUser
from app.services import loans, members
from app.services import staff as staff_service
from app.services.actor import Actor

_counter = itertools.count(1)
SYSTEM = Actor.system("tests")


def staff(
    role: str, email: str | None = None, password: str = "correct horse battery"
) -> StaffUser:
    email = email or f"{role}{next(_counter)}@daystar.co.ke"
    return staff_service.create_user(email, password, role, SYSTEM)


def member(**overrides):
    n = next(_counter)
    data = {
        "first_name": "Wanjiku",
        "last_name": f"Kamau{n}",
        "phone": f"07{n % 100_000_000:08d}",
        "email": f"member{n}@example.co.ke",
        "national_id": f"{20_000_000 + n}",
        "joined_on": date(2024, 1, 15),
    }
    data.update(overrides)
    return members.create_member(data, SYSTEM)


def product(
    method: str = InterestMethod.REDUCING_BALANCE, rate: str = "12", **overrides
) -> LoanProduct:
    values = {
        "name": f"Product {next(_counter)}",
        "interest_rate": Decimal(rate),
        "interest_method": method,
        "min_amount": Decimal("1000"),
        "max_amount": Decimal("1000000"),
        "min_term_months": 1,
        "max_term_months": 60,
        "processing_fee_rate": Decimal("1"),
        "active": True,
    }
    item = LoanProduct(**(values | overrides))
    db.session.add(item)
    db.session.commit()
    return item


def pending_loan(member, product, amount=Decimal("12000"), term=6, applied_on=date(2026, 1, 2)):
    return loans.submit_application(
        member.id, product.id, amount, term, "School fees", SYSTEM, applied_on
    )


def approved_loan(member, product, amount=Decimal("12000"), term=6):
    loan = pending_loan(member, product, amount, term)
    return loans.approve(loan.id, SYSTEM, on=date(2026, 1, 3))


def active_loan(member, product, amount=Decimal("12000"), term=6, disbursed_on=date(2026, 1, 5)):
    loan = approved_loan(member, product, amount, term)
    return loans.mark_disbursed(loan.id, SYSTEM, "bank", f"TRF{next(_counter):06d}", disbursed_on)
