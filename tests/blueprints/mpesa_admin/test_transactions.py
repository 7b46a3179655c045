"""The transaction monitor: the list with its filters, pages and auto-refresh; one transaction with
every field and the timeline of its callbacks (bodies escaped); the query-status button; the
second approval of a large disbursement; and the live status panel the member and loan pages
poll. Each as a full page and as its htmx partial."""

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, select, update

from app import clock
from app.extensions import db
from app.jobs import get_queue
from app.models import CallbackKind, MpesaStatus, MpesaTransaction
from app.models.base import utcnow
from app.services.mpesa import callbacks, disbursements
from tests import factories
from tests.blueprints.mpesa_admin.conftest import ESCAPED, HX, XSS, is_page, mark_sent
from tests.factories import SYSTEM

LIST = "/integrations/mpesa/transactions"
DETAIL = "/integrations/mpesa/transactions/detail"
LIVE = "/integrations/mpesa/transactions/live"


def reload(txn_id: int) -> MpesaTransaction:
    db.session.expire_all()
    return db.session.get(MpesaTransaction, txn_id)


def stk_callback(checkout_id: str, merchant_id: str, amount, phone: str, code=0, desc=None,
                 receipt="NLJ7RT61SV") -> bytes:  # fmt: skip
    """An STK callback in Daraja's shape (stk_callback_success.json) for our request."""
    body = {"MerchantRequestID": merchant_id, "CheckoutRequestID": checkout_id,
            "ResultCode": code, "ResultDesc": desc or "The service request is processed successfully."}  # fmt: skip
    if code == 0:
        body["CallbackMetadata"] = {"Item": [
            {"Name": "Amount", "Value": float(amount)},
            {"Name": "MpesaReceiptNumber", "Value": receipt},
            {"Name": "TransactionDate", "Value": 20260301102115},
            {"Name": "PhoneNumber", "Value": int(phone)},
        ]}  # fmt: skip
    return json.dumps({"Body": {"stkCallback": body}}).encode()


def deliver(kind, raw: bytes, headers=None) -> int:
    """A callback stored by the route and processed by its job (called directly)."""
    callback, errors = callbacks.receive(
        kind, raw, headers or {"Content-Type": "application/json"}, "196.201.214.200"
    )
    if errors is None:
        callbacks.process(callback.id)
    return callback.id


def sending_jobs() -> list[tuple]:
    """The arguments of each disbursement-sending job waiting in the queue."""
    return [
        job.args for job in get_queue("high").jobs if job.func_name == "app.jobs.mpesa.send_b2c"
    ]


@pytest.fixture
def approved(member, product):
    return factories.approved_loan(member, product, Decimal("12000"))


# --- list -------------------------------------------------------------------------------------


def test_list_full_page_and_partial(viewer_client, stk_request, member):
    txn = stk_request("1500")
    page = viewer_client.get(LIST)
    assert page.status_code == 200 and is_page(page)
    assert 'id="mpesa-filters"' in page.text and 'id="mpesa-transactions"' in page.text
    assert f'href="{DETAIL}?transaction_id={txn.id}"' in page.text
    assert member.member_number in page.text and "1,500.00" in page.text
    assert "HX-Request" in page.headers["Vary"]
    # Refreshed every few seconds while the page is open and visible.
    assert "every 5s [document.visibilityState === 'visible']" in page.text

    partial = viewer_client.get(LIST, headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<div id="mpesa-transactions"')


def test_empty_list(viewer_client):
    response = viewer_client.get(LIST, headers=HX)
    assert response.status_code == 200 and "No M-Pesa transactions yet." in response.text


def test_filters(viewer_client, stk_request, approved, member):
    contribution = stk_request("1500")
    other = factories.member(phone="0722000111")
    theirs = stk_request("700", phone=other.phone, member_id=other.id,
                         account_reference=other.member_number)  # fmt: skip
    payout = disbursements.request_disbursement(approved.id, SYSTEM)
    db.session.execute(
        update(MpesaTransaction)
        .where(MpesaTransaction.id == theirs.id)
        .values(mpesa_receipt_number="SGH12ABC34", status=MpesaStatus.COMPLETED,
                created_at=utcnow() - timedelta(days=10))
    )  # fmt: skip
    db.session.commit()

    def ids(**params) -> set[int]:
        response = viewer_client.get(LIST, query_string=params, headers=HX)
        assert response.status_code == 200, response.text
        return {int(n) for n in re.findall(r'id="txn-(\d+)"', response.text)}

    assert ids() == {contribution.id, theirs.id, payout.id}
    assert ids(transaction_type="b2c") == {payout.id}
    assert ids(status="completed") == {theirs.id}
    assert ids(phone="0722 000 111") == {theirs.id}
    assert ids(receipt="sgh12abc34") == {theirs.id}
    assert ids(member=member.member_number.lower()) == {contribution.id, payout.id}
    today = clock.today()
    assert ids(date_from=(today - timedelta(days=1)).isoformat()) == {contribution.id, payout.id}
    assert ids(date_to=(today - timedelta(days=5)).isoformat()) == {theirs.id}
    assert ids(status="failed") == set()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"phone": "12345"}, "Enter a Kenyan mobile number"),
        ({"date_from": "2026-13-01"}, "Enter a date as YYYY-MM-DD."),
        ({"date_from": "2026-03-02", "date_to": "2026-03-01"}, "The end date is before the start"),
        ({"member": "DST999999"}, "No member has this number."),
        ({"receipt": "<b>"}, "A receipt is letters and digits only"),
        ({"status": "lost"}, "Choose one of the listed statuses."),
    ],
)
def test_bad_filters_are_422_with_the_message(viewer_client, params, message):
    response = viewer_client.get(LIST, query_string=params, headers=HX)
    assert response.status_code == 422 and message in response.text
    assert "hx-trigger" not in response.text.split('<div id="flash"')[0]  # no refresh of an error


