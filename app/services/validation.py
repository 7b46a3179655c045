"""Parsing of the values people type: money, phone numbers, emails, dates."""

from datetime import date
from decimal import Decimal, InvalidOperation

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from app import clock
from app.models import PaymentMethod
from app.models.base import CENT
from app.services.errors import ValidationFailed

MAX_MONEY = Decimal("9999999999999.99")  # what Numeric(15, 2) can hold


def parse_money(value, field: str = "amount", errors: dict | None = None) -> Decimal | None:
    """A positive amount with at most two decimals, as Decimal; or an entry in `errors`."""
    errors = {} if errors is None else errors
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, AttributeError):
        errors[field] = "Enter an amount in shillings, for example 1500 or 1500.50."
        return None
    if not amount.is_finite() or amount <= 0:
        errors[field] = "Enter an amount greater than zero."
    elif amount > MAX_MONEY:  # before quantize, which raises on a huge exponent (1e999999)
        errors[field] = "This amount is too large."
    elif amount != amount.quantize(CENT):
        errors[field] = "Use at most two decimal places."
    else:
        return amount.quantize(CENT)
    return None


def normalize_phone(raw: str) -> str:
    """A Kenyan mobile number as 2547XXXXXXXX or 2541XXXXXXXX; ValueError otherwise."""
    text = (raw or "").strip()
    if not text:
        raise ValueError("Enter a phone number.")
    try:
        number = phonenumbers.parse(text if not text.startswith("254") else "+" + text, "KE")
    except phonenumbers.NumberParseException:
        raise ValueError("Enter a Kenyan mobile number such as 0712 345 678.") from None
    national = str(number.national_number)
    if (
        number.country_code != 254
        or len(national) != 9
        or national[0] not in "71"
        or not phonenumbers.is_valid_number(number)
    ):
        raise ValueError("Enter a Kenyan mobile number such as 0712 345 678 or 0110 123 456.")
    return f"254{national}"


def normalize_email(raw: str | None) -> str | None:
    """The normalised address, None when blank; ValueError when it is not an address."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        return validate_email(text, check_deliverability=False, test_environment=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


def parse_date(value, field: str, errors: dict) -> date | None:
    """A date from a date or YYYY-MM-DD text; or an entry in `errors`."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        errors[field] = "Enter a date as YYYY-MM-DD."
        return None


def clean_payment(
    amount, method, reference, paid_on, errors: dict | None = None
) -> tuple[Decimal, str, str | None, date]:
    """A payment's amount, method, reference (upper case, None when blank) and date; ValidationFailed
    naming every bad field, together with any `errors` the caller found already."""
    errors = {} if errors is None else errors
    money = parse_money(amount, "amount", errors)
    if method not in set(PaymentMethod):
        errors["method"] = "Choose M-Pesa, cash, bank or check-off."
    reference = (reference or "").strip().upper() or None
    if reference and len(reference) > 40:
        errors["reference"] = "Use at most 40 characters."
    if method == PaymentMethod.MPESA and not reference:
        errors["reference"] = "Enter the M-Pesa receipt number."
    day = parse_date(paid_on or clock.today(), "paid_on", errors)
    if day and day > clock.today():
        errors["paid_on"] = "The payment date cannot be in the future."
    if errors:
        raise ValidationFailed(errors)
    return money, method, reference, day
