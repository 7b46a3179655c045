"""AWS Signature Version 4 as Amazon SES checks it (notify.md §7.2): the Authorization header's
shape, the credential scope, the clock, and (in `verify` mode) the signature itself, recomputed
from the canonical request. Errors carry AWS's error names and messages."""

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "ses"
SKEW = timedelta(minutes=15)
_SAFE = "-_.~"


class SigV4Error(Exception):
    def __init__(self, code: str, message: str, status: int = 403):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass(frozen=True)
class SignedRequest:
    """The parts of an HTTP request that SigV4 covers."""

    method: str
    path: str
    query_string: str
    headers: dict  # lower-case name -> value
    body: bytes


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str = SERVICE) -> bytes:
    k_date = _hmac(f"AWS4{secret}".encode(), date)
    return _hmac(_hmac(_hmac(k_date, region), service), "aws4_request")


def canonical_request(req: SignedRequest, signed_headers: list[str]) -> str:
    query = sorted(
        (quote(k, safe=_SAFE), quote(v, safe=_SAFE))
        for k, v in parse_qsl(req.query_string, keep_blank_values=True)
    )
    headers = "".join(
        f"{name}:{' '.join(req.headers.get(name, '').split())}\n" for name in signed_headers
    )
    payload = req.headers.get("x-amz-content-sha256") or hashlib.sha256(req.body).hexdigest()
    return "\n".join(
        [
            req.method,
            quote(req.path, safe="/" + _SAFE),
            "&".join(f"{k}={v}" for k, v in query),
            headers,
            ";".join(signed_headers),
            payload,
        ]
    )


def _fields(authorization: str) -> dict:
    fields = {}
    for part in authorization.split(","):
        name, _, value = part.strip().partition("=")
        if name:
            fields[name.strip()] = value.strip()
    return fields


def check(req: SignedRequest, credentials: dict, verify: bool, now: datetime | None = None):
    """Raises SigV4Error unless the request is signed for these credentials (`verify`: the
    signature is recomputed; otherwise only its shape, scope and clock are checked)."""
    header = req.headers.get("authorization", "")
    if not header:
        raise SigV4Error("MissingAuthenticationTokenException", "Missing Authentication Token")
    algorithm, _, rest = header.partition(" ")
    if algorithm != ALGORITHM:
        raise SigV4Error(
            "IncompleteSignatureException",
            f"Unsupported AWS 'algorithm': '{algorithm}' (expected '{ALGORITHM}')",
        )
    fields = _fields(rest)
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if not fields.get(n)]
    if missing:
        text = " ".join(f"Authorization header requires '{n}' parameter." for n in missing)
        raise SigV4Error("IncompleteSignatureException", f"{text} Authorization={header}")
    amz_date = req.headers.get("x-amz-date", "")
    if not amz_date:
        raise SigV4Error(
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
            "header. Authorization=" + header,
        )
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SigV4Error(
            "IncompleteSignatureException",
            f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'.",
        ) from None
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise SigV4Error(
            "IncompleteSignatureException",
            "Credential should have 5 parts (ACCESS_KEY/YYYYMMDD/region/service/aws4_request),"
            f" got '{fields['Credential']}'.",
        )
    access_key, date, region, service, _ = scope
    if not hmac.compare_digest(access_key, credentials["access_key_id"]):
        raise SigV4Error(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    if date != amz_date[:8]:
        raise SigV4Error(
            "InvalidSignatureException",
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{date}' != '{amz_date[:8]}', from '{amz_date}'.",
        )
    if region != credentials["region"]:
        raise SigV4Error(
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region, not '{region}'. "
            f"(This endpoint is '{credentials['region']}'.)",
        )
    if service != SERVICE:
        raise SigV4Error(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{SERVICE}'. ",
        )
    signed_headers = fields["SignedHeaders"].split(";")
    if "host" not in signed_headers:
        raise SigV4Error(
            "InvalidSignatureException",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        )
    if signed_headers != sorted(signed_headers) or any(n != n.lower() for n in signed_headers):
        raise SigV4Error(
            "InvalidSignatureException", "SignedHeaders must be lower-case and sorted."
        )
    now = now or datetime.now(UTC)
    fmt = "%Y%m%dT%H%M%SZ"
    if signed_at < now - SKEW:
        raise SigV4Error(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is now earlier than {(now - SKEW).strftime(fmt)} "
            f"({now.strftime(fmt)} - 15 min.)",
        )
    if signed_at > now + SKEW:
        raise SigV4Error(
            "InvalidSignatureException",
            f"Signature not yet current: {amz_date} is still later than "
            f"{(now + SKEW).strftime(fmt)} ({now.strftime(fmt)} + 15 min.)",
        )
    if not re.fullmatch(r"[0-9a-f]{64}", fields["Signature"]):
        raise SigV4Error(
            "IncompleteSignatureException", "Signature must be 64 lower-case hex digits."
        )
    if not verify:
        return
    canonical = canonical_request(req, signed_headers)
    string_to_sign = "\n".join(
        [
            ALGORITHM,
            amz_date,
            f"{date}/{region}/{service}/aws4_request",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = signing_key(credentials["secret_access_key"], date, region, service)
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields["Signature"]):
        raise SigV4Error(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.\n\nThe Canonical String for this request should have "
            f"been\n'{canonical}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n",
        )
