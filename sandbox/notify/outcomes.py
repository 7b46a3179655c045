"""What happens to a message: the failure mode switched on for its provider, or the reserved test
recipient it is sent to (sandbox/README.md), or else delivery."""

import re

# Failure modes, switched per provider on the control API or the /sandbox/notify page.
REQUEST_MODES = ("down", "500", "slow", "rate_limited")  # the whole request fails
RECIPIENT_MODES = ("invalid_number", "bounce")  # every recipient of the request fails
FAILURE_MODES = REQUEST_MODES + RECIPIENT_MODES

# Reserved phone numbers (any provider, any format: only the digits count). The 0799 80 range is
# used neither by the demo data nor by the test factories, nor by the Daraja test numbers.
SMS_RESERVED = {
    "254799800001": "invalid",  # refused at once as an invalid number
    "254799800002": "undelivered",  # accepted, then a permanent delivery failure
    "254799800003": "opted_out",  # the recipient sent STOP (blacklisted)
    "254799800004": "no_final",  # reaches the operator; the handset never confirms
    "254799800005": "expired",  # accepted, then expires undelivered
}

# Reserved email addresses: <local part>@simulator.example.com (like SES's mailbox simulator).
EMAIL_DOMAIN = "simulator.example.com"
EMAIL_RESERVED = {
    "invalid": "invalid",  # refused at once as an invalid address
    "bounce": "bounce",  # accepted, then a hard (permanent) bounce
    "complaint": "complaint",  # delivered, then marked as spam
    "deferred": "deferred",  # a temporary failure first, then delivered
}


def digits(number: str) -> str:
    return re.sub(r"\D", "", number or "")


def sms_outcome(number: str, mode: str | None) -> str:
    """invalid | opted_out | undelivered | no_final | expired | delivered."""
    if mode == "invalid_number":
        return "invalid"
    reserved = SMS_RESERVED.get(digits(number))
    if reserved:
        return reserved
    return "undelivered" if mode == "bounce" else "delivered"


def email_outcome(address: str, mode: str | None) -> str:
    """invalid | bounce | complaint | deferred | delivered."""
    if mode == "invalid_number":
        return "invalid"
    local, _, domain = (address or "").strip().lower().rpartition("@")
    if domain == EMAIL_DOMAIN and local in EMAIL_RESERVED:
        return EMAIL_RESERVED[local]
    return "bounce" if mode == "bounce" else "delivered"


EMAIL_RE = re.compile(r"^[^@\s<>(),;:\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
E164_RE = re.compile(r"^\+[1-9]\d{7,14}$")


def valid_email(address: str) -> bool:
    return bool(EMAIL_RE.match(address or ""))


def valid_url(url: str) -> bool:
    return bool(re.match(r"^https?://[^\s/]+(/\S*)?$", url or ""))
