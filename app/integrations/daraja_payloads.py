"""Daraja's callback and result bodies turned into typed values.

Rules every parser follows (../shared/reference/mpesa.md §2.3, §4.3, §6, §7.2):
- items are found by `Name`/`Key`, never by position (`Balance` comes and goes, often without a
  `Value`; parameter order differs between samples);
- result codes are strings (`0` and `"0"` both become `"0"`; `"R000002"` stays as it is);
- money is `Decimal(str(x))`, never float, whether the caller parsed JSON numbers as float or with
  `parse_float=Decimal`; amounts are quantised to two places and more places are an error;
- times are aware datetimes in Africa/Nairobi;
- anything malformed or missing raises `PayloadError` naming each bad field, never KeyError or
  TypeError, so that a callback route can store the body, flag it and answer 400.
"""

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from app.clock import NAIROBI

CENTS = Decimal("0.01")
COMPACT_TIME = "%Y%m%d%H%M%S"
B2C_COMPLETED_TIME = "%d.%m.%Y %H:%M:%S"
HASHED_MSISDN = re.compile(r"[0-9a-fA-F]{64}")
MASKED_MSISDN = re.compile(r"(\d*)\*+(\d*)")


class PayloadError(ValueError):
    """A Daraja body that cannot be used; `errors` maps each bad field to what is wrong with it."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in self.errors.items()))


class _Invalid(Exception):
    """One value that does not convert; the parser records it under the field's name."""


# --- value converters: each returns the typed value or raises _Invalid -------------------------


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return str(int(value))
    raise _Invalid("must be text")