def test_pages(viewer_client, stk_request, member):
    first = stk_request("1000")
    for n in range(50):
        db.session.add(MpesaTransaction(
            transaction_type="c2b", status="completed", environment="sandbox",
            amount=Decimal(100 + n), account_reference="DST000001",
            mpesa_receipt_number=f"RCP{n:07d}",
        ))  # fmt: skip
    db.session.commit()
    page1 = viewer_client.get(LIST, headers=HX)
    assert "Page 1 of 2" in page1.text and f'id="txn-{first.id}"' not in page1.text
    assert 'hx-get="/integrations/mpesa/transactions?page=2"' in page1.text
    page2 = viewer_client.get(LIST, query_string={"page": 2}, headers=HX)
    assert f'id="txn-{first.id}"' in page2.text and "Page 2 of 2" in page2.text
    # The refresh reloads the page being looked at, with its filters.
    assert 'hx-get="/integrations/mpesa/transactions?page=2"' in page2.text.split(">")[0]


def test_the_number_of_queries_does_not_grow_with_the_page(viewer_client):
    statements = []

    def add_paybill_payments(count: int) -> None:
        for n in range(count):
            owner = factories.member()
            db.session.add(MpesaTransaction(
                transaction_type="c2b", status="completed", environment="sandbox",
                member_id=owner.id, amount=Decimal(100 + n), account_reference=owner.member_number,
            ))  # fmt: skip
        db.session.commit()

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    def queries() -> int:
        statements.clear()
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            response = viewer_client.get(LIST, headers=HX)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        assert response.status_code == 200
        return len(statements)

    add_paybill_payments(3)
    few = queries()
    add_paybill_payments(30)
    assert queries() == few


# --- detail -----------------------------------------------------------------------------------


