"""Secrets at rest: Fernet encryption with DAYSTAR_ENCRYPTION_KEY (from `cryptography`)."""

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app

from app.redaction import register_secret


def _fernet() -> Fernet:
    return Fernet(current_app.config["DAYSTAR_ENCRYPTION_KEY"])


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    """The secret, which the logs will redact from now on; ValueError when the token was not made
    with this key or was altered."""
    try:
        secret = _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError(
            "the stored secret cannot be decrypted with DAYSTAR_ENCRYPTION_KEY"
        ) from None
    register_secret(secret)
    return secret
