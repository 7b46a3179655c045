"""Authentication of the webhooks whose providers sign nothing (Africa's Talking, Infobip): a
random per-deployment secret in the callback path (notify.md §3.4, §4.7)."""

import hmac

from app.integrations.notify.base import WebhookRejected


def check_path_secret(given: str | None, expected: str | None) -> None:
    """Returns when `given` equals the configured secret (compared in constant time); raises
    WebhookRejected otherwise, and always when no secret is configured."""
    if not expected:
        raise WebhookRejected("No callback secret is configured for this provider.")
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise WebhookRejected("The callback path secret does not match.")
