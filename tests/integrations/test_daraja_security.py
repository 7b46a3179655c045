"""SecurityCredential: RSA PKCS#1 v1.5 with the certificate's key, PEM or DER, clear refusals."""

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from app.integrations.daraja_security import (
    certificate_fingerprint,
    certificate_summary,
    load_certificate,
    security_credential,
)
from tests.integrations.certificates import self_signed


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def certificate(rsa_key):
    return self_signed(rsa_key)


@pytest.mark.parametrize("encoding", [serialization.Encoding.PEM, serialization.Encoding.DER])
def test_round_trip_decrypts_to_the_password(rsa_key, certificate, encoding):
    data = certificate.public_bytes(encoding)
    credential = security_credential("Safaricom#999&%$", data)
    ciphertext = base64.b64decode(credential, validate=True)
    assert len(credential) == 344  # 2048-bit key, as Daraja's own credentials
    assert rsa_key.decrypt(ciphertext, padding.PKCS1v15()) == b"Safaricom#999&%$"


def test_nothing_is_appended_and_each_encryption_is_fresh(rsa_key, certificate):
    """PKCS#1 v1.5 pads randomly: two credentials differ, both decrypt to the bare password."""
    first = security_credential("pass", certificate)
    second = security_credential("pass", certificate)
    assert first != second
    for credential in (first, second):
        decrypted = rsa_key.decrypt(base64.b64decode(credential), padding.PKCS1v15())
        assert decrypted == b"pass"


def test_pem_with_surrounding_whitespace_and_text_input(certificate):
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    assert load_certificate(b"\n  " + pem + b"\n\n").serial_number == certificate.serial_number
    assert load_certificate(pem.decode()).serial_number == certificate.serial_number


def test_fingerprint_is_sha256_hex_pairs(certificate):
    der = certificate.public_bytes(serialization.Encoding.DER)
    fingerprint = certificate_fingerprint(der)
    expected = certificate.fingerprint(hashes.SHA256()).hex().upper()
    assert fingerprint.replace(":", "") == expected
    assert len(fingerprint.split(":")) == 32
    assert (
        certificate_fingerprint(certificate.public_bytes(serialization.Encoding.PEM)) == fingerprint
    )


def test_summary_names_the_certificate(certificate):
    summary = certificate_summary(certificate)
    assert summary["subject"] == "CN=apicrypt.example.test"
    assert summary["fingerprint_sha256"] == certificate_fingerprint(certificate)
    assert summary["not_valid_after"] > summary["not_valid_before"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"not a certificate", "not an X.509 certificate"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not an X.509"),
        (b"\x30\x82\x01\x0a\x02\x82", "not an X.509 certificate"),
    ],
)
def test_garbage_is_a_clear_value_error(data, message):
    with pytest.raises(ValueError, match=message):
        load_certificate(data)
    with pytest.raises(ValueError, match=message):
        security_credential("pass", data)


def test_non_rsa_certificate_is_refused():
    key = ec.generate_private_key(ec.SECP256R1())
    pem = self_signed(key).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(ValueError, match="not an RSA key"):
        load_certificate(pem)


def test_empty_or_oversized_password_is_refused(certificate):
    with pytest.raises(ValueError, match="empty"):
        security_credential("", certificate)
    with pytest.raises(ValueError, match="too long"):
        security_credential("x" * 246, certificate)  # 2048-bit PKCS#1 v1.5 fits 245 bytes
