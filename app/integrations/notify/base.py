"""What every provider client takes and gives back.

A client's `send()` never raises for a provider's answer: it turns every answer (and every network
failure) into a `SendResult` with one of four outcomes, so the gateway can fail over, retry, or
stop, without knowing the provider."""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # the provider took the message; receipts follow
    TRANSIENT = "transient"  # try again later, or another provider now (rate limit, timeout, 5xx)
    PROVIDER_FAULT = "provider_fault"  # our account/configuration at this provider is wrong
    PERMANENT = "permanent"  # the recipient cannot get it (invalid number, blacklisted...)

    @property
    def log_level(self) -> int:
        """The level of a client's one-line log of a provider's answer: DEBUG for an accepted
        message (its attempt row records it; a line each was a twentieth of a send's CPU in
        bench/notify.py), INFO for anything else."""
        return logging.DEBUG if self is Outcome.ACCEPTED else logging.INFO


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    provider: str
    provider_message_id: str | None = None
    detail: str = ""  # what happened, in words fit for staff; never a secret
    response: str = ""  # the provider's answer, truncated to 2,000 characters; never a secret
    http_status: int | None = None
    # True when the request may have reached the provider although no answer came (a read
    # timeout): the message may arrive even though the outcome is not ACCEPTED.
    maybe_sent: bool = False
    cost: Decimal | None = None
    currency: str | None = None
    segments: int | None = None  # SMS parts the provider counted, when it says

    @property
    def accepted(self) -> bool:
        return self.outcome == Outcome.ACCEPTED


@dataclass(frozen=True)
class SmsMessage:
    to: str  # 2547XXXXXXXX / 2541XXXXXXXX (clients add the "+" a provider needs)
    body: str
    reference: str  # our notification id: passed to the provider wherever it takes one
    status_callback_url: str | None = None  # where the provider should post delivery reports


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    reference: str  # our notification id (a custom arg / variable / message tag)
    html: str | None = None
    from_address: str | None = None  # the client's configured sender when None
    status_callback_url: str | None = None


class DeliveryStatus(StrEnum):
    """Normalised receipt states (notify.md §8.1); the gateway moves notifications forward only."""

    QUEUED = "queued"
    SENT = "sent"  # handed to the network / accepted by the receiving server
    DELIVERED = "delivered"  # on the phone / in the mailbox
    FAILED = "failed"  # temporary or unknown failure reported by the provider
    UNDELIVERED = "undelivered"  # permanent: invalid, blocked, expired
    BOUNCED = "bounced"  # email hard bounce
    COMPLAINED = "complained"  # marked as spam
    UNSUBSCRIBED = "unsubscribed"  # STOP reply or unsubscribe link


@dataclass(frozen=True)
class DeliveryReceipt:
    """One delivery event from a provider's webhook, normalised."""

    provider: str
    status: DeliveryStatus
    provider_message_id: str | None
    reference: str | None = None  # our notification id when the provider echoes it
    recipient: str | None = None
    occurred_at: datetime | None = None
    detail: str = ""
    error_code: str | None = None
    permanent: bool = False  # the recipient should be suppressed (hard bounce, STOP, complaint)
    cost: Decimal | None = None
    currency: str | None = None
    raw: dict = field(default_factory=dict)
    # A provider-unique id of this event, for idempotent handling (notify.md §8.3).
    event_id: str | None = None


class WebhookRejected(Exception):
    """A webhook request failed verification: answer 403 and change nothing."""
