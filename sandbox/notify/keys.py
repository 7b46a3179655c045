"""The sandbox's own signing keys, standing in for the providers': an ECDSA P-256 key for
SendGrid's signed Event Webhook and an RSA key with a self-signed certificate for Amazon SNS.
Generated at start-up, or loaded from (and written to) the configured paths so that a restarted
sandbox keeps the keys the app has been given."""

import base64
import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotifyKeys:
    sendgrid_key: ec.EllipticCurvePrivateKey
    sns_key: rsa.RSAPrivateKey
    sns_certificate: x509.Certificate

    @property
    def sendgrid_public_key(self) -> str:
        """Base64 SubjectPublicKeyInfo, as SendGrid's Mail Settings page shows the key."""
        der = self.sendgrid_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    @property
    def sendgrid_public_key_pem(self) -> str:
        return (
            self.sendgrid_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    @property
    def sns_certificate_pem(self) -> str:
        return self.sns_certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def sns_certificate_name(self) -> str:
        """`SimpleNotificationService-<hex>.pem`, named after the certificate like SNS's."""
        fingerprint = hashlib.sha256(self.sns_certificate.public_bytes(serialization.Encoding.DER))
        return f"SimpleNotificationService-{fingerprint.hexdigest()[:32]}.pem"


def _pem_private(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, private: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def sendgrid_key(path: str | None) -> ec.EllipticCurvePrivateKey:
    """The P-256 key: loaded from `path`, or generated (and written there when configured)."""
    if path and Path(path).exists():
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError(f"{path} does not hold an EC P-256 private key")
        return key
    key = ec.generate_private_key(ec.SECP256R1())
    if path:
        _write(Path(path), _pem_private(key), private=True)
        log.info("wrote a new SendGrid webhook key to %s", path)
    return key


def _sns_certificate(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "KE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Daystar SNS Sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com"),
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


def sns_key_and_certificate(
    key_path: str | None, cert_path: str | None
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """The SNS signing key and its certificate: loaded when both files exist, else generated
    (and written to the paths when both are configured)."""
    if key_path and cert_path and Path(key_path).exists() and Path(cert_path).exists():
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{key_path} does not hold an RSA private key")
        return key, x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = _sns_certificate(key)
    if key_path and cert_path:
        _write(Path(key_path), _pem_private(key), private=True)
        _write(Path(cert_path), certificate.public_bytes(serialization.Encoding.PEM), False)
        log.info("wrote a new SNS key to %s and certificate to %s", key_path, cert_path)
    return key, certificate


def load(config: dict) -> NotifyKeys:
    sns_key, sns_certificate = sns_key_and_certificate(
        config["SANDBOX_SES_SNS_KEY_PATH"], config["SANDBOX_SES_SNS_CERT_PATH"]
    )
    return NotifyKeys(sendgrid_key(config["SANDBOX_SENDGRID_KEY_PATH"]), sns_key, sns_certificate)
