"""M-Pesa test helpers: settings through the environment overrides, the official samples, and
transactions recorded as if we had sent the requests the samples answer."""

import json
from decimal import Decimal
from pathlib import Path

from app.extensions import db
from app.models import MpesaStatus, MpesaTransaction, MpesaType, PaymentPurpose
from app.services.actor import Actor
from tests import factories
from tests.fixtures.mpesa import SECRET

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "mpesa"  # copied from ../shared/reference


def sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text(), parse_float=Decimal)


def sample_bytes(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def callback_path(kind: str) -> str:
    return f"/callbacks/mpesa/{SECRET}/{kind}"


def sent_stk(
    member, stk: dict, purpose=PaymentPurpose.CONTRIBUTION, loan=None, amount=None, phone=None
):
    """A pending STK request that the given STK callback sample answers."""
    callback = stk["Body"]["stkCallback"]
    items = {
        i["Name"]: i.get("Value") for i in callback.get("CallbackMetadata", {}).get("Item", [])
    }
    txn = MpesaTransaction(
        transaction_type=MpesaType.STK_PUSH,
        status=MpesaStatus.PENDING,
        environment="simulator",
        merchant_request_id=callback["MerchantRequestID"],
        checkout_request_id=callback["CheckoutRequestID"],
        phone_number=phone or str(items.get("PhoneNumber") or member.phone),
        amount=Decimal(str(amount or items.get("Amount") or "100")).quantize(Decimal("0.01")),
        account_reference=member.member_number,
        member_id=member.id,
        loan_id=loan.id if loan else None,
        payment_purpose=purpose,
        contribution_kind="deposit" if purpose == PaymentPurpose.CONTRIBUTION else None,
    )
    db.session.add(txn)
    db.session.commit()
    return txn


def staff_actor(role="loan_officer"):
    return Actor.staff(factories.staff(role=role))


def settle(sandbox, run_jobs) -> list[dict]:
    """Send our queued requests, let the sandbox deliver its callbacks, and process them."""
    run_jobs()
    delivered = sandbox.flush()
    assert all(d["status_code"] == 200 for d in delivered if not d.get("dropped")), delivered
    run_jobs()
    db.session.expire_all()
    return delivered
