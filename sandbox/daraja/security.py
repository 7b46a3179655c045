"""The sandbox's own RSA key and self-signed certificate, standing in for Safaricom's: clients
encrypt the initiator password with the served certificate (PKCS#1 v1.5, base64) and the
sandbox decrypts it with the private key."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Keys:
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def decrypt(self, ciphertext: bytes) -> str | None:
        """The plaintext password, or None when the block was not encrypted for this key.

        OpenSSL 3.2+ may answer a wrong block with random bytes ("implicit rejection") instead of an
        error; either way the result does not match the password, which is what Daraja reports
        too (ResultCode 2001, never a synchronous error)."""
        try:
            return self.private_key.decrypt(ciphertext, padding.PKCS1v15()).decode()
        except (ValueError, UnicodeDecodeError):
            return None


def _new_certificate(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "KE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Daystar Daraja Sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, "apicrypt.sandbox.invalid"),
        ]
    )
    issued = datetime.now(UTC) - timedelta(days=1)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued)
        .not_valid_after(issued + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )


def generate() -> Keys:
    """A fresh RSA-2048 key and a self-signed certificate for it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Keys(key, _new_certificate(key))


def load_or_create(key_path: str | None, cert_path: str | None) -> Keys:
    """Loads the key and certificate from the configured paths; when they are configured but
    absent, generates them and writes them there (so a restarted sandbox keeps its certificate);
    when not configured, generates them in memory."""
    if not key_path or not cert_path:
        return generate()
    key_file, cert_file = Path(key_path), Path(cert_path)
    if key_file.exists() and cert_file.exists():
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{key_path} does not hold an RSA private key")
        return Keys(key, certificate)
    keys = generate()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_bytes(
        keys.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    cert_file.write_bytes(keys.certificate_pem)
    log.info("wrote a new sandbox key to %s and certificate to %s", key_path, cert_path)
    return keys
