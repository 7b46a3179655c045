"""Everything the Daraja simulator remembers, in memory, behind one lock (per app instance;
a restart forgets it, as befits a simulator)."""

import threading
from collections import Counter
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal

from sandbox.daraja.outcomes import Plan

ZERO = Decimal("0.00")


@dataclass
class Token:
    value: str
    consumer_key: str
    issued_at: float
    expires_at: float
    revoked: bool = False


@dataclass
class Transaction:
    """One request the sandbox accepted: an STK push, a B2C payment, a C2B payment or a query."""

    kind: str  # stk | b2c | c2b | status_query | balance_query
    id: str  # CheckoutRequestID, ConversationID or TransID
    shortcode: str
    created_at: datetime
    status: str = "pending"  # pending | completed | failed
    phone: str = ""
    amount: int | None = None
    name: str = ""
    result_code: int | str | None = None
    result_desc: str = ""
    receipt: str = ""
    completed_at: datetime | None = None
    merchant_request_id: str = ""
    checkout_request_id: str = ""
    conversation_id: str = ""
    originator_conversation_id: str = ""
    command: str = ""  # TransactionType or CommandID
    account_reference: str = ""
    description: str = ""
    remarks: str = ""
    occasion: str = ""
    callback_url: str = ""
    result_url: str = ""
    timeout_url: str = ""
    api_version: str = ""
    initiator_ok: bool = True
    plan: Plan | None = None
    charge: Decimal = ZERO
    balance_after: Decimal | None = None
    third_party_trans_id: str = ""
    target_id: str = ""  # status query: the transaction it found
    query_transaction_id: str = ""
    query_conversation_id: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status != "pending"

    def to_dict(self) -> dict:
        data = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.isoformat(timespec="seconds")
            elif isinstance(value, Decimal):
                value = str(value)
            elif isinstance(value, Plan):
                value = {"result": value.result, "callback": value.callback, "rule": value.rule}
            data[f.name] = value
        return data


@dataclass
class C2BRegistration:
    shortcode: str
    response_type: str
    confirmation_url: str
    validation_url: str
    version: str


@dataclass
class Accounts:
    """An organisation's M-Pesa accounts (the ones the Account Balance API reports)."""

    working: Decimal
    utility: Decimal
    float: Decimal = ZERO
    charges_paid: Decimal = ZERO
    settlement: Decimal = ZERO


@dataclass
class LedgerRow:
    """One line of the organisation portal statement of the Utility Account."""

    shortcode: str
    receipt: str
    completed_at: datetime
    initiated_at: datetime
    details: str
    status: str  # Completed | Failed
    paid_in: Decimal | None
    withdrawn: Decimal | None  # negative, as the portal writes it
    balance: Decimal
    reason_type: str
    other_party: str
    linked_id: str = ""
    account_no: str = ""


class DarajaState:
    def __init__(self, config: dict):
        self.lock = threading.RLock()
        self.config = config
        self.reset()

    def default_mode(self) -> dict:
        return {
            "mode": self.config["SANDBOX_DARAJA_MODE"],
            "delay": self.config["SANDBOX_CALLBACK_DELAY"],
            "drop_callbacks": False,
            "duplicate_callbacks": False,
            "stk_outcome": None,
            "b2c_outcome": None,
            "stk_balance_item": False,
            "stk_c2b_confirmation": False,
            "c2b_msisdn": self.config["SANDBOX_DARAJA_C2B_MSISDN"],
        }

    def reset(self) -> None:
        """Forgets every token, transaction, registration and balance change; mode back to config."""
        with self.lock:
            self.mode = self.default_mode()
            self.tokens: dict[str, Token] = {}
            self.current_token: dict[str, str] = {}
            self.tokens_issued: Counter = Counter()
            self.transactions: dict[str, Transaction] = {}
            self.by_receipt: dict[str, Transaction] = {}
            self.by_originator_id: dict[str, Transaction] = {}
            self.by_checkout_id: dict[str, Transaction] = {}
            self.c2b_urls: dict[str, C2BRegistration] = {}
            self.customers: dict[str, str] = {}
            self.ledger: list[LedgerRow] = []
            self.accounts = {
                code: Accounts(
                    working=self.config["SANDBOX_DARAJA_WORKING_BALANCE"],
                    utility=self.config["SANDBOX_DARAJA_UTILITY_BALANCE"],
                )
                for code in self.config["SANDBOX_DARAJA_SHORTCODES"]
            }
            self.opening_balances = {code: a.utility for code, a in self.accounts.items()}

    def add(self, txn: Transaction) -> Transaction:
        with self.lock:
            self.transactions[txn.id] = txn
            if txn.checkout_request_id:
                self.by_checkout_id[txn.checkout_request_id] = txn
            if txn.originator_conversation_id and txn.kind == "b2c":
                self.by_originator_id[txn.originator_conversation_id] = txn
            if txn.receipt:
                self.by_receipt[txn.receipt] = txn
            return txn

    def set_receipt(self, txn: Transaction, receipt: str) -> None:
        with self.lock:
            txn.receipt = receipt
            self.by_receipt[receipt] = txn

    def find(self, key: str) -> Transaction | None:
        """A transaction by any of its ids: checkout id, conversation id, originator id, receipt."""
        with self.lock:
            return (
                self.transactions.get(key)
                or self.by_checkout_id.get(key)
                or self.by_originator_id.get(key)
                or self.by_receipt.get(key)
            )

    def list(self, kind: str | None = None) -> list[Transaction]:
        with self.lock:
            return [t for t in self.transactions.values() if kind is None or t.kind == kind]

    def pending_prompt_for(self, phone: str) -> Transaction | None:
        """An STK prompt still open on this phone (Daraja then refuses to lock the subscriber)."""
        with self.lock:
            for txn in self.transactions.values():
                if txn.kind == "stk" and txn.phone == phone and not txn.finished:
                    return txn
            return None
