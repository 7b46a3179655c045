"""Provider delivery webhooks: each verified exactly as its provider signs (or, for the two that
do not sign, by the secret path segment), then its receipts stored and applied. A request that
fails verification raises WebhookRejected (403) and changes nothing; a verified body that is not
a delivery report raises ValueError (400)."""

import json
from dataclasses import dataclass

from flask import current_app

from app.integrations.notify import africastalking, infobip, mailgun, sendgrid, ses, sns, twilio
from app.integrations.notify.base import WebhookRejected
from app.integrations.notify.secrets_check import check_path_secret
from app.jobs import redis_client
from app.services.mpesa import config as mpesa_config
from app.services.notifications import config, receipts


@dataclass(frozen=True)
class Incoming:
    """What the route received, as it received it."""

    path: str
    query_string: bytes
    headers: dict
    form: object  # a MultiDict
    args: object
    raw_body: bytes
    path_secret: str | None = None


def _settings(provider: str) -> dict[str, str]:
    """The provider's settings as this process read them within CALLBACK_SETTINGS_CACHE_SECONDS:
    receipts come two or more per message, and each reading decrypts every secret."""
    return config.provider_values(provider, current_app.config["CALLBACK_SETTINGS_CACHE_SECONDS"])


def _public_url(incoming: Incoming) -> str:
    # Signatures cover the URL the provider called: our public address, not the proxy's view.
    base = mpesa_config.for_callbacks().public_base_url
    if not base:
        raise WebhookRejected(
            "DAYSTAR_PUBLIC_BASE_URL is not set: the signature cannot be checked."
        )
    return twilio.signed_url(base, incoming.path, incoming.query_string)


def _twilio(incoming: Incoming) -> list:
    token = _settings("twilio").get("auth_token")
    twilio.verify_signature(
        _public_url(incoming),
        incoming.form,
        incoming.headers.get(twilio.SIGNATURE_HEADER),
        token or "",
    )
    return twilio.parse_receipts(incoming.form, incoming.args)


def _africastalking(incoming: Incoming) -> list:
    check_path_secret(incoming.path_secret, _settings("africastalking").get("callback_secret"))
    if incoming.form.get("phoneNumber") and not incoming.form.get("status"):
        return [africastalking.parse_opt_out(incoming.form)]
    return africastalking.parse_receipts(incoming.form)


def _infobip(incoming: Incoming) -> list:
    check_path_secret(incoming.path_secret, _settings("infobip").get("callback_secret"))
    return infobip.parse_receipts(incoming.raw_body)


def _sendgrid(incoming: Incoming) -> list:
    sendgrid.verify_signature(
        _settings("sendgrid").get("webhook_public_key") or "",
        incoming.headers.get(sendgrid.SIGNATURE_HEADER) or "",
        incoming.headers.get(sendgrid.TIMESTAMP_HEADER) or "",
        incoming.raw_body,
    )
    return sendgrid.parse_receipts(incoming.raw_body)


def _mailgun(incoming: Incoming) -> list:
    try:
        payload = json.loads(incoming.raw_body)
    except ValueError:
        raise WebhookRejected("A Mailgun webhook body is JSON.") from None
    key = _settings("mailgun").get("webhook_signing_key") or ""
    mailgun.verify_webhook(key, payload, used_tokens=redis_client())
    return mailgun.parse_receipts(payload)


def sns_verifier() -> sns.SnsVerifier:
    """The SNS verifier for the configured topics. The certificate fetcher can be replaced in
    config (SNS_CERTIFICATE_FETCHER) only because tests have no AWS to fetch from."""
    topics = _settings("ses").get("sns_topic_arns", "")
    fetcher = current_app.config.get("SNS_CERTIFICATE_FETCHER") or sns.fetch_over_https
    return sns.SnsVerifier(topics.replace(",", " ").split(), fetch_certificate=fetcher)


def _ses(incoming: Incoming) -> list:
    message = sns_verifier().verify(
        incoming.raw_body, message_type_header=incoming.headers.get("x-amz-sns-message-type")
    )
    if message["Type"] == "SubscriptionConfirmation":
        fetcher = current_app.config.get("SNS_CERTIFICATE_FETCHER") or sns.fetch_over_https
        sns.confirm_subscription(message, fetch=fetcher)
        return []
    if message["Type"] != "Notification":
        return []
    return ses.parse_receipts(message["Message"])


VERIFIERS = {
    "twilio": _twilio,
    "africastalking": _africastalking,
    "infobip": _infobip,
    "sendgrid": _sendgrid,
    "mailgun": _mailgun,
    "ses": _ses,
}


def accept(provider: str, incoming: Incoming) -> int:
    """Verify a provider's webhook and store its receipts; how many were new."""
    verify_and_parse = VERIFIERS.get(provider)
    if verify_and_parse is None:
        raise LookupError(provider)
    return len(receipts.store(verify_and_parse(incoming)))
