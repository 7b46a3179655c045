"""Safaricom Daraja over HTTP: calls in, typed answers and typed errors out.

A plain client (DESIGN.md convention 7): it knows nothing of members, loans or the database. The
base URL comes from the configuration, so the local sandbox stands in for Safaricom unchanged.

What it guarantees (../shared/reference/mpesa.md §1, §8):
- one OAuth token per app, shared by every process through Redis (as the caller's `seal` makes
  it: the app encrypts it): Daraja cancels the previous token whenever a new one is issued, so
  per-process tokens would knock each other out. It is fetched under a Redis lock, refreshed
  about five minutes before it expires, and fetched once more when Daraja calls it invalid (the
  call is then repeated once: the gateway refused it, so nothing was done, even for a payment);
- every request has a connect and a read timeout;
- a POST that moves money (STK Push, B2C, C2B simulate) is never repeated after it may have been
  sent: a read timeout or a dropped connection raises `DarajaTimeout(maybe_sent=True)` and the
  caller must find out what happened (STK Query, Transaction Status). Calls that only ask
  (token, STK Query, Transaction Status, Account Balance) are repeated once on a connection
  failure, a timeout or a 5xx answer that is not a Daraja error body;
- errors carry Daraja's `errorCode` and `requestId`;
- no secret (consumer secret, passkey, STK password, security credential, token) is ever logged
  or put in an exception message: logs name the call, the HTTP status, codes and ids.
"""

import base64
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import requests
import urllib3
from redis import Redis
from redis.exceptions import LockError, RedisError

from app.clock import NAIROBI

log = logging.getLogger(__name__)

ENVIRONMENTS: dict[str, str | None] = {
    "sandbox": "https://sandbox.safaricom.co.ke",
    "production": "https://api.safaricom.co.ke",
    "simulator": None,  # the local sandbox app: its base URL comes from the configuration
}
TRANSACTION_TYPES = ("CustomerPayBillOnline", "CustomerBuyGoodsOnline")
C2B_VERSIONS = ("v1", "v2")
C2B_RESPONSE_TYPES = ("Completed", "Cancelled")
# 401.003.01 ("no apiproduct match") is deliberately absent: a new token cannot fix a product
# that the Daraja app lacks.
INVALID_TOKEN_CODES = frozenset({"404.001.03", "400.003.01", "401.002.01"})
STK_QUERY_PROCESSING_CODE = "500.001.1001"  # with "The transaction is being processed"
STK_QUERY_PENDING_RESULT_CODES = frozenset({"4999"})  # "still under processing" (field report)
# A 5xx error body that does not say the request was refused: for a payment, "maybe sent".
AMBIGUOUS_ERROR_CODES = frozenset({"500.003.1001"})  # "Internal Server Error"
LOGGED_ANSWER_KEYS = (
    "ResponseCode",
    "MerchantRequestID",
    "CheckoutRequestID",
    "ConversationID",
    "OriginatorConversationID",
)
TOKEN_REFRESH_MARGIN = 300  # seconds before expiry
TOKEN_KEY_PREFIX = "daraja:token:"  # noqa: S105 (a Redis key prefix, not a secret)
USER_AGENT = "Daystar-Integrations/1.0"
_COMPARE_AND_DELETE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


# --- errors ------------------------------------------------------------------------------------


