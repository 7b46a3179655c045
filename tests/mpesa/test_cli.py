"""`flask mpesa stk-push | b2c | status` against the sandbox."""

import json
from decimal import Decimal

from app.extensions import db
from app.models import Loan, LoanStatus
from tests import factories
from tests.mpesa.conftest import settle


def invoke(app, *args):
    return app.test_cli_runner().invoke(args=["mpesa", *args])


def test_stk_push_prints_the_ids_and_status_finds_it(app, member, mpesa_live, run_jobs):
    result = invoke(app, "stk-push", "--phone", member.phone, "--amount", "250",
                    "--member-id", str(member.id), "--purpose", "contribution")  # fmt: skip
    assert result.exit_code == 0, result.output
    sent = json.loads(result.stdout)
    assert sent["success"] is True
    assert sent["transaction"]["checkout_request_id"] == sent["checkout_request_id"]
    settle(mpesa_live, run_jobs)
    shown = json.loads(invoke(app, "status", sent["checkout_request_id"]).stdout)["transaction"]
    assert (shown["status"], shown["amount"]) == ("completed", "250.00")
    by_receipt = invoke(app, "status", shown["mpesa_receipt_number"].lower())
    assert json.loads(by_receipt.stdout)["transaction"]["id"] == shown["id"]


def test_stk_push_refused_exits_1_with_the_reason(app, member, mpesa_live):
    result = invoke(app, "stk-push", "--phone", "0201234567", "--amount", "250",
                    "--member-id", str(member.id), "--purpose", "contribution")  # fmt: skip
    assert result.exit_code == 1
    assert "phone" in json.loads(result.stdout)["message"]


def test_b2c_disburses_a_loan_and_refuses_a_second_time(app, member, product, mpesa_live, run_jobs):
    loan = factories.approved_loan(member, product, amount=Decimal("5000"), term=6)
    result = invoke(app, "b2c", "--loan-id", str(loan.id))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["transaction"]["status"] == "pending"
    settle(mpesa_live, run_jobs)
    assert db.session.get(Loan, loan.id).status == LoanStatus.ACTIVE
    again = invoke(app, "b2c", "--loan-id", str(loan.id))
    assert again.exit_code == 1
    assert "only an approved loan" in again.output


def test_status_of_an_unknown_id_is_an_error(app, mpesa_settings):
    result = invoke(app, "status", "NOSUCHRECEIPT")
    assert result.exit_code == 1
    assert "No M-Pesa transaction" in result.output