def test_detail_full_page_and_partial(viewer_client, stk_request, member):
    txn = stk_request("1500")
    mark_sent(txn, "ws_CO_0001", "29115-1")
    page = viewer_client.get(DETAIL, query_string={"transaction_id": txn.id})
    assert page.status_code == 200 and is_page(page)
    for text in ("STK Push (payment request) #", "ws_CO_0001", "29115-1", member.member_number,
                 "1,500.00", "Contribution", "deposit", "mpesa.stk_requested", "Timeline"):  # fmt: skip
        assert text in page.text
    assert "No callback has come for this transaction." in page.text
    # Open: the live status polls, but a viewer has no query button.
    assert f'id="mpesa-live-{txn.id}"' in page.text and "Query status" not in page.text

    partial = viewer_client.get(DETAIL, query_string={"transaction_id": txn.id}, headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<section id="mpesa-transaction"')


@pytest.mark.parametrize("raw", ["", "abc", "999999", "99999999999999999999"])
def test_detail_of_no_transaction_is_404(viewer_client, raw):
    response = viewer_client.get(DETAIL, query_string={"transaction_id": raw})
    assert response.status_code == 404


def test_callbacks_in_the_timeline_are_escaped(viewer_client, stk_request, member):
    txn = stk_request("1500")
    mark_sent(txn, "ws_CO_0002", "29115-2")
    raw = stk_callback("ws_CO_0002", "29115-2", "1500", txn.phone_number, code=1032,
                       desc=f"Cancelled {XSS}")  # fmt: skip
    deliver(CallbackKind.STK, raw, {"Content-Type": "application/json", "User-Agent": XSS})
    assert reload(txn.id).status == MpesaStatus.FAILED

    response = viewer_client.get(DETAIL, query_string={"transaction_id": txn.id})
    assert response.status_code == 200
    assert XSS not in response.text
    assert ESCAPED in response.text  # in the body, the header and the result
    assert '<pre class="excerpt callback-body">' in response.text
    assert "&#34;CheckoutRequestID&#34;: &#34;ws_CO_0002&#34;" in response.text
    assert "Callback stk" in response.text and "badge-processed" in response.text
    assert "Not paid: Cancelled" in response.text and "196.201.214.200" in response.text
    assert "Content-Type" in response.text and "User-Agent" in response.text

    listing = viewer_client.get(LIST, headers=HX)
    assert XSS not in listing.text and "Cancelled &lt;script&gt;" in listing.text


def test_a_callback_waiting_for_its_job_is_shown(viewer_client, stk_request):
    txn = stk_request("1500")
    mark_sent(txn, "ws_CO_0003", "29115-3")
    callbacks.receive(
        CallbackKind.STK,
        stk_callback("ws_CO_0003", "29115-3", "1500", txn.phone_number),
        {"Content-Type": "application/json"},
        "196.201.214.200",
    )  # stored, its job not run
    response = viewer_client.get(DETAIL, query_string={"transaction_id": txn.id})
    assert "badge-received" in response.text and "Waiting to be processed." in response.text


# --- query status -----------------------------------------------------------------------------


def test_query_status_button_unconfigured_says_why(officer_client, stk_request):
    txn = stk_request("1500")
    mark_sent(txn, "ws_CO_0004", "29115-4")
    page = officer_client.get(DETAIL, query_string={"transaction_id": txn.id})
    assert "Query status" in page.text
    response = officer_client.post(
        "/integrations/mpesa/transactions/query-status",
        data={"transaction_id": txn.id},
        headers=HX,
    )
    assert response.status_code == 200
    assert "STK Query failed: M-Pesa settings missing: shortcode, passkey." in response.text
    assert reload(txn.id).status_checks == 1


def test_query_status_on_the_sandbox_settles_the_request(
    officer_client, sandbox_settings, stk_request, run_jobs
):
    sandbox_settings.set_mode(stk_outcome="lost")  # paid, but the callback never comes
    txn = stk_request("1500")
    run_jobs()  # the sending job: Daraja (the sandbox) accepts the push
    assert reload(txn.id).status == MpesaStatus.PENDING and reload(txn.id).checkout_request_id
    sandbox_settings.flush()  # the member pays; the callback is lost on the way
    run_jobs()
    assert reload(txn.id).status == MpesaStatus.PENDING
    response = officer_client.post(
        "/integrations/mpesa/transactions/query-status",
        data={"transaction_id": txn.id},
        headers=HX,
    )
    assert response.status_code == 200, response.text
    settled = reload(txn.id)
    assert settled.status == MpesaStatus.COMPLETED and settled.contribution_id is not None
    assert 'id="mpesa-transaction"' in response.text and "badge-completed" in response.text


def test_query_status_of_a_settled_one_is_409(officer_client, stk_request):
    txn = stk_request("1500")
    response = officer_client.post(
        "/integrations/mpesa/transactions/query-status",
        data={"transaction_id": txn.id},
        headers=HX,
    )
    assert response.status_code == 409
    assert "This transaction is queued; there is nothing to ask M-Pesa." in response.text


def test_query_status_needs_record_payments(viewer_client, accountant_client, stk_request):
    txn = stk_request("1500")
    for browser in (viewer_client, accountant_client):
        response = browser.post(
            "/integrations/mpesa/transactions/query-status", data={"transaction_id": txn.id}
        )
        assert response.status_code == 403


# --- second approval --------------------------------------------------------------------------


@pytest.fixture
def awaiting(approved, officer_client, save_settings):
    """A disbursement above the second-approval amount, asked for by `officer_client`."""
    save_settings(b2c_second_approval_above="5000")
    response = officer_client.post(f"/loans/{approved.id}/mpesa-disbursement", headers=HX)
    assert response.status_code == 200, response.text
    return db.session.scalars(select(MpesaTransaction).filter_by(loan_id=approved.id)).one()


def test_the_requester_cannot_approve(officer_client, awaiting):
    assert awaiting.status == MpesaStatus.AWAITING_APPROVAL
    page = officer_client.get(DETAIL, query_string={"transaction_id": awaiting.id})
    assert "Second approval" in page.text and "You asked for this disbursement" in page.text
    response = officer_client.post(
        "/integrations/mpesa/transactions/approve",
        data={"transaction_id": awaiting.id},
        headers=HX,
    )
    assert response.status_code == 409
    assert "A second staff member must approve this disbursement" in response.text
    assert reload(awaiting.id).status == MpesaStatus.AWAITING_APPROVAL
    assert sending_jobs() == []


def test_another_officer_approves_and_it_is_sent(login, officer_client, awaiting):
    colleague = login("loan_officer")
    page = colleague.get(DETAIL, query_string={"transaction_id": awaiting.id}, headers=HX)
    assert "Approve and send" in page.text and officer_client.user.email in page.text
    response = colleague.post(
        "/integrations/mpesa/transactions/approve",
        data={"transaction_id": awaiting.id},
        headers=HX,
    )
    assert response.status_code == 200, response.text
    assert "approved; it is being sent" in response.text
    txn = reload(awaiting.id)
    assert txn.status == MpesaStatus.QUEUED and txn.approved_by_id == colleague.user.id
    assert sending_jobs() == [(awaiting.id,)]  # enqueued, not run here
    again = colleague.post(
        "/integrations/mpesa/transactions/approve", data={"transaction_id": awaiting.id}
    )
    assert again.status_code == 409 and "no longer waiting for approval" in again.text


def test_refuse_needs_a_reason_then_keeps_the_loan_approved(admin_client, awaiting, approved):
    url = "/integrations/mpesa/transactions/refuse"
    response = admin_client.post(url, data={"transaction_id": awaiting.id}, headers=HX)
    assert response.status_code == 422 and "Say why the disbursement is refused." in response.text
    assert 'id="mpesa-transaction"' in response.text
    response = admin_client.post(
        url, data={"transaction_id": awaiting.id, "reason": f"Wrong phone {XSS}"}, headers=HX
    )
    assert response.status_code == 200
    txn = reload(awaiting.id)
    assert txn.status == MpesaStatus.FAILED and txn.result_desc.startswith("Refused: Wrong phone")
    assert XSS not in response.text and ESCAPED in response.text
    loan_page = admin_client.get(f"/loans/{approved.id}")
    assert (
        "The last M-Pesa disbursement" in loan_page.text
        and "Refused: Wrong phone" in loan_page.text
    )


def test_approval_needs_manage_loans(accountant_client, viewer_client, awaiting):
    for browser in (accountant_client, viewer_client):
        page = browser.get(DETAIL, query_string={"transaction_id": awaiting.id})
        assert page.status_code == 200 and "Approve and send" not in page.text
        for action in ("approve", "refuse"):
            response = browser.post(
                f"/integrations/mpesa/transactions/{action}",
                data={"transaction_id": awaiting.id, "reason": "no"},
            )
            assert response.status_code == 403
    assert reload(awaiting.id).status == MpesaStatus.AWAITING_APPROVAL


# --- live status ------------------------------------------------------------------------------


def test_live_status_polls_until_settled(viewer_client, stk_request):
    txn = stk_request("1500")
    page = viewer_client.get(LIVE, query_string={"transaction_id": txn.id})
    assert page.status_code == 200 and is_page(page) and "Queued" in page.text

    queued = viewer_client.get(LIVE, query_string={"transaction_id": txn.id}, headers=HX)
    assert queued.status_code == 200 and 'hx-trigger="every 2s"' in queued.text

    mark_sent(txn, "ws_CO_0005", "29115-5")
    sent = viewer_client.get(LIVE, query_string={"transaction_id": txn.id}, headers=HX)
    assert sent.status_code == 200 and "waiting for them to enter their PIN" in sent.text

    deliver(CallbackKind.STK, stk_callback("ws_CO_0005", "29115-5", "1500", txn.phone_number,
                                           receipt="SGH55PAID1"))  # fmt: skip
    paid = viewer_client.get(LIVE, query_string={"transaction_id": txn.id}, headers=HX)
    assert paid.status_code == 286  # stops the polling
    assert "Paid: receipt <strong>SGH55PAID1</strong>" in paid.text
    assert "hx-trigger" not in paid.text.split('<div id="flash"')[0]


def test_live_status_of_a_failed_request_gives_the_reason(viewer_client, stk_request):
    txn = stk_request("1500")
    mark_sent(txn, "ws_CO_0006", "29115-6")
    deliver(CallbackKind.STK, stk_callback("ws_CO_0006", "29115-6", "1500", txn.phone_number,
                                           code=1032, desc="Request cancelled by user"))  # fmt: skip
    response = viewer_client.get(LIVE, query_string={"transaction_id": txn.id}, headers=HX)
    assert response.status_code == 286
    assert "Failed: Request cancelled by user" in response.text and "1032" in response.text


def test_live_status_awaiting_approval_names_the_requester(viewer_client, awaiting, officer_client):
    response = viewer_client.get(LIVE, query_string={"transaction_id": awaiting.id}, headers=HX)
    assert response.status_code == 200 and 'hx-trigger="every 10s"' in response.text
    assert "Waiting for a second approval" in response.text
    assert officer_client.user.email in response.text
