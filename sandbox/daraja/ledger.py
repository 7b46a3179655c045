"""Money movements: balances and the statement rows they leave (mpesa.md §10). The tariffs are
the sandbox's own round figures, not Safaricom's; charges are withdrawn from the Utility Account
as separate rows linked to their payment."""

import hashlib
from datetime import datetime
from decimal import Decimal

from sandbox.daraja import ids
from sandbox.daraja.state import DarajaState, LedgerRow, Transaction

# (up to amount, charge); the last band has no upper limit.
PAYBILL_TARIFF = ((100, "0.00"), (1_000, "5.00"), (10_000, "20.00"), (None, "50.00"))
B2C_TARIFF = ((100, "0.00"), (1_500, "5.00"), (5_000, "9.00"), (20_000, "11.00"), (None, "13.00"))

# Known sandbox customers (the official samples' MSISDNs and names); others get a made-up name.
SAMPLE_CUSTOMERS = {
    "254705912645": "NICHOLAS JOHN SONGOK",
    "254708374149": "JOHN DOE",
}
_FIRST = ("JOHN", "MARY", "PETER", "GRACE", "JAMES", "FAITH", "DAVID", "ANNE", "JOSEPH", "MERCY")
_LAST = ("KAMAU", "WANJIKU", "OTIENO", "ACHIENG", "MUTUA", "NJERI", "KIPROP", "WAMBUI", "ODHIAMBO")


def charge(amount: int, tariff) -> Decimal:
    for limit, fee in tariff:
        if limit is None or amount <= limit:
            return Decimal(fee)
    raise AssertionError("a tariff's last band has no limit")


def customer_name(state: DarajaState, phone: str) -> str:
    """The registered name M-Pesa shows for a phone: set on the control API, a sample customer,
    or a made-up but stable name."""
    with state.lock:
        if phone in state.customers:
            return state.customers[phone]
    if phone in SAMPLE_CUSTOMERS:
        return SAMPLE_CUSTOMERS[phone]
    digits = int(phone[-6:]) if phone[-6:].isdigit() else 0
    return f"{_FIRST[digits % len(_FIRST)]} {_LAST[(digits // 10) % len(_LAST)]}"


def statement_party(phone: str, name: str) -> str:
    """Other Party Info as the portal masks it: `2547****5678 - JOHN DOE`."""
    return f"{phone[:4]}****{phone[-4:]} - {name}"


def c2b_msisdn(phone: str, style: str) -> str:
    """The MSISDN field of a C2B notification: masked "2547 ***** 126" (Daraja 3.0), unsalted
    SHA-256 of the MSISDN (sandbox since 2025-11), or plain (Daraja 1.0)."""
    if style == "hashed":
        return hashlib.sha256(phone.encode()).hexdigest()
    if style == "plain":
        return phone
    return f"{phone[:4]} ***** {phone[-3:]}"


def _row(state, txn: Transaction, at: datetime, **values) -> LedgerRow:
    row = LedgerRow(shortcode=txn.shortcode, completed_at=at, initiated_at=txn.created_at, **values)
    state.ledger.append(row)
    return row


def pay_in(state: DarajaState, txn: Transaction, at: datetime, reason_type: str, label: str):
    """Credits a customer payment to the Utility Account, then withdraws its charge."""
    amount = Decimal(txn.amount)
    party = statement_party(txn.phone, txn.name)
    with state.lock:
        accounts = state.accounts[txn.shortcode]
        accounts.utility += amount
        _row(
            state,
            txn,
            at,
            receipt=txn.receipt,
            details=f"{label} from {party} Acc. {txn.account_reference}",
            status="Completed",
            paid_in=amount,
            withdrawn=None,
            balance=accounts.utility,
            reason_type=reason_type,
            other_party=party,
            account_no=txn.account_reference,
        )
        txn.charge = charge(txn.amount, PAYBILL_TARIFF)
        if txn.charge:
            accounts.utility -= txn.charge
            _row(
                state,
                txn,
                at,
                receipt=ids.receipt(at),
                details=f"Pay Bill Charge for {txn.receipt}",
                status="Completed",
                paid_in=None,
                withdrawn=-txn.charge,
                balance=accounts.utility,
                reason_type="Business Pay Bill Charge",
                other_party="",
                linked_id=txn.receipt,
            )
        txn.balance_after = accounts.utility


def pay_out(state: DarajaState, txn: Transaction, at: datetime) -> None:
    """Debits a B2C payment and its charge from the Utility Account."""
    amount = Decimal(txn.amount)
    party = statement_party(txn.phone, txn.name)
    with state.lock:
        accounts = state.accounts[txn.shortcode]
        accounts.utility -= amount
        _row(
            state,
            txn,
            at,
            receipt=txn.receipt,
            details=f"Business Payment to {party}",
            status="Completed",
            paid_in=None,
            withdrawn=-amount,
            balance=accounts.utility,
            reason_type="Business Payment to Customer",
            other_party=party,
            account_no=txn.occasion,
        )
        txn.charge = charge(txn.amount, B2C_TARIFF)
        if txn.charge:
            accounts.utility -= txn.charge
            _row(
                state,
                txn,
                at,
                receipt=ids.receipt(at),
                details=f"Business Payment Charge for {txn.receipt}",
                status="Completed",
                paid_in=None,
                withdrawn=-txn.charge,
                balance=accounts.utility,
                reason_type="Business Payment to Customer Charge",
                other_party="",
                linked_id=txn.receipt,
            )
        txn.balance_after = accounts.utility


def failed(state: DarajaState, txn: Transaction, at: datetime, reason_type: str, details: str):
    """A failed attempt: on the statement with its amount, the balance unchanged."""
    amount = Decimal(txn.amount)
    incoming = txn.kind in ("stk", "c2b")
    with state.lock:
        _row(
            state,
            txn,
            at,
            receipt=txn.receipt,
            details=details,
            status="Failed",
            paid_in=amount if incoming else None,
            withdrawn=None if incoming else -amount,
            balance=state.accounts[txn.shortcode].utility,
            reason_type=reason_type,
            other_party=statement_party(txn.phone, txn.name),
            account_no=txn.account_reference,
        )
