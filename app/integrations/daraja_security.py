"""Daraja's SecurityCredential: the initiator password RSA-encrypted with Safaricom's certificate.

The algorithm is the one Safaricom's own Node library uses: encrypt the plain password bytes with
the certificate's RSA public key, PKCS#1 v1.5 padding (not OAEP), then base64. Nothing is appended
to the password (one SDK adds a timestamp; Daraja then answers 2001 "initiator information is
invalid").
"""

import base64

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

PEM_MARKER = b"-----BEGIN"


def load_certificate(data: bytes) -> x509.Certificate:
    """The X.509 certificate in `data` (PEM or DER) whose key is RSA; ValueError otherwise."""
    if isinstance(data, str):
        data = data.encode()
    if not isinstance(data, bytes | bytearray) or not data.strip():
        raise ValueError("The certificate file is empty.")
    data = bytes(data)
    try:
        if PEM_MARKER in data:
            certificate = x509.load_pem_x509_certificate(data.strip())
        else:
            certificate = x509.load_der_x509_certificate(data)
    except ValueError:
        raise ValueError(
            "This is not an X.509 certificate in PEM or DER form "
            "(download the .cer file from your Daraja app)."
        ) from None
    if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
        raise ValueError("The certificate's key is not an RSA key; Daraja certificates are RSA.")
    return certificate


def _as_certificate(certificate: bytes | x509.Certificate) -> x509.Certificate:
    if isinstance(certificate, x509.Certificate):
        if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
            raise ValueError(
                "The certificate's key is not an RSA key; Daraja certificates are RSA."
            )
        return certificate
    return load_certificate(certificate)


def security_credential(initiator_password: str, certificate: bytes | x509.Certificate) -> str:
    """base64 of the initiator password encrypted with the certificate's key (PKCS#1 v1.5)."""
    if not isinstance(initiator_password, str) or not initiator_password:
        raise ValueError("The initiator password is empty.")
    public_key = _as_certificate(certificate).public_key()
    message = initiator_password.encode()
    # PKCS#1 v1.5 fits at most (key bytes - 11) bytes of message.
    if len(message) > public_key.key_size // 8 - 11:
        raise ValueError("The initiator password is too long for this certificate's key.")
    ciphertext = public_key.encrypt(message, padding.PKCS1v15())
    return base64.b64encode(ciphertext).decode("ascii")


def certificate_fingerprint(certificate: bytes | x509.Certificate) -> str:
    """The certificate's SHA-256 fingerprint as upper-case hex pairs joined by colons."""
    digest = _as_certificate(certificate).fingerprint(hashes.SHA256())
    return ":".join(f"{byte:02X}" for byte in digest)


def certificate_summary(certificate: bytes | x509.Certificate) -> dict[str, str]:
    """What a settings page shows of a certificate: subject, issuer, validity and fingerprint."""
    cert = _as_certificate(certificate)
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_valid_before": cert.not_valid_before_utc.isoformat(),
        "not_valid_after": cert.not_valid_after_utc.isoformat(),
        "fingerprint_sha256": certificate_fingerprint(cert),
    }
