"""The Daraja part of the JSON control API (`/sandbox/api/daraja/...`), for tests and demos."""

import re

from flask import Blueprint, current_app, jsonify, request

from sandbox.daraja.outcomes import PHONE_ACTIONS
from sandbox.daraja.payloads import balance_string
from sandbox.daraja.rules import C2B_COMMAND_IDS
from sandbox.daraja.simulator import DarajaSimulator

control = Blueprint("daraja_control", __name__, url_prefix="/sandbox/api/daraja")


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


@control.errorhandler(BadRequest)
def bad_request(exc: BadRequest):
    return jsonify({"error": exc.message}), exc.status


def simulator() -> DarajaSimulator:
    return current_app.extensions["daraja"]


def json_body() -> dict:
    body = request.get_json(silent=True)
    if body is None and not request.get_data():
        return {}
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def normalise_phone(value) -> str:
    """2547XXXXXXXX or 2541XXXXXXXX from 07.../01..., +254... or 254...; BadRequest otherwise."""
    digits = re.sub(r"[\s-]", "", str(value or "")).removeprefix("+")
    if re.fullmatch(r"0[71]\d{8}", digits):
        digits = "254" + digits[1:]
    if not re.fullmatch(r"254[71]\d{8}", digits):
        raise BadRequest("phone must be a Safaricom number like 254712345678 or 0712345678")
    return digits


def whole_amount(value) -> int:
    text = str(value or "").strip()
    if not re.fullmatch(r"\d+(\.0+)?", text) or int(text.split(".")[0]) < 1:
        raise BadRequest("amount must be a whole number of shillings, at least 1")
    return int(text.split(".")[0])


def simulate_c2b(body: dict):
    """Shared by the JSON API and the paybill page: checks the fields, starts the payment."""
    sim = simulator()
    shortcode = str(body.get("shortcode") or sim.shortcodes[0])
    if shortcode not in sim.shortcodes:
        raise BadRequest(f"unknown shortcode {shortcode}; known: {', '.join(sim.shortcodes)}")
    command = body.get("command_id") or "CustomerPayBillOnline"
    if command not in C2B_COMMAND_IDS:
        raise BadRequest(f"command_id must be one of {', '.join(C2B_COMMAND_IDS)}")
    account = str(body.get("account") or "").strip()
    if command == "CustomerPayBillOnline" and not 1 <= len(account) <= 20:
        raise BadRequest("account (BillRefNumber) must have 1 to 20 characters")
    return sim.start_c2b(
        shortcode,
        normalise_phone(body.get("phone")),
        whole_amount(body.get("amount")),
        account,
        command,
        (body.get("name") or "").strip() or None,
    )


@control.get("/transactions")
def transactions():
    """Every transaction and query, oldest first; `?kind=stk|b2c|c2b|status_query|balance_query`."""
    kind = request.args.get("kind") or None
    return jsonify([t.to_dict() for t in simulator().state.list(kind)])


@control.get("/transactions/<key>")
def transaction(key: str):
    """One transaction by CheckoutRequestID, ConversationID, OriginatorConversationID or receipt."""
    txn = simulator().state.find(key)
    if txn is None:
        raise BadRequest(f"no transaction {key}", 404)
    return jsonify(txn.to_dict())


@control.route("/mode", methods=["GET", "POST"])
def mode():
    """Reads, or changes (POST a JSON object of settings), how the simulator behaves."""
    if request.method == "GET":
        return jsonify(simulator().mode())
    try:
        return jsonify(simulator().set_mode(json_body()))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


@control.post("/stk/<checkout_id>/press")
def press(checkout_id: str):
    """Presses a button on the virtual phone: `{"action": "pay|cancel|wrong_pin|..."}`."""
    action = json_body().get("action")
    if action not in PHONE_ACTIONS:
        raise BadRequest(f"action must be one of {', '.join(PHONE_ACTIONS)}")
    try:
        return jsonify(simulator().press(checkout_id, action).to_dict())
    except LookupError as exc:
        raise BadRequest(str(exc).strip("'\""), 404) from None
    except ValueError as exc:
        raise BadRequest(str(exc), 409) from None


@control.post("/c2b")
def c2b():
    """A customer pays the paybill: `{"phone", "amount", "account", "shortcode"?, "name"?,
    "command_id"?}`; validation and confirmation callbacks follow."""
    return jsonify(simulate_c2b(json_body()).to_dict()), 201


@control.get("/tokens")
def tokens():
    """How many tokens were issued (a shared client fetches one), per consumer key."""
    return jsonify(simulator().token_counts())


@control.post("/tokens/expire")
def expire_tokens():
    """Invalidates every token, as if they had expired."""
    return jsonify({"expired": simulator().expire_tokens()})


@control.post("/customers")
def register_customer():
    """Sets the registered name M-Pesa shows for a phone: `{"phone", "name"}`."""
    body = json_body()
    name = str(body.get("name") or "").strip()
    if not name:
        raise BadRequest("name is required")
    phone = normalise_phone(body.get("phone"))
    simulator().register_customer(phone, name)
    return jsonify({"phone": phone, "name": name.upper()}), 201


@control.get("/balances")
def balances():
    """Each shortcode's account balances, as Decimal strings and in Daraja's AccountBalance text."""
    sim = simulator()
    with sim.state.lock:
        return jsonify(
            {
                code: {
                    "working": str(a.working),
                    "utility": str(a.utility),
                    "charges_paid": str(a.charges_paid),
                    "account_balance": balance_string(a),
                }
                for code, a in sim.state.accounts.items()
            }
        )


@control.get("/c2b/registrations")
def registrations():
    with simulator().state.lock:
        return jsonify({code: vars(r) for code, r in simulator().state.c2b_urls.items()})


@control.get("/credentials")
def credentials():
    """The throwaway credentials this sandbox accepts."""
    return jsonify(credentials_of(current_app.config))


def credentials_of(config) -> dict:
    return {
        "consumer_key": config["SANDBOX_DARAJA_CONSUMER_KEY"],
        "consumer_secret": config["SANDBOX_DARAJA_CONSUMER_SECRET"],
        "shortcode": config["SANDBOX_DARAJA_SHORTCODES"][0],
        "shortcodes": list(config["SANDBOX_DARAJA_SHORTCODES"]),
        "passkey": config["SANDBOX_DARAJA_PASSKEY"],
        "initiator_name": config["SANDBOX_DARAJA_INITIATOR_NAME"],
        "initiator_password": config["SANDBOX_DARAJA_INITIATOR_PASSWORD"],
    }
