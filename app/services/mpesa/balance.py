"""The shortcode's account balances: asked for from the settings page, answered by callback, and
kept as the last known figures."""

import json

from app.extensions import db
from app.integrations import daraja_payloads as payloads
from app.integrations.daraja import DarajaError
from app.models import CallbackState, Setting
from app.models.base import utcnow
from app.services import audit
from app.services.actor import Actor
from app.services.errors import ServiceError
from app.services.mpesa import config as mpesa_config
from app.services.mpesa.crediting import Outcome

KEY = "mpesa_state.account_balance"  # not a setting staff edit


def request(actor: Actor) -> str:
    """Ask Daraja for the balances; the answer arrives by callback. The request's ConversationID."""
    try:
        accepted = mpesa_config.client().account_balance(
            mpesa_config.callback_url("balance_result"),
            mpesa_config.callback_url("balance_timeout"),
        )
    except DarajaError as exc:
        raise ServiceError(f"M-Pesa refused the balance request: {exc}") from None
    audit.record(actor, "mpesa.balance_requested", "settings", None)
    db.session.commit()
    return accepted.conversation_id


def record(result: payloads.DarajaResult) -> Outcome:
    """Keep the balances of a successful result as the last known ones (in the caller's
    transaction)."""
    if not result.succeeded:
        return Outcome(CallbackState.PROCESSED, f"Balance request failed: {result.result_desc}")
    report = payloads.account_balance(result)
    figures = {
        "captured_at": (report.completed_at or utcnow()).isoformat(),
        "accounts": {
            name: {"currency": a.currency, "current": str(a.current), "available": str(a.available)}
            for name, a in report.accounts.items()
        },
    }
    row = db.session.get(Setting, KEY) or Setting(key=KEY, secret=False)
    row.value = json.dumps(figures)
    db.session.add(row)
    return Outcome(
        CallbackState.PROCESSED, f"Balances of {len(figures['accounts'])} accounts kept."
    )


def last_known() -> dict | None:
    """The last balances M-Pesa reported: {"captured_at", "accounts": {name: {...}}}, or None."""
    row = db.session.get(Setting, KEY)
    return json.loads(row.value) if row else None
