"""Pages a person uses: the virtual phone, the paybill form, the certificate and the statement.
Plain server-rendered HTML with POST forms; no JavaScript needed."""

from datetime import date
from decimal import Decimal, InvalidOperation

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)

from sandbox.daraja import statement
from sandbox.daraja.control import BadRequest, credentials_of, simulate_c2b
from sandbox.daraja.outcomes import B2C_OUTCOMES, PHONE_ACTIONS, STK_OUTCOMES
from sandbox.daraja.simulator import DarajaSimulator

pages = Blueprint("daraja_pages", __name__, url_prefix="/sandbox")


def simulator() -> DarajaSimulator:
    return current_app.extensions["daraja"]


@pages.get("/phone")
def phone():
    """Open prompts grouped by phone, each with Pay / Cancel / Wrong PIN buttons."""
    only = request.args.get("phone", "").strip()
    stk = [t for t in simulator().state.list("stk") if not only or t.phone == only]
    waiting: dict[str, list] = {}
    for txn in stk:
        if not txn.finished:
            waiting.setdefault(txn.phone, []).append(txn)
    recent = [t for t in reversed(stk) if t.finished][:20]
    return render_template(
        "daraja/phone.html",
        waiting=waiting,
        recent=recent,
        only=only,
        actions=PHONE_ACTIONS,
        mode=simulator().mode(),
        message=request.args.get("message", ""),
    )


@pages.post("/phone/<checkout_id>")
def press(checkout_id: str):
    """A button on the virtual phone; back to the phone page with what happened."""
    action = request.form.get("action", "")
    if action not in PHONE_ACTIONS:
        abort(400, f"unknown action {action!r}")
    try:
        txn = simulator().press(checkout_id, action)
        message = f"{txn.phone}: {txn.result_desc} ({txn.result_code})"
    except (LookupError, ValueError) as exc:
        message = str(exc).strip("'\"")
    return redirect(url_for(".phone", phone=request.form.get("phone", ""), message=message))


@pages.route("/paybill", methods=["GET", "POST"])
def paybill():
    """A customer paying the paybill from their phone (C2B)."""
    sim = simulator()
    form, error, status = dict(request.form), "", 200
    if request.method == "POST":
        try:
            txn = simulate_c2b(form)
            return redirect(url_for(".paybill", done=txn.receipt))
        except BadRequest as exc:
            error, status = exc.message, 422
    done = sim.state.find(request.args.get("done", "")) if request.args.get("done") else None
    recent = list(reversed(sim.state.list("c2b")))[:20]
    return (
        render_template(
            "daraja/paybill.html",
            form=form,
            error=error,
            done=done,
            recent=recent,
            shortcodes=sim.shortcodes,
            registrations=sim.state.c2b_urls,
        ),
        status,
    )


@pages.get("/certificate.cer")
def certificate():
    """The certificate whose key decrypts SecurityCredential: PEM, or DER with `?format=der`."""
    keys = simulator().keys
    if request.args.get("format", "pem").lower() == "der":
        return Response(
            keys.certificate_der,
            mimetype="application/pkix-cert",
            headers={"Content-Disposition": 'attachment; filename="SandboxCertificate.cer"'},
        )
    return Response(keys.certificate_pem, mimetype="application/x-pem-file")


def _date(name: str) -> date | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        abort(400, f"{name} must be a date like 2026-07-01")


@pages.get("/statement.csv")
def statement_csv():
    """The org-portal statement. Query: shortcode, from, to (YYYY-MM-DD), date_format=portal|iso,
    and discrepancies for tests: omit=R1,R2  amend=R1:150.00  extra=N."""
    sim = simulator()
    shortcode = request.args.get("shortcode") or sim.shortcodes[0]
    if shortcode not in sim.shortcodes:
        abort(400, f"unknown shortcode {shortcode}")
    date_format = request.args.get("date_format", "portal")
    if date_format not in statement.DATE_FORMATS:
        abort(400, "date_format must be portal or iso")
    changes = statement.Discrepancies()
    changes.omit = {r.strip() for r in request.args.get("omit", "").split(",") if r.strip()}
    for item in filter(None, request.args.get("amend", "").split(",")):
        receipt, _, amount = item.partition(":")
        try:
            changes.amend[receipt.strip()] = Decimal(amount)
        except (ArithmeticError, InvalidOperation):
            abort(400, f"amend {item!r} must be RECEIPT:AMOUNT")
    try:
        changes.extra = max(0, min(100, int(request.args.get("extra", "0"))))
    except ValueError:
        abort(400, "extra must be a number")
    name, text = statement.build(
        sim.state,
        shortcode,
        start=_date("from"),
        end=_date("to"),
        date_format=date_format,
        changes=changes,
    )
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@pages.post("/daraja/mode")
def set_mode():
    """The mode form on the index page."""
    form = request.form
    changes = {
        "mode": form.get("mode", "auto"),
        "delay": form.get("delay", ""),
        "drop_callbacks": "drop_callbacks" in form,
        "duplicate_callbacks": "duplicate_callbacks" in form,
        "stk_outcome": form.get("stk_outcome") or None,
        "b2c_outcome": form.get("b2c_outcome") or None,
    }
    try:
        simulator().set_mode(changes)
    except ValueError as exc:
        abort(400, str(exc))
    return redirect(url_for("sandbox_index"))


def index_context() -> dict:
    """What the sandbox index page shows about Daraja."""
    sim = simulator()
    return {
        "daraja_credentials": credentials_of(current_app.config),
        "daraja_mode": sim.mode(),
        "daraja_transactions": list(reversed(sim.state.list()))[:15],
        "stk_outcomes": STK_OUTCOMES,
        "b2c_outcomes": B2C_OUTCOMES,
    }