def _code(value: Any) -> str:
    """Result codes arrive as numbers or strings; 0, "0" and 0.0 all become "0"."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = _text(value)
    if not text:
        raise _Invalid("is empty")
    return text


def _money(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise _Invalid("must be an amount")
    if isinstance(value, float):
        value = str(value)  # the shortest repr: 8959269.6, never 8959269.5999999...
    if isinstance(value, str):
        value = value.strip()
    if not isinstance(value, int | str | Decimal):
        raise _Invalid("must be an amount")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise _Invalid(f"is not an amount ({str(value)[:40]!r})") from None
    if not amount.is_finite():
        raise _Invalid("is not a finite amount")
    quantised = amount.quantize(CENTS)
    if quantised != amount:
        raise _Invalid("has more than two decimal places")
    return quantised


def _positive_money(value: Any) -> Decimal:
    amount = _money(value)
    if amount <= 0:
        raise _Invalid("must be more than zero")
    return amount


def _nairobi_time(value: Any, fmt: str = COMPACT_TIME) -> datetime:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        text = _text(value)
        parsed = datetime.strptime(text, fmt)
        if parsed.strftime(fmt) != text:  # strptime accepts "2019121910"; Daraja pads every field
            raise ValueError(text)
        return parsed.replace(tzinfo=NAIROBI)
    except (_Invalid, ValueError):
        shown = fmt.replace("%Y", "YYYY").replace("%m", "MM").replace("%d", "DD")
        shown = shown.replace("%H", "HH").replace("%M", "mm").replace("%S", "ss")
        raise _Invalid(f"is not a time in the form {shown}") from None


def _phone_digits(value: Any) -> str:
    text = _text(value)
    if not text.isdigit():
        raise _Invalid("is not a phone number")
    return text


class _Reader:
    """Reads fields out of one JSON object, collecting every problem instead of stopping."""

    def __init__(self, errors: dict[str, str], prefix: str = ""):
        self.errors = errors
        self.prefix = prefix

    def name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def convert(self, key: str, value: Any, convert: Callable[[Any], Any], required: bool) -> Any:
        """`convert(value)`, or None when the value is absent (an error if it is required)."""
        if value is None or (isinstance(value, str) and not value.strip() and convert is not _text):
            if required:
                self.errors[self.name(key)] = "is required"
            return None
        try:
            return convert(value)
        except _Invalid as exc:
            self.errors[self.name(key)] = str(exc)
            return None

    def get(self, data: Mapping, key: str, convert: Callable[[Any], Any], required: bool) -> Any:
        return self.convert(key, data.get(key), convert, required)

    def obj(self, data: Mapping, key: str, required: bool = True) -> Mapping | None:
        value = data.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, Mapping):
            self.errors[self.name(key)] = "is required" if value is None else "must be an object"
            return None
        return value


def _require_object(data: Any) -> Mapping:
    if not isinstance(data, Mapping):
        raise PayloadError({"body": "must be a JSON object"})
    return data


def _items(raw: Any, key_name: str, where: str, errors: dict[str, str]) -> list[tuple[str, Any]]:
    """(key, value) pairs from a list of `{key_name, Value}` objects, or from a single object
    (Daraja sends `ReferenceItem` both ways). A missing `Value` gives None."""
    if raw is None:
        return []
    entries = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(entries, list):
        errors[where] = "must be a list of objects"
        return []
    pairs = []
    for position, entry in enumerate(entries):
        key = entry.get(key_name) if isinstance(entry, Mapping) else None
        if not isinstance(key, str) or not key.strip():
            errors[f"{where}[{position}]"] = f"must be an object with a {key_name}"
            continue
        pairs.append((key.strip(), entry.get("Value")))
    return pairs


def _multimap(pairs: list[tuple[str, Any]]) -> dict[str, tuple]:
    """Key -> every value in order; keys lose their spaces ("Conversation ID" in Daraja 1.0
    results is "ConversationID" in 3.0)."""
    found: dict[str, list] = {}
    for key, value in pairs:
        found.setdefault(key.replace(" ", ""), []).append(value)
    return {key: tuple(values) for key, values in found.items()}


# --- STK Push callback -------------------------------------------------------------------------


@dataclass(frozen=True)
class StkCallback:
    """`Body.stkCallback`; the metadata fields are None unless the payment succeeded."""

    merchant_request_id: str
    checkout_request_id: str
    result_code: str
    result_desc: str
    amount: Decimal | None = None
    receipt: str | None = None
    transaction_date: datetime | None = None
    phone: str | None = None
    balance: Decimal | None = None

    @property
    def succeeded(self) -> bool:
        return self.result_code == "0"


def parse_stk_callback(data: Any) -> StkCallback:
    """The STK callback in `data`; PayloadError unless the ids and result code are there and, on
    success, the amount and receipt too."""
    errors: dict[str, str] = {}
    body = _Reader(errors).obj(_require_object(data), "Body")
    callback = _Reader(errors, "Body.").obj(body, "stkCallback") if body is not None else None
    if callback is None:
        raise PayloadError(errors)
    read = _Reader(errors)
    merchant_request_id = read.get(callback, "MerchantRequestID", _code, required=True)
    checkout_request_id = read.get(callback, "CheckoutRequestID", _code, required=True)
    result_code = read.get(callback, "ResultCode", _code, required=True)
    result_desc = read.get(callback, "ResultDesc", _text, required=False) or ""

    metadata = read.obj(callback, "CallbackMetadata", required=False) or {}
    items: dict[str, Any] = {}
    for name, value in _items(metadata.get("Item"), "Name", "CallbackMetadata.Item", errors):
        if name in items and items[name] != value:
            errors[f"CallbackMetadata.{name}"] = "appears twice with different values"
        items.setdefault(name, value)

    succeeded = result_code == "0"
    meta = _Reader(errors, "CallbackMetadata.")
    amount = meta.convert("Amount", items.get("Amount"), _positive_money, required=succeeded)
    receipt = meta.convert(
        "MpesaReceiptNumber", items.get("MpesaReceiptNumber"), _code, required=succeeded
    )
    transaction_date = meta.convert(
        "TransactionDate", items.get("TransactionDate"), _nairobi_time, required=False
    )
    phone = meta.convert("PhoneNumber", items.get("PhoneNumber"), _phone_digits, required=False)
    balance = meta.convert("Balance", items.get("Balance"), _money, required=False)
    if errors:
        raise PayloadError(errors)
    return StkCallback(
        merchant_request_id=merchant_request_id,
        checkout_request_id=checkout_request_id,
        result_code=result_code,
        result_desc=result_desc,
        amount=amount,
        receipt=receipt,
        transaction_date=transaction_date,
        phone=phone,
        balance=balance,
    )


# --- Result envelope (B2C, B2C time-out, Transaction Status, Account Balance, Reversal) --------


@dataclass(frozen=True)
class DarajaResult:
    """The `Result` envelope. `params` and `reference_items` map each Key (spaces removed) to all
    its values in order, because a key may repeat (`DebitPartyName` in Transaction Status)."""

    result_type: str | None
    result_code: str
    result_desc: str
    originator_conversation_id: str | None
    conversation_id: str | None
    transaction_id: str | None
    params: dict[str, tuple] = field(default_factory=dict)
    reference_items: dict[str, tuple] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.result_code == "0"

    def param(self, key: str, default: Any = None) -> Any:
        """The first value of a result parameter, or `default` when it is absent or has no Value."""
        values = self.params.get(key.replace(" ", ""), ())
        return values[0] if values and values[0] is not None else default

    def param_values(self, key: str) -> tuple:
        return self.params.get(key.replace(" ", ""), ())


def parse_result(data: Any) -> DarajaResult:
    """The `Result` envelope in `data`; PayloadError unless it has a result code and at least one
    of the conversation ids (a time-out body may carry nothing else)."""
    errors: dict[str, str] = {}
    result = _Reader(errors).obj(_require_object(data), "Result")
    if result is None:
        raise PayloadError(errors)
    read = _Reader(errors, "Result.")
    result_type = read.get(result, "ResultType", _code, required=False)
    result_code = read.get(result, "ResultCode", _code, required=True)
    result_desc = read.get(result, "ResultDesc", _text, required=False) or ""
    originator_id = read.get(result, "OriginatorConversationID", _code, required=False)
    conversation_id = read.get(result, "ConversationID", _code, required=False)
    transaction_id = read.get(result, "TransactionID", _code, required=False)
    if not originator_id and not conversation_id and "Result.ConversationID" not in errors:
        errors["Result.ConversationID"] = "is required (or OriginatorConversationID)"

    parameters = read.obj(result, "ResultParameters", required=False) or {}
    params = _items(
        parameters.get("ResultParameter"), "Key", "Result.ResultParameters.ResultParameter", errors
    )
    reference = read.obj(result, "ReferenceData", required=False) or {}
    references = _items(
        reference.get("ReferenceItem"), "Key", "Result.ReferenceData.ReferenceItem", errors
    )
    if errors:
        raise PayloadError(errors)
    return DarajaResult(
        result_type=result_type,
        result_code=result_code,
        result_desc=result_desc,
        originator_conversation_id=originator_id,
        conversation_id=conversation_id,
        transaction_id=transaction_id,
        params=_multimap(params),
        reference_items=_multimap(references),
    )


def _param(result: DarajaResult, errors, key: str, convert, required: bool) -> Any:
    return _Reader(errors, "Result.ResultParameters.").convert(
        key, result.param(key), convert, required
    )


def split_public_name(value: str | None) -> tuple[str | None, str | None]:
    """("254705912645", "NICHOLAS JOHN SONGOK") from "254705912645 - NICHOLAS JOHN SONGOK";
    (None, text) when the text does not start with a phone number."""
    if not value:
        return None, None
    number, separator, name = value.partition(" - ")
    if separator and number.strip().isdigit():
        return number.strip(), name.strip() or None
    return None, value.strip()


@dataclass(frozen=True)
class B2CPayment:
    """What a successful B2C result says about the money sent."""

    receipt: str
    amount: Decimal
    recipient_phone: str | None
    recipient_name: str | None
    completed_at: datetime | None
    recipient_registered: bool | None
    utility_balance: Decimal | None
    working_balance: Decimal | None
    charges_paid_balance: Decimal | None


def b2c_payment(result: DarajaResult) -> B2CPayment:
    """The payment details of a successful B2C result; PayloadError for a failed result or one
    without a receipt and amount (TransactionID alone is no proof: failures carry one too)."""
    if not result.succeeded:
        raise PayloadError({"Result.ResultCode": f"is {result.result_code}, not a success"})
    errors: dict[str, str] = {}
    receipt = _param(result, errors, "TransactionReceipt", _code, required=True)
    amount = _param(result, errors, "TransactionAmount", _positive_money, required=True)
    public_name = _param(result, errors, "ReceiverPartyPublicName", _text, required=False)
    completed_at = _param(
        result,
        errors,
        "TransactionCompletedDateTime",
        lambda value: _nairobi_time(value, B2C_COMPLETED_TIME),
        required=False,
    )
    utility = _param(result, errors, "B2CUtilityAccountAvailableFunds", _money, required=False)
    working = _param(result, errors, "B2CWorkingAccountAvailableFunds", _money, required=False)
    charges = _param(result, errors, "B2CChargesPaidAccountAvailableFunds", _money, required=False)
    registered = {"Y": True, "N": False}.get(
        str(result.param("B2CRecipientIsRegisteredCustomer", "")).strip().upper()
    )
    if errors:
        raise PayloadError(errors)
    phone, name = split_public_name(public_name)
    return B2CPayment(
        receipt=receipt,
        amount=amount,
        recipient_phone=phone,
        recipient_name=name,
        completed_at=completed_at,
        recipient_registered=registered,
        utility_balance=utility,
        working_balance=working,
        charges_paid_balance=charges,
    )


@dataclass(frozen=True)
class AccountBalance:
    """One account of an Account Balance result (ERPNext's reading of the `|` fields)."""

    name: str
    currency: str
    current: Decimal
    available: Decimal | None
    reserved: Decimal | None
    uncleared: Decimal | None


def parse_account_balances(text: Any) -> dict[str, AccountBalance]:
    """Accounts by name from "Working Account|KES|700000.00|700000.00|0.00|0.00&Utility Account|...";
    PayloadError for a group without a name, currency and current balance."""
    if not isinstance(text, str) or not text.strip():
        raise PayloadError({"AccountBalance": "is required"})
    accounts: dict[str, AccountBalance] = {}
    errors: dict[str, str] = {}
    for group in filter(None, (part.strip() for part in text.split("&"))):
        fields = [part.strip() for part in group.split("|")]
        name = fields[0] if fields else ""
        where = f"AccountBalance.{name or '?'}"
        if len(fields) < 3 or not name:
            errors[where] = "needs at least a name, a currency and a balance"
            continue
        amounts = []
        for position, value in enumerate((fields + [""] * 6)[2:6]):
            try:
                amounts.append(_money(value) if value else None)
            except _Invalid as exc:
                errors[f"{where}[{position + 2}]"] = str(exc)
                amounts.append(None)
        if amounts[0] is None and where not in errors:
            errors[where] = "has no current balance"
        accounts[name] = AccountBalance(name, fields[1], *amounts)
    if errors:
        raise PayloadError(errors)
    return accounts


@dataclass(frozen=True)
class AccountBalanceReport:
    accounts: dict[str, AccountBalance]
    completed_at: datetime | None

    def available(self, account: str) -> Decimal | None:
        """The available balance of an account by name ("Utility Account"), or None."""
        found = self.accounts.get(account)
        return found.available if found else None


def account_balance(result: DarajaResult) -> AccountBalanceReport:
    """The accounts of a successful Account Balance result and when the figures were taken."""
    if not result.succeeded:
        raise PayloadError({"Result.ResultCode": f"is {result.result_code}, not a success"})
    errors: dict[str, str] = {}
    completed_at = _param(result, errors, "BOCompletedTime", _nairobi_time, required=False)
    if errors:
        raise PayloadError(errors)
    return AccountBalanceReport(
        parse_account_balances(result.param("AccountBalance")), completed_at
    )


@dataclass(frozen=True)
class TransactionStatusReport:
    """The fields of a Transaction Status result. `status` is M-Pesa's word ("Completed");
    `debit_party_names` keeps every DebitPartyName in order (the official sample has two)."""

    status: str | None
    receipt: str | None
    amount: Decimal | None
    finalised_at: datetime | None
    initiated_at: datetime | None
    reason_type: str | None
    originator_conversation_id: str | None
    conversation_id: str | None
    debit_party_names: tuple[str, ...]
    credit_party_name: str | None
    debit_account_type: str | None
    debit_party_charges: str | None

    @property
    def completed(self) -> bool:
        return (self.status or "").strip().lower() == "completed"


def transaction_status(result: DarajaResult) -> TransactionStatusReport:
    """The status details of a successful Transaction Status result (Daraja 3.0 or 1.0 keys)."""
    if not result.succeeded:
        raise PayloadError({"Result.ResultCode": f"is {result.result_code}, not a success"})
    errors: dict[str, str] = {}
    receipt = _param(result, errors, "ReceiptNo", _code, required=False)
    amount = _param(result, errors, "Amount", _money, required=False)
    finalised_at = _param(result, errors, "FinalisedTime", _nairobi_time, required=False)
    initiated_at = _param(result, errors, "InitiatedTime", _nairobi_time, required=False)
    texts = {
        key: _param(result, errors, key, _text, required=False)
        for key in (
            "TransactionStatus",
            "ReasonType",
            "OriginatorConversationID",
            "ConversationID",
            "CreditPartyName",
            "DebitAccountType",
            "DebitPartyCharges",
        )
    }
    names = tuple(str(name) for name in result.param_values("DebitPartyName") if name)
    if errors:
        raise PayloadError(errors)
    return TransactionStatusReport(
        status=texts["TransactionStatus"],
        receipt=receipt,
        amount=amount,
        finalised_at=finalised_at,
        initiated_at=initiated_at,
        reason_type=texts["ReasonType"],
        originator_conversation_id=texts["OriginatorConversationID"],
        conversation_id=texts["ConversationID"],
        debit_party_names=names,
        credit_party_name=texts["CreditPartyName"],
        debit_account_type=texts["DebitAccountType"],
        debit_party_charges=texts["DebitPartyCharges"],
    )


# --- C2B validation / confirmation -------------------------------------------------------------


def msisdn_kind(raw: str | None) -> str:
    """How C2B sent the payer's number: "plain", "masked" (2547 ***** 126), "hashed" (SHA-256
    hex), "missing" or "unknown"."""
    text = (raw or "").replace(" ", "")
    if not text:
        return "missing"
    if HASHED_MSISDN.fullmatch(text):
        return "hashed"
    if MASKED_MSISDN.fullmatch(text):
        return "masked"
    if text.lstrip("+").isdigit() and 9 <= len(text.lstrip("+")) <= 15:
        return "plain"
    return "unknown"


def _as_2547(digits: str) -> str:
    if len(digits) == 10 and digits.startswith("0"):
        return "254" + digits[1:]
    if len(digits) == 9 and digits[0] in "17":
        return "254" + digits
    return digits


def msisdn_matches(raw: str | None, phone: str) -> bool:
    """Whether the C2B `MSISDN` can be the member's phone (`2547XXXXXXXX`): the same number when
    plain, its unsalted SHA-256 when hashed, the same leading and trailing digits when masked
    (a hint only: many numbers fit a mask)."""
    if not isinstance(phone, str) or not phone.isdigit():
        return False
    text = (raw or "").replace(" ", "")
    kind = msisdn_kind(raw)
    if kind == "hashed":
        expected = hashlib.sha256(phone.encode()).hexdigest()
        return hmac.compare_digest(expected, text.lower())
    if kind == "masked":
        head, tail = MASKED_MSISDN.fullmatch(text).groups()
        return (
            bool(head and tail)
            and len(head) + len(tail) < len(phone)
            and phone.startswith(head)
            and phone.endswith(tail)
        )
    if kind == "plain":
        return _as_2547(text.lstrip("+")) == phone
    return False


def _whole_shillings(value: Any) -> Decimal:
    amount = _positive_money(value)
    if amount != amount.to_integral_value():
        raise _Invalid("must be whole shillings")
    return amount


@dataclass(frozen=True)
class C2BPayment:
    """A C2B validation or confirmation body; `msisdn` is as sent, `msisdn_kind` says its form."""

    transaction_type: str
    trans_id: str
    trans_time: datetime
    amount: Decimal
    business_short_code: str
    bill_ref_number: str
    invoice_number: str
    org_account_balance: Decimal | None
    third_party_trans_id: str
    msisdn: str
    msisdn_kind: str
    first_name: str
    middle_name: str
    last_name: str

    @property
    def payer_name(self) -> str:
        return " ".join(
            part for part in (self.first_name, self.middle_name, self.last_name) if part
        )

    def paid_from(self, phone: str) -> bool:
        """See `msisdn_matches`."""
        return msisdn_matches(self.msisdn, phone)


def parse_c2b(data: Any) -> C2BPayment:
    """The C2B body in `data`; PayloadError unless it has a receipt, a time, a whole positive
    amount and a shortcode (the account number may be empty: Buy Goods has none)."""
    data = _require_object(data)
    errors: dict[str, str] = {}
    read = _Reader(errors)

    def text(key: str) -> str:
        return read.get(data, key, _text, required=False) or ""

    trans_id = read.get(data, "TransID", _code, required=True)
    trans_time = read.get(data, "TransTime", _nairobi_time, required=True)
    amount = read.get(data, "TransAmount", _whole_shillings, required=True)
    short_code = read.get(data, "BusinessShortCode", _code, required=True)
    balance = read.get(data, "OrgAccountBalance", _money, required=False)
    payment = {
        key: text(key)
        for key in (
            "TransactionType",
            "BillRefNumber",
            "InvoiceNumber",
            "ThirdPartyTransID",
            "MSISDN",
            "FirstName",
            "MiddleName",
            "LastName",
        )
    }
    if errors:
        raise PayloadError(errors)
    return C2BPayment(
        transaction_type=payment["TransactionType"],
        trans_id=trans_id,
        trans_time=trans_time,
        amount=amount,
        business_short_code=short_code,
        bill_ref_number=payment["BillRefNumber"],
        invoice_number=payment["InvoiceNumber"],
        org_account_balance=balance,
        third_party_trans_id=payment["ThirdPartyTransID"],
        msisdn=payment["MSISDN"],
        msisdn_kind=msisdn_kind(payment["MSISDN"]),
        first_name=payment["FirstName"],
        middle_name=payment["MiddleName"],
        last_name=payment["LastName"],
    )
