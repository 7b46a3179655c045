"""Daraja's synchronous error bodies: `{"requestId", "errorCode", "errorMessage"}`, with the HTTP
status taken from the code's first part (400.002.02 -> 400), as Daraja's gateway does."""

from flask import jsonify

from sandbox.daraja import ids


class DarajaError(Exception):
    def __init__(self, code: str, message: str, request_id: str | None = None):
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.request_id = request_id

    @property
    def http_status(self) -> int:
        return int(self.code.split(".")[0])

    def body(self) -> dict:
        return {
            "requestId": self.request_id or ids.request_id(),
            "errorCode": self.code,
            "errorMessage": self.message,
        }

    def response(self):
        return jsonify(self.body()), self.http_status


def invalid(field: str, code: str = "400.002.02", detail: str = "") -> DarajaError:
    """`Bad Request - Invalid <field>`, Daraja's answer to a field that breaks its rules."""
    message = f"Bad Request - Invalid {field}"
    return DarajaError(code, f"{message} - {detail}" if detail else message)


INVALID_PAYLOAD = ("400.002.05", "Invalid Request Payload")
INVALID_GRANT_TYPE = ("400.008.02", "Invalid grant type passed")
INVALID_AUTHENTICATION = ("400.008.01", "Invalid Authentication passed")
INVALID_ACCESS_TOKEN = ("404.001.03", "Invalid Access Token")
INVALID_AUTH_HEADER = ("404.001.04", "Invalid Authentication Header")
NO_API_PRODUCT = (
    "401.003.01",
    "Error Occurred - Invalid Access Token - Invalid API call as no apiproduct match found",
)
RESOURCE_NOT_FOUND = ("404.001.01", "Resource not found")
METHOD_NOT_ALLOWED = ("405.001", "Method Not Allowed")
WRONG_CREDENTIALS = ("500.001.1001", "Wrong credentials")
MERCHANT_DOES_NOT_EXIST = ("500.001.1001", "Merchant does not exist")
SUBSCRIBER_LOCKED = (
    "500.001.1001",
    "Unable to lock subscriber, a transaction is already in process for the current subscriber",
)
BEING_PROCESSED = ("500.001.1001", "The transaction is being processed")
DUPLICATE_ORIGINATOR_ID = ("500.002.1001", "Duplicate OriginatorConversationID.")
INTERNAL_ERROR = ("500.003.1001", "Internal Server Error")


def error(pair: tuple[str, str], request_id: str | None = None) -> DarajaError:
    return DarajaError(pair[0], pair[1], request_id)
