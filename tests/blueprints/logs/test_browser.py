"""The integration log browser: filters (Nairobi days, text, event, ids), pages by key in both
directions, one entry with everything and links to its records, and odd input answered 4xx."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest

from app.blueprints.logs import browser
from app.extensions import db
from app.models import MpesaStatus, MpesaTransaction, MpesaType, Notification, Role
from tests.blueprints.logs.conftest import HX, NOW, add_entry

URL = "/integrations/logs/"


def shown_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'id="log-entry-(\d+)"', html)]


def test_full_page_and_partial(viewer_client):
    row = add_entry(message="STK callback held: unknown checkout id.")
    page = viewer_client.get(URL)
    assert page.status_code == 200
    assert "<html" in page.text and 'id="log-filters"' in page.text
    assert shown_ids(page.text) == [row.id]
    assert "HX-Request" in page.headers["Vary"]
    partial = viewer_client.get(URL, headers=HX)
    assert partial.status_code == 200
    assert "<html" not in partial.text and 'id="log-filters"' not in partial.text
    assert partial.text.lstrip().startswith('<div id="log-entries"')
    assert shown_ids(partial.text) == [row.id]
    assert "HX-Request" in partial.headers["Vary"]


def test_the_logs_tabs_show_what_the_role_may_open(viewer_client, admin_client):
    viewer_tabs = viewer_client.get(URL).text
    assert 'href="/integrations/logs/errors"' in viewer_tabs
    assert "/integrations/logs/failed-jobs" not in viewer_tabs  # administrators only
    assert 'href="/integrations/logs/failed-jobs"' in admin_client.get(URL).text


def test_filters_by_integration_level_and_error_kind(viewer_client):
    mpesa_error = add_entry(level="error", error_kind="mpesa.callback_held")
    add_entry(level="info")
    notify_error = add_entry(integration="notifications", level="error", error_kind="ProviderFault",
                             event="notify.failed")  # fmt: skip
    add_entry(integration="notifications", level="warning", error_kind="ProviderFault")

    def ids(**query):
        response = viewer_client.get(URL, query_string=query, headers=HX)
        assert response.status_code == 200
        return shown_ids(response.text)

    assert ids(level="error") == [notify_error.id, mpesa_error.id]
    assert ids(integration="notifications", level="error") == [notify_error.id]
    assert ids(error_kind="mpesa.callback_held") == [mpesa_error.id]
    assert len(ids()) == 4


def test_dates_are_nairobi_days_both_ends_included(viewer_client):
    # 22:30 UTC on 1 March is 01:30 on 2 March in Nairobi.
    late = add_entry(created_at=NOW.replace(day=1, hour=22, minute=30), message="late")
    early = add_entry(created_at=NOW.replace(day=1, hour=20, minute=59), message="early")  # 23:59
    add_entry(created_at=NOW.replace(day=3, hour=21, minute=0), message="4 March in Nairobi")

    def ids(**query):
        return shown_ids(viewer_client.get(URL, query_string=query, headers=HX).text)

    assert ids(date_from="2026-03-02", date_to="2026-03-03") == [late.id]
    assert ids(date_to="2026-03-01") == [early.id]
    assert ids(date_from="2026-03-01", date_to="2026-03-01") == [early.id]


def test_text_is_searched_in_message_and_event_any_case_and_literally(viewer_client):
    in_message = add_entry(message="Payment received: KES 1,000.00 from DST000123.")
    in_event = add_entry(event="webhook.disabled", message="Endpoint off.")
    percent = add_entry(message="Delivery rate 100% today.")
    add_entry(message="Nothing to see.")

    def ids(q):
        return shown_ids(viewer_client.get(URL, query_string={"q": q}, headers=HX).text)

    assert ids("payment RECEIVED") == [in_message.id]
    assert ids("WEBHOOK.dis") == [in_event.id]
    assert ids("100%") == [percent.id]  # % is a character, not a wildcard
    assert ids("d_") == []  # and so is _ (a wildcard would match "d:" and "d ")


def test_event_is_matched_from_its_start(viewer_client):
    held = add_entry(event="mpesa.callback_held")
    paid = add_entry(event="mpesa.payment_received")
    add_entry(event="webhook.mpesa.like")

    def ids(event):
        return shown_ids(viewer_client.get(URL, query_string={"event": event}, headers=HX).text)

    assert ids("mpesa.") == [paid.id, held.id]
    assert ids("MPESA.callback_held") == [held.id]


def test_correlation_ids_find_every_entry_involved(viewer_client, member):
    txn = MpesaTransaction(
        transaction_type=MpesaType.STK_PUSH, status=MpesaStatus.COMPLETED, environment="sandbox",
        checkout_request_id="ws_CO_191220191020363925", mpesa_receipt_number="NLJ7RT61SV",
        amount=Decimal("100.00"), member_id=member.id,
    )  # fmt: skip
    db.session.add(txn)
    db.session.commit()
    by_request = add_entry(request_id="8f14e45fceea167a5a36dedd4bea2543")
    by_job = add_entry(job_id="job-5c2e", integration="jobs")
    by_txn = add_entry(mpesa_transaction_id=txn.id)
    by_notification = add_entry(notification_id=txn.id, integration="notifications")
    by_delivery = add_entry(webhook_delivery_id=77, integration="webhooks")
    by_member = add_entry(member_id=member.id)

    def ids(ref, kind=""):
        query = {"ref": ref, "ref_kind": kind}
        response = viewer_client.get(URL, query_string=query, headers=HX)
        assert response.status_code == 200
        return set(shown_ids(response.text))

    assert ids("8f14e45fceea167a5a36dedd4bea2543") == {by_request.id}
    assert ids("job-5c2e", "job") == {by_job.id}
    assert ids("nlj7rt61sv") == {by_txn.id}  # a receipt number, any case
    assert ids("ws_CO_191220191020363925", "mpesa") == {by_txn.id}
    assert ids(str(txn.id), "mpesa") == {by_txn.id}
    assert ids(str(txn.id), "notification") == {by_notification.id}
    # A bare number is any record's id.
    assert ids(str(txn.id)) >= {by_txn.id, by_notification.id}
    assert ids("77", "delivery") == {by_delivery.id}
    assert ids(str(member.id), "member") == {by_member.id}
    assert ids("no-such-id") == set()


def walk(client, start_query: dict, direction: str) -> tuple[list[int], list[str]]:
    """Follow the `direction` ("Older" / "Newer") links from a page; the ids seen and the pages'
    links."""
    seen, pages = [], []
    query = start_query
    while True:
        html = client.get(URL, query_string=query, headers=HX).text
        seen += shown_ids(html)
        link = re.search(
            rf'<a href="([^"]+)"[^>]*>{"Older →" if direction == "older" else "← Newer"}', html
        )
        pages.append(html)
        if not link:
            return seen, pages
        query = dict(re.findall(r"[?&](\w+)=([^&]*)", link.group(1).replace("&amp;", "&")))


def test_pages_by_key_through_ties_in_both_directions(viewer_client, monkeypatch):
    monkeypatch.setattr(browser, "PER_PAGE", 3)
    rows = [
        add_entry(created_at=NOW - timedelta(minutes=n // 2), message=f"entry {n}")
        for n in range(8)
    ]  # fmt: skip  pairs share a timestamp
    newest_first = [r.id for r in sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)]

    seen, pages = walk(viewer_client, {}, "older")
    assert seen == newest_first  # each once, in order, across the ties
    assert len(pages) == 3 and "8 entries" in pages[0]
    assert "Newer" not in pages[0] and "Newest" in pages[1]

    last_older = re.findall(r'href="([^"]+)"[^>]*>Older', pages[1])[0].replace("&amp;", "&")
    before = last_older.split("before=")[1]
    back, _ = walk(viewer_client, {"before": before}, "newer")
    # From the last page back up to the newest: every page, newest first within each.
    assert sorted(back, reverse=True) == sorted(set(back), reverse=True)
    assert set(back) == set(newest_first)


def test_pages_keep_the_filters(viewer_client, monkeypatch):
    monkeypatch.setattr(browser, "PER_PAGE", 2)
    for n in range(5):
        add_entry(level="error", created_at=NOW - timedelta(minutes=n))
        add_entry(level="info", created_at=NOW - timedelta(minutes=n))
    seen, pages = walk(viewer_client, {"level": "error"}, "older")
    assert len(seen) == 5 and len(pages) == 3
    assert all("level=error" in html for html in pages[:2])


def test_an_empty_log_and_no_match(viewer_client):
    assert "Nothing logged yet." in viewer_client.get(URL).text
    add_entry()
    assert "No entries match these filters." in viewer_client.get(URL + "?level=error").text


BAD_FILTERS = [
    {"integration": "bogus"},
    {"level": "fatal"},
    {"date_from": "2026-13-01"},
    {"date_from": "2026-03-05", "date_to": "2026-03-01"},
    {"q": "x" * 101},
    {"event": "DROP TABLE entries;"},
    {"error_kind": "k" * 121},
    {"ref": "has spaces in it"},
    {"ref": "a\x00b c"},
    {"ref_kind": "loan"},
    {"before": "yesterday"},
    {"after": "20260310T090000.000000_0"},
    {"before": "20260310T090000.000000_5", "after": "20260310T090000.000000_6"},
]


@pytest.mark.parametrize("query", BAD_FILTERS)
def test_bad_filters_are_shown_not_a_500(viewer_client, query):
    add_entry()
    for headers in ({}, HX):
        response = viewer_client.get(URL, query_string=query, headers=headers)
        assert response.status_code == 422, query
        assert "These filters cannot be used" in response.text
        assert shown_ids(response.text) == []


def test_null_characters_in_text_are_dropped_not_a_500(viewer_client):
    row = add_entry(message="held callback")
    response = viewer_client.get(URL, query_string={"q": "held\x00"}, headers=HX)
    assert response.status_code == 200 and shown_ids(response.text) == [row.id]


def test_an_entry_shows_everything_escaped(viewer_client):
    row = add_entry(
        level="error", event="mpesa.callback_held", error_kind="mpesa.callback_held",
        message="Held <b>callback</b>", request_id="req-1", job_id="job-1",
        context={"note": "<script>alert(1)</script>", "amount": "100.00", "nested": {"a": [1, 2]}},
    )  # fmt: skip
    url = f"{URL}entry?entry_id={row.id}"
    page = viewer_client.get(url)
    assert page.status_code == 200 and "<html" in page.text
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "Held &lt;b&gt;callback&lt;/b&gt;" in page.text
    assert "&#34;nested&#34;: {\n    &#34;a&#34;: [\n      1," in page.text  # indented JSON
    partial = viewer_client.get(url, headers=HX)
    assert partial.status_code == 200 and "<html" not in partial.text
    assert partial.text.lstrip().startswith('<section id="log-entry"')
    assert "HX-Request" in partial.headers["Vary"]


def test_an_entry_links_to_its_records_the_role_may_open(login, admin_client, member):
    txn = MpesaTransaction(
        transaction_type=MpesaType.STK_PUSH, status=MpesaStatus.COMPLETED, environment="sandbox",
        mpesa_receipt_number="NLJ7RT61SV", amount=Decimal("100.00"), member_id=member.id,
    )  # fmt: skip
    note = Notification(notification_type="general", channel="sms", status="sent", message="Hi",
                        recipient_contact=member.phone, recipient_id=member.id)  # fmt: skip
    db.session.add_all([txn, note])
    db.session.commit()
    row = add_entry(mpesa_transaction_id=txn.id, notification_id=note.id, webhook_delivery_id=42,
                    api_key_id=43, member_id=member.id)  # fmt: skip
    url = f"{URL}entry?entry_id={row.id}"

    html = admin_client.get(url).text
    assert f'href="/integrations/mpesa/transactions/detail?transaction_id={txn.id}"' in html
    assert f"#{txn.id} · NLJ7RT61SV" in html
    note_url = f"/integrations/notifications/log/notification?notification_id={note.id}"
    assert f'href="{note_url}"' in html
    assert 'href="/integrations/accounting-api/webhooks/attempts?delivery_id=42"' in html
    assert 'href="/integrations/accounting-api/usage?key_id=43"' in html
    assert f'href="/members/{member.id}"' in html and member.member_number in html
    for target in (f"/integrations/mpesa/transactions/detail?transaction_id={txn.id}",
                   f"/members/{member.id}", note_url):  # fmt: skip
        assert admin_client.get(target).status_code == 200, target

    officer_html = login(Role.LOAN_OFFICER).get(url).text  # no Accounting API pages for officers
    assert "/integrations/accounting-api/" not in officer_html
    assert "#42" in officer_html and "#43" in officer_html  # named, not linked
    assert f'href="/members/{member.id}"' in officer_html


def test_an_entry_lists_the_other_entries_of_its_request_and_job(viewer_client):
    row = add_entry(request_id="req-A", job_id="job-B", message="the entry")
    same_request = add_entry(request_id="req-A", message="same request",
                             created_at=NOW - timedelta(seconds=1))  # fmt: skip
    same_job = add_entry(job_id="job-B", message="same job", created_at=NOW + timedelta(seconds=1))
    other = add_entry(request_id="req-Z", job_id="job-Z", message="unrelated")
    html = viewer_client.get(f"{URL}entry?entry_id={row.id}").text
    assert f"entry_id={same_request.id}" in html and f"entry_id={same_job.id}" in html
    assert f"entry_id={other.id}" not in html
    assert "ref=req-A&amp;ref_kind=request" in html and "ref=job-B&amp;ref_kind=job" in html


@pytest.mark.parametrize("entry_id", ["", "abc", "0", "99999999999", "12345"])
def test_a_missing_entry_is_404(viewer_client, entry_id):
    for headers in ({}, HX):
        response = viewer_client.get(f"{URL}entry", query_string={"entry_id": entry_id},
                                     headers=headers)  # fmt: skip
        assert response.status_code == 404


def test_every_role_may_read_the_log_and_signed_out_may_not(login, client):
    row = add_entry()
    for role in Role:
        staff = login(role)
        assert staff.get(URL).status_code == 200, role
        assert staff.get(f"{URL}entry?entry_id={row.id}").status_code == 200, role
        assert staff.get(f"{URL}export.csv").status_code == 200, role
    assert client.get(URL).status_code == 302
    assert client.get(f"{URL}export.csv").status_code == 302


def test_reading_a_page_costs_a_fixed_number_of_queries(viewer_client, app):
    from sqlalchemy import event

    for n in range(60):
        add_entry(created_at=NOW - timedelta(seconds=n), member_id=None)
    statements = []

    def count(*args):
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        response = viewer_client.get(URL, headers=HX)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert response.status_code == 200 and len(shown_ids(response.text)) == 50
    log_reads = [s for s in statements if "integration_log" in s]
    assert len(log_reads) == 2  # the page and the capped count