class DarajaError(Exception):
    """A Daraja call that did not give an answer to use. `maybe_sent` is True when the request
    may have reached M-Pesa and been acted on, so it must not simply be sent again."""

    default_maybe_sent = False

    def __init__(
        self,
        message: str,
        *,
        error_code: str | None = None,
        request_id: str | None = None,
        http_status: int | None = None,
        maybe_sent: bool | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.request_id = request_id
        self.http_status = http_status
        self.maybe_sent = self.default_maybe_sent if maybe_sent is None else maybe_sent

    def __str__(self) -> str:
        text = f"{self.error_code}: {self.message}" if self.error_code else self.message
        details = [f"HTTP {self.http_status}"] if self.http_status else []
        if self.request_id:
            details.append(f"request {self.request_id}")
        return f"{text} ({', '.join(details)})" if details else text


class DarajaAuthError(DarajaError):
    """No token: the consumer key or secret is wrong, or the OAuth request was refused."""


class DarajaRejected(DarajaError):
    """Daraja answered with an error body or a non-zero ResponseCode: the request was refused.
    The one exception is "Internal Server Error" (500.003.1001) to a payment, which does not say
    whether M-Pesa acted: there `maybe_sent` is True."""


class DarajaUnavailable(DarajaError):
    """Daraja could not be reached (or the token cache could not); the request was not sent."""


class DarajaTimeout(DarajaError):
    """The request was sent and no answer came (read timeout or dropped connection): M-Pesa may
    have acted on it."""

    default_maybe_sent = True


class DarajaBadResponse(DarajaError):
    """An answer that is not Daraja's JSON or lacks what the call needs; when it came to a POST
    we cannot tell whether M-Pesa acted on it."""

    default_maybe_sent = True


class DarajaNotConfigured(DarajaError):
    """A setting the call needs is missing (named in the message); nothing was sent."""


# --- configuration -----------------------------------------------------------------------------


def _mask(value: str | None, visible: int = 0) -> str | None:
    if not value:
        return None
    return f"{value[:visible]}***" if visible and len(value) > visible * 3 else "***"


@dataclass(frozen=True, repr=False)
class DarajaConfig:
    """Everything the client needs. `security_credential` is the already-encrypted base64 string
    (daraja_security.security_credential makes it); `base_url` overrides the environment's."""

    environment: str = "sandbox"
    base_url: str | None = None
    consumer_key: str = ""
    consumer_secret: str = ""
    shortcode: str = ""
    passkey: str = ""
    transaction_type: str = "CustomerPayBillOnline"
    party_b: str | None = None  # the till for Buy Goods; the shortcode when empty
    b2c_shortcode: str | None = None
    initiator_name: str | None = None
    security_credential: str | None = None
    c2b_register_version: str = "v1"  # Safaricom support steers users to v1 (mpesa.md §7.1)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retry_delay: float = 0.5  # pause before the single retry of a call that only asks

    def __post_init__(self) -> None:
        if self.environment not in ENVIRONMENTS:
            raise ValueError(f"Unknown M-Pesa environment {self.environment!r}.")
        if not (self.base_url or ENVIRONMENTS[self.environment]):
            raise ValueError(f"The {self.environment} environment needs a base URL.")
        if self.transaction_type not in TRANSACTION_TYPES:
            raise ValueError(f"TransactionType must be one of {', '.join(TRANSACTION_TYPES)}.")
        if self.c2b_register_version not in C2B_VERSIONS:
            raise ValueError("The C2B register version must be v1 or v2.")
        if min(self.connect_timeout, self.read_timeout) <= 0 or self.retry_delay < 0:
            raise ValueError("Timeouts must be positive.")

    @property
    def url(self) -> str:
        """The base URL in use, without a trailing slash."""
        return (self.base_url or ENVIRONMENTS[self.environment] or "").rstrip("/")

    def __repr__(self) -> str:
        secrets = {"consumer_secret", "passkey", "security_credential"}
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in secrets:
                value = _mask(value)
            elif item.name == "consumer_key":
                value = _mask(value, visible=4)
            shown.append(f"{item.name}={value!r}")
        return f"DarajaConfig({', '.join(shown)})"


def token_cache_key(config: DarajaConfig) -> str:
    """The Redis key of the shared token: one per base URL and consumer key (never the secret)."""
    digest = hashlib.sha256(f"{config.url}\n{config.consumer_key}".encode()).hexdigest()
    return TOKEN_KEY_PREFIX + digest[:32]


# --- answers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StkPushAccepted:
    """Daraja took the STK Push for processing; only the callback (or a query) says if it was paid."""

    merchant_request_id: str
    checkout_request_id: str
    response_code: str
    response_description: str
    customer_message: str


@dataclass(frozen=True)
class StkQueryAnswer:
    """What STK Query knows: `pending` while the customer has not finished, else the result code
    ("0" paid, "1032" cancelled, ...)."""

    pending: bool
    result_code: str | None
    result_desc: str
    merchant_request_id: str | None = None
    checkout_request_id: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.result_code == "0"


@dataclass(frozen=True)
class Accepted:
    """An asynchronous request (B2C, status, balance) was queued; its result comes to ResultURL."""

    conversation_id: str
    originator_conversation_id: str
    response_code: str
    response_description: str


def is_accepted_code(code: Any) -> bool:
    """Whether a ResponseCode means accepted: "0", 0, "00000000"."""
    text = str(code).strip() if code is not None else ""
    return bool(text) and set(text) == {"0"}


def nairobi_timestamp(now: datetime | None = None) -> str:
    """`YYYYMMDDHHmmss` in Africa/Nairobi for an aware datetime (now by default)."""
    if now is None:
        now = datetime.now(NAIROBI)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")


def stk_password(shortcode: str, passkey: str, timestamp: str) -> str:
    """The STK Password: base64(shortcode + passkey + timestamp)."""
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode("ascii")


def _check_amount(amount: Any) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
        raise ValueError("M-Pesa amounts are whole shillings of at least 1.")
    return amount


def _check_phone(phone: Any) -> str:
    valid = isinstance(phone, str) and len(phone) == 12 and phone.isdigit()
    if not (valid and phone.startswith(("2547", "2541"))):
        raise ValueError("The phone number must be normalised to 2547XXXXXXXX or 2541XXXXXXXX.")
    return phone


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _error_fields(body: Any) -> tuple[str | None, str | None, str | None]:
    """(errorCode, requestId, errorMessage) of a Daraja error body, or of an Apigee `fault`."""
    if not isinstance(body, dict):
        return None, None, None
    if body.get("errorCode") is not None:
        return (
            _text(body.get("errorCode")),
            _text(body.get("requestId")) or None,
            _text(body.get("errorMessage")) or None,
        )
    fault = body.get("fault")
    if isinstance(fault, dict):
        detail = fault.get("detail") if isinstance(fault.get("detail"), dict) else {}
        return _text(detail.get("errorcode")) or None, None, _text(fault.get("faultstring")) or None
    return None, None, None


def _json_body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether the connection failed before any byte of the request could have left."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )


def _log_exchange(path: str, status: int, answer: Any, code, request_id) -> None:
    """One line per call: the path, the status, and only codes and ids (never a body)."""
    answer = answer if isinstance(answer, dict) else {}
    named = {
        "errorCode": code,
        "requestId": request_id,
        **{key: answer.get(key) for key in LOGGED_ANSWER_KEYS},
    }
    shown = " ".join(f"{key}={value}" for key, value in named.items() if value is not None)
    log.info("daraja: %s -> HTTP %s %s", path, status, shown)


# --- the client --------------------------------------------------------------------------------


class DarajaClient:
    """One Daraja app (consumer key) at one base URL; safe to create per job."""

    def __init__(
        self,
        config: DarajaConfig,
        redis: Redis,
        session: requests.Session | None = None,
        seal: Callable[[str], str] = str,
        unseal: Callable[[str], str | None] = str,
    ):
        """`seal` turns the token into what Redis keeps, `unseal` back (None when it cannot: the
        token is then fetched again); by default it is kept as it is."""
        self.config = config
        self.redis = redis
        self._seal, self._unseal = seal, unseal
        self._stored: dict[str, str] = {}  # token -> as Redis keeps it (compare-and-delete)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
        self.session = session
        self._token_key = token_cache_key(config)

    def __repr__(self) -> str:
        return f"DarajaClient({self.config!r})"

    # -- token ----------------------------------------------------------------------------------

    def access_token(self, force_refresh: bool = False) -> str:
        """A valid access token: the shared one from Redis, or a new one fetched under the lock
        (also when `force_refresh`, which replaces whatever is cached)."""
        if not force_refresh and (cached := self._cached_token()):
            return cached
        wait = 2 * (self.config.connect_timeout + self.config.read_timeout)
        wait += self.config.retry_delay + 5
        lock = self.redis.lock(self._token_key + ":lock", timeout=wait, blocking_timeout=wait)
        try:
            acquired = lock.acquire()
        except RedisError as exc:
            raise DarajaUnavailable(f"The token cache (Redis) is unavailable: {exc}") from None
        if not acquired:
            if cached := self._cached_token():
                return cached
            raise DarajaUnavailable("Timed out waiting for another process to fetch the token.")
        try:
            # Another process may have fetched one while we waited for the lock.
            if not force_refresh and (cached := self._cached_token()):
                return cached
            token, lifetime = self._fetch_token()
            ttl = max(1, lifetime - min(TOKEN_REFRESH_MARGIN, lifetime // 10))
            stored = self._stored[token] = self._seal(token)
            self._redis(lambda: self.redis.set(self._token_key, stored, ex=ttl))
            return token
        finally:
            try:
                lock.release()
            except (LockError, RedisError):
                log.warning("daraja: the token lock expired before it was released")

    def _redis(self, operation):
        try:
            return operation()
        except RedisError as exc:
            raise DarajaUnavailable(f"The token cache (Redis) is unavailable: {exc}") from None

    def _cached_token(self) -> str | None:
        stored = self._redis(lambda: self.redis.get(self._token_key))
        if isinstance(stored, bytes):
            stored = stored.decode()
        token = self._unseal(stored) if stored else None
        if token:
            self._stored[token] = stored
        return token or None

    def _discard_token(self, token: str) -> None:
        """Drops the cached token only if it is still `token`: a newer one fetched by another
        process after ours failed must survive."""
        script = self.redis.register_script(_COMPARE_AND_DELETE)
        stored = self._stored.get(token, token)
        self._redis(lambda: script(keys=[self._token_key], args=[stored]))

    def _fetch_token(self) -> tuple[str, int]:
        config = self.config
        if not (config.consumer_key and config.consumer_secret):
            raise DarajaNotConfigured("The M-Pesa consumer key and secret are not set.")
        response = self._send(
            "GET",
            "/oauth/v1/generate",
            idempotent=True,
            params={"grant_type": "client_credentials"},
            auth=(config.consumer_key, config.consumer_secret),
        )
        body = _json_body(response)
        code, request_id, message = _error_fields(body)
        if response.status_code >= 500:
            raise DarajaUnavailable(
                message or "M-Pesa's token service failed.",
                error_code=code,
                request_id=request_id,
                http_status=response.status_code,
            )
        if response.status_code >= 300:
            raise DarajaAuthError(
                message or "M-Pesa refused the consumer key and secret.",
                error_code=code,
                request_id=request_id,
                http_status=response.status_code,
            )
        token = body.get("access_token") if isinstance(body, dict) else None
        try:
            lifetime = int(str(body.get("expires_in")).strip())
        except (AttributeError, TypeError, ValueError):
            lifetime = 0
        if not isinstance(token, str) or not token or lifetime <= 0:
            raise DarajaBadResponse(
                "The token answer lacks access_token or a positive expires_in.",
                http_status=response.status_code,
                maybe_sent=False,
            )
        log.info("daraja: fetched a new access token (expires in %ss)", lifetime)
        return token, lifetime

    # -- HTTP -----------------------------------------------------------------------------------

    def _send(self, method: str, path: str, *, idempotent: bool, **kwargs) -> requests.Response:
        """One HTTP exchange, repeated once when the call only asks and the failure was the
        network's or a gateway's (never for a Daraja error body)."""
        attempts = 2 if idempotent else 1
        url = self.config.url + path
        timeout = (self.config.connect_timeout, self.config.read_timeout)
        for attempt in range(1, attempts + 1):
            try:
                response = self.session.request(
                    method, url, timeout=timeout, allow_redirects=False, **kwargs
                )
            except requests.exceptions.ReadTimeout:
                error: DarajaError = DarajaTimeout(
                    f"No answer from M-Pesa to {path} within {self.config.read_timeout:g} s; "
                    "the request may have been received."
                )
            except requests.exceptions.ConnectionError as exc:
                if _never_connected(exc):
                    error = DarajaUnavailable(f"Could not connect to M-Pesa for {path}.")
                else:
                    error = DarajaTimeout(
                        f"The connection dropped after {path} was sent; "
                        "the request may have been received."
                    )
            except requests.exceptions.RequestException as exc:
                error = DarajaUnavailable(f"Could not send {path}: {type(exc).__name__}.")
            else:
                gateway_failure = (
                    response.status_code >= 500 and not _error_fields(_json_body(response))[0]
                )
                if not (gateway_failure and attempt < attempts):
                    return response
                error = DarajaUnavailable(f"HTTP {response.status_code}")
            if attempt < attempts:
                log.warning("daraja: %s failed (%s); retrying once", path, error)
                time.sleep(self.config.retry_delay)
                continue
            raise error
        raise AssertionError("unreachable")

    def _post(self, path: str, body: dict, *, idempotent: bool) -> dict:
        """The JSON object Daraja answered to a POST; after an invalid-token error the token is
        replaced and the POST sent once more (the gateway refused the first one)."""
        token = self.access_token()
        for attempt in (1, 2):
            response = self._send(
                "POST",
                path,
                idempotent=idempotent,
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
            answer = _json_body(response)
            code, request_id, message = _error_fields(answer)
            status = response.status_code
            _log_exchange(path, status, answer, code, request_id)
            invalid_token = code in INVALID_TOKEN_CODES or (status == 401 and not code)
            if invalid_token and attempt == 1:
                log.warning("daraja: %s refused the token (%s); fetching a new one", path, code)
                self._discard_token(token)
                token = self.access_token()
                continue
            if code or (400 <= status < 500):
                raise DarajaRejected(
                    message or f"M-Pesa refused {path} (HTTP {status}).",
                    error_code=code,
                    request_id=request_id,
                    http_status=status,
                    maybe_sent=not idempotent and code in AMBIGUOUS_ERROR_CODES,
                )
            if status >= 300 or not isinstance(answer, dict):
                raise DarajaBadResponse(
                    f"M-Pesa answered {path} with HTTP {status} and no JSON object.",
                    http_status=status,
                    maybe_sent=not idempotent,
                )
            return answer
        raise AssertionError("unreachable")

    def _accepted(self, path: str, answer: dict, *, maybe_sent: bool) -> str:
        """The ResponseCode when it means accepted; DarajaRejected when it does not."""
        code = answer.get("ResponseCode")
        if code is None:
            raise DarajaBadResponse(
                f"M-Pesa's answer to {path} has no ResponseCode.", maybe_sent=maybe_sent
            )
        if not is_accepted_code(code):
            raise DarajaRejected(
                _text(answer.get("ResponseDescription")) or f"M-Pesa did not accept {path}.",
                error_code=_text(code),
                request_id=_text(answer.get("requestId")) or None,
            )
        return _text(code)

    def _require(self, **settings: Any) -> None:
        missing = [name for name, value in settings.items() if not value]
        if missing:
            raise DarajaNotConfigured(f"M-Pesa settings missing: {', '.join(missing)}.")

    # -- M-Pesa Express (STK Push) ---------------------------------------------------------------

    def stk_push(
        self,
        phone: str,
        amount: int,
        account_reference: str,
        description: str,
        callback_url: str,
        now: datetime | None = None,
    ) -> StkPushAccepted:
        """Sends the payment prompt to `phone`. Never repeated after it may have been sent."""
        config = self.config
        self._require(shortcode=config.shortcode, passkey=config.passkey)
        timestamp = nairobi_timestamp(now)
        path = "/mpesa/stkpush/v1/processrequest"
        answer = self._post(
            path,
            {
                "BusinessShortCode": config.shortcode,
                "Password": stk_password(config.shortcode, config.passkey, timestamp),
                "Timestamp": timestamp,
                "TransactionType": config.transaction_type,
                "Amount": _check_amount(amount),
                "PartyA": _check_phone(phone),
                "PartyB": config.party_b or config.shortcode,
                "PhoneNumber": phone,
                "CallBackURL": callback_url,
                "AccountReference": account_reference,
                "TransactionDesc": description,
            },
            idempotent=False,
        )
        code = self._accepted(path, answer, maybe_sent=True)
        merchant_id = _text(answer.get("MerchantRequestID"))
        checkout_id = _text(answer.get("CheckoutRequestID"))
        if not (merchant_id and checkout_id):
            raise DarajaBadResponse(f"M-Pesa's answer to {path} has no request ids.")
        return StkPushAccepted(
            merchant_request_id=merchant_id,
            checkout_request_id=checkout_id,
            response_code=code,
            response_description=_text(answer.get("ResponseDescription")),
            customer_message=_text(answer.get("CustomerMessage")),
        )

    def stk_query(self, checkout_request_id: str, now: datetime | None = None) -> StkQueryAnswer:
        """The state of an STK Push; pending while Daraja says it is still being processed."""
        config = self.config
        self._require(shortcode=config.shortcode, passkey=config.passkey)
        timestamp = nairobi_timestamp(now)
        path = "/mpesa/stkpushquery/v1/query"
        body = {
            "BusinessShortCode": config.shortcode,
            "Password": stk_password(config.shortcode, config.passkey, timestamp),
            "Timestamp": timestamp,
            "CheckoutRequestID": checkout_request_id,
        }
        try:
            answer = self._post(path, body, idempotent=True)
        except DarajaRejected as exc:
            # Daraja answers "The transaction is being processed" as an error body; the same code
            # also means "wrong credentials", so the text decides here, and only here.
            processing = "being processed" in (exc.message or "").lower()
            if exc.error_code == STK_QUERY_PROCESSING_CODE and processing:
                return StkQueryAnswer(True, None, exc.message, None, checkout_request_id)
            raise
        self._accepted(path, answer, maybe_sent=False)
        result_code = _text(answer.get("ResultCode")) or None
        return StkQueryAnswer(
            pending=result_code is None or result_code in STK_QUERY_PENDING_RESULT_CODES,
            result_code=result_code,
            result_desc=_text(answer.get("ResultDesc")),
            merchant_request_id=_text(answer.get("MerchantRequestID")) or None,
            checkout_request_id=_text(answer.get("CheckoutRequestID")) or checkout_request_id,
        )

    # -- requests answered on ResultURL ----------------------------------------------------------

    def _queued(self, path: str, body: dict, *, idempotent: bool) -> Accepted:
        answer = self._post(path, body, idempotent=idempotent)
        code = self._accepted(path, answer, maybe_sent=not idempotent)
        conversation_id = _text(answer.get("ConversationID"))
        originator_id = _text(answer.get("OriginatorConversationID"))
        if not conversation_id:
            raise DarajaBadResponse(
                f"M-Pesa's answer to {path} has no ConversationID.", maybe_sent=not idempotent
            )
        return Accepted(
            conversation_id=conversation_id,
            originator_conversation_id=originator_id,
            response_code=code,
            response_description=_text(answer.get("ResponseDescription")),
        )

    def _initiator(self) -> dict:
        config = self.config
        self._require(
            initiator_name=config.initiator_name, security_credential=config.security_credential
        )
        return {
            "Initiator": config.initiator_name,
            "SecurityCredential": config.security_credential,
        }

    def b2c_payment(
        self,
        originator_conversation_id: str,
        phone: str,
        amount: int,
        remarks: str,
        result_url: str,
        timeout_url: str,
        occasion: str | None = None,
        command_id: str = "BusinessPayment",
    ) -> Accepted:
        """Sends money to `phone` (B2C v3). Never repeated after it may have been sent; a resend
        must reuse `originator_conversation_id`, which Daraja refuses as a duplicate."""
        config = self.config
        initiator = self._initiator()
        self._require(b2c_shortcode=config.b2c_shortcode)
        if not originator_conversation_id:
            raise ValueError("B2C needs our own OriginatorConversationID.")
        body = {
            "OriginatorConversationID": originator_conversation_id,
            "InitiatorName": initiator["Initiator"],
            "SecurityCredential": initiator["SecurityCredential"],
            "CommandID": command_id,
            "Amount": _check_amount(amount),
            "PartyA": config.b2c_shortcode,
            "PartyB": _check_phone(phone),
            "Remarks": remarks,
            "QueueTimeOutURL": timeout_url,
            "ResultURL": result_url,
        }
        if occasion:
            body["Occassion"] = occasion  # Daraja's documented spelling
        return self._queued("/mpesa/b2c/v3/paymentrequest", body, idempotent=False)

    def transaction_status(
        self,
        result_url: str,
        timeout_url: str,
        transaction_id: str | None = None,
        original_conversation_id: str | None = None,
        remarks: str = "Status",
        party_a: str | None = None,
        identifier_type: str = "4",
        occasion: str | None = None,
    ) -> Accepted:
        """Asks for the outcome of a transaction by receipt or by our OriginatorConversationID;
        the answer comes to `result_url`."""
        if not (transaction_id or original_conversation_id):
            raise ValueError("Transaction Status needs a receipt or an OriginatorConversationID.")
        config = self.config
        party_a = party_a or config.b2c_shortcode or config.shortcode
        self._require(party_a=party_a)
        body = {
            **self._initiator(),
            "CommandID": "TransactionStatusQuery",
            "PartyA": party_a,
            "IdentifierType": identifier_type,
            "ResultURL": result_url,
            "QueueTimeOutURL": timeout_url,
            "Remarks": remarks,
        }
        if transaction_id:
            body["TransactionID"] = transaction_id
        if original_conversation_id:
            body["OriginalConversationID"] = original_conversation_id
        if occasion:
            body["Occasion"] = occasion
        return self._queued("/mpesa/transactionstatus/v1/query", body, idempotent=True)

    def account_balance(
        self,
        result_url: str,
        timeout_url: str,
        remarks: str = "Balance",
        party_a: str | None = None,
        identifier_type: str = "4",
    ) -> Accepted:
        """Asks for the shortcode's balances (the B2C shortcode by default); the answer comes to
        `result_url`."""
        config = self.config
        party_a = party_a or config.b2c_shortcode or config.shortcode
        self._require(party_a=party_a)
        body = {
            **self._initiator(),
            "CommandID": "AccountBalance",
            "PartyA": party_a,
            "IdentifierType": identifier_type,
            "Remarks": remarks,
            "QueueTimeOutURL": timeout_url,
            "ResultURL": result_url,
        }
        return self._queued("/mpesa/accountbalance/v1/query", body, idempotent=True)

    # -- C2B --------------------------------------------------------------------------------------

    def _c2b_version(self, version: str | None) -> str:
        version = version or self.config.c2b_register_version
        if version not in C2B_VERSIONS:
            raise ValueError("The C2B API version must be v1 or v2.")
        return version

    def register_c2b_urls(
        self,
        confirmation_url: str,
        validation_url: str,
        response_type: str = "Completed",
        version: str | None = None,
    ) -> dict:
        """Registers the paybill's confirmation and validation URLs; Daraja's answer as a dict."""
        if response_type not in C2B_RESPONSE_TYPES:
            raise ValueError("ResponseType must be Completed or Cancelled.")
        self._require(shortcode=self.config.shortcode)
        path = f"/mpesa/c2b/{self._c2b_version(version)}/registerurl"
        body = {
            "ShortCode": self.config.shortcode,
            "ResponseType": response_type,
            "ConfirmationURL": confirmation_url,
            "ValidationURL": validation_url,
        }
        answer = self._post(path, body, idempotent=False)
        self._accepted(path, answer, maybe_sent=False)
        return answer

    def c2b_simulate(
        self, phone: str, amount: int, bill_ref: str | None, version: str | None = None
    ) -> dict:
        """Makes the sandbox pay the paybill as if `phone` had; refused in production."""
        if self.config.environment == "production":
            raise DarajaNotConfigured("C2B simulate exists only in the sandbox.")
        self._require(shortcode=self.config.shortcode)
        path = f"/mpesa/c2b/{self._c2b_version(version)}/simulate"
        body = {
            "ShortCode": self.config.shortcode,
            "CommandID": self.config.transaction_type,
            "Amount": _check_amount(amount),
            "Msisdn": _check_phone(phone),
            "BillRefNumber": bill_ref,
        }
        answer = self._post(path, body, idempotent=False)
        self._accepted(path, answer, maybe_sent=True)
        return answer
