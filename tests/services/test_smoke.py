from decimal import Decimal

from app.models import LoanStatus
from app.services import repayments
from tests.factories import SYSTEM


def test_loan_lifecycle_to_completion(active_loan):
    assert active_loan.status == LoanStatus.ACTIVE
    assert len(active_loan.installments) == 6
    repayments.record_repayment(active_loan.id, active_loan.balance, "cash", None, SYSTEM)
    assert active_loan.balance == Decimal("0.00")
    assert active_loan.status == LoanStatus.COMPLETED


def test_login(admin_client):
    assert admin_client.get("/dashboard").status_code == 200
