"""The notification log: the list with its filters and pages, one notification with every field,
its message (an email's HTML only in a sandboxed frame) and the timeline of its attempts and
receipts, and the Resend button; each as a full page and as its htmx partial, with role checks."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from app import clock
from app.extensions import db
from app.jobs import get_queue
from app.models import (
    AuditLog,
    Notification,
    NotificationAttempt,
    NotificationReceipt,
    Role,
)
from app.models.base import utcnow
from app.services.notifications import gateway
from tests import factories

LIST = "/integrations/notifications/log"
DETAIL = "/integrations/notifications/log/notification"
RESEND = "/integrations/notifications/log/resend"
HX = {"HX-Request": "true"}
XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def is_page(response) -> bool:
    return "<html" in response.text


def add(member=None, channel="sms", status="delivered", **values) -> Notification:
    contact = (member.phone if channel == "sms" else member.email) if member else "254711000222"
    row = Notification(**{
        "notification_type": "general", "channel": channel, "status": status,
        "message": "Your contribution of KES 500.00 was received.",
        "recipient_contact": contact, "recipient_id": member.id if member else None,
        "subject": "Contribution received" if channel == "email" else None,
    } | values)  # fmt: skip
    db.session.add(row)
    db.session.commit()
    return row


def ids(client, **params) -> set[int]:
    response = client.get(LIST, query_string=params, headers=HX)
    assert response.status_code == 200, response.text
    return {int(n) for n in re.findall(r'id="notification-(\d+)"', response.text)}


# --- list -------------------------------------------------------------------------------------


def test_list_full_page_and_partial(viewer_client, member):
    row = add(member, provider="africastalking", skip_reason=None)
    page = viewer_client.get(LIST)
    assert page.status_code == 200 and is_page(page)
    assert 'id="notify-filters"' in page.text and 'id="notify-log"' in page.text
    assert f'href="{DETAIL}?notification_id={row.id}"' in page.text
    for text in (member.phone, member.member_number, "Africa&#39;s Talking", "badge-delivered",
                 "Your contribution of KES 500.00"):  # fmt: skip
        assert text in page.text
    assert "HX-Request" in page.headers["Vary"]
    assert 'aria-current="page">Log</a>' in page.text

    partial = viewer_client.get(LIST, headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<div id="notify-log"')


def test_empty_list(viewer_client):
    response = viewer_client.get(LIST, headers=HX)
    assert response.status_code == 200 and "No notifications yet." in response.text


def test_filters_narrow_the_list(viewer_client, member):
    other = factories.member(phone="0722000111", email="other@example.co.ke")
    sms = add(member, provider="africastalking", notification_type="loan_approved")
    email = add(member, "email", "failed", provider="sendgrid", message="Statement for March")
    skipped = add(other, "sms", "skipped", message="Hello from Daystar: 100% done_ok")
    old = add(other, "email", "delivered", provider="mailgun",
              created_at=utcnow() - timedelta(days=10))  # fmt: skip
    alert = add(None, "sms", "pending", notification_type="admin_alert")

    assert ids(viewer_client) == {sms.id, email.id, skipped.id, old.id, alert.id}
    assert ids(viewer_client, channel="email") == {email.id, old.id}
    assert ids(viewer_client, status="skipped") == {skipped.id}
    assert ids(viewer_client, provider="sendgrid") == {email.id}
    assert ids(viewer_client, notification_type="loan_approved") == {sms.id}
    assert ids(viewer_client, notification_type="Admin_Alert") == {alert.id}
    assert ids(viewer_client, recipient="0722 000 111") == {skipped.id}
    assert ids(viewer_client, recipient="+254711000222") == {alert.id}
    assert (
        ids(viewer_client, recipient="Other@example.co.ke") == set()
    )  # a local part keeps its case
    assert ids(viewer_client, recipient="other@EXAMPLE.co.ke") == {old.id}
    assert ids(viewer_client, recipient=member.member_number.lower()) == {sms.id, email.id}
    assert ids(viewer_client, q="statement") == {email.id}
    assert ids(viewer_client, q="100%") == {skipped.id}  # % and _ are matched as themselves
    assert ids(viewer_client, q="o_f") == set()  # "Hello from" would match an unescaped _
    today = clock.today()
    assert ids(viewer_client, date_from=(today - timedelta(days=1)).isoformat()) == {
        sms.id, email.id, skipped.id, alert.id}  # fmt: skip
    assert ids(viewer_client, date_to=(today - timedelta(days=5)).isoformat()) == {old.id}
    assert ids(viewer_client, channel="sms", status="delivered", provider="africastalking") == {
        sms.id
    }
    assert ids(viewer_client, status="sent") == set()
    response = viewer_client.get(LIST, query_string={"status": "sent"}, headers=HX)
    assert "No notifications match these filters." in response.text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"channel": "fax"}, "Choose SMS or email."),
        ({"status": "lost"}, "Choose one of the listed statuses."),
        ({"provider": "pigeon"}, "Choose one of the listed providers."),
        ({"notification_type": "<b>"}, "A type is lower-case letters"),
        ({"recipient": "12345"}, "Enter a phone number (0712 345 678), an email address"),
        ({"recipient": "someone@"}, "Recipient:"),
        ({"recipient": "DST999999"}, "No member has this number."),
        ({"date_from": "2026-13-01"}, "Enter a date as YYYY-MM-DD."),
        ({"date_from": "2026-03-02", "date_to": "2026-03-01"}, "The end date is before the start"),
        ({"q": "x" * 101}, "Search for at most 100 characters."),
    ],
)
def test_bad_filters_are_422_with_the_message(viewer_client, params, message):
    partial = viewer_client.get(LIST, query_string=params, headers=HX)
    assert partial.status_code == 422 and message in partial.text
    assert (
        "These filters cannot be used" in partial.text and 'id="notification-' not in partial.text
    )
    page = viewer_client.get(LIST, query_string=params)
    assert page.status_code == 422 and is_page(page) and message in page.text


def test_nul_characters_are_dropped_not_a_500(viewer_client):
    response = viewer_client.get(
        LIST, query_string={"q": "a\x00b", "recipient": "\x00"}, headers=HX
    )
    assert response.status_code == 200 and "No notifications match these filters." in response.text


def test_pages(viewer_client, member):
    first = add(member)
    for n in range(50):
        add(None, message=f"Message {n}")
    page1 = viewer_client.get(LIST, query_string={"channel": "sms"}, headers=HX)
    assert "Page 1 of 2" in page1.text and "51 in all" in page1.text
    assert f'id="notification-{first.id}"' not in page1.text
    assert 'hx-get="/integrations/notifications/log?page=2&amp;channel=sms"' in page1.text
    page2 = viewer_client.get(LIST, query_string={"page": 2, "channel": "sms"}, headers=HX)
    assert f'id="notification-{first.id}"' in page2.text and "Page 2 of 2" in page2.text
    assert len(re.findall(r'id="notification-\d+"', page2.text)) == 1
    for odd in ("0", "-3", "abc", "99999999999999"):
        assert viewer_client.get(LIST, query_string={"page": odd}, headers=HX).status_code == 200


def test_the_number_of_queries_does_not_grow_with_the_page(viewer_client):
    statements = []

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

    add(factories.member())
    few = queries()
    for _ in range(30):
        add(factories.member())
    assert queries() == few


# --- detail -----------------------------------------------------------------------------------


@pytest.fixture
def delivered_email(member):
    """An email whose first provider failed, the second took it, and two receipts came."""
    now = utcnow()
    row = add(member, "email", "delivered", provider="mailgun", provider_message_id="mg-77",
              html_message=f"<h1>Statement</h1><p>Balance</p>{XSS}", created_at=now - timedelta(minutes=10),
              sent_at=now - timedelta(minutes=9), delivered_at=now - timedelta(minutes=5),
              provider_response='{"id": "mg-77"}')  # fmt: skip
    db.session.add_all([
        NotificationAttempt(notification_id=row.id, provider="sendgrid", outcome="transient",
                            detail="SendGrid answered 503", response="Service Unavailable",
                            http_status=503, duration_ms=1234, created_at=now - timedelta(minutes=9, seconds=30)),
        NotificationAttempt(notification_id=row.id, provider="mailgun", outcome="accepted",
                            http_status=200, provider_message_id="mg-77", duration_ms=87,
                            created_at=now - timedelta(minutes=9)),
        NotificationReceipt(provider="mailgun", event_id="ev-2", provider_message_id="mg-77",
                            status="delivered", detail="250 OK", notification_id=row.id,
                            occurred_at=now - timedelta(minutes=5), applied_at=now - timedelta(minutes=5),
                            payload={"event": "delivered", "note": XSS}),
        NotificationReceipt(provider="mailgun", event_id="ev-1", provider_message_id="mg-77",
                            status="sent", detail="Accepted by the mail server", notification_id=row.id,
                            occurred_at=now - timedelta(minutes=8), applied_at=now - timedelta(minutes=8),
                            payload={"event": "accepted"}),
        NotificationReceipt(provider="mailgun", event_id="ev-3", provider_message_id="mg-77",
                            status="complained", detail="Marked as spam", received_at=now,
                            occurred_at=None, payload={}),  # not applied yet
    ])  # fmt: skip
    db.session.commit()
    return row


def test_detail_full_page_and_partial(viewer_client, member, delivered_email):
    row = delivered_email
    page = viewer_client.get(DETAIL, query_string={"notification_id": row.id})
    assert page.status_code == 200 and is_page(page)
    for text in (f"Email #{row.id}", "badge-delivered", member.email, member.member_number,
                 "Contribution received", "mg-77", "Mailgun", "Timeline", "SendGrid answered 503",
                 "HTTP 503", "1,234 ms", "87 ms", "Service Unavailable", "250 OK", "Marked as spam",
                 "not applied yet", "ev-1", "&#34;mg-77&#34;"):  # fmt: skip
        assert text in page.text, text
    # Every attempt and receipt, in time order.
    timeline = page.text.split('<ol class="timeline">')[1].split("</ol>")[0]
    kinds = re.findall(r'<li class="timeline-(\w+)">', timeline)
    assert kinds == ["created", "attempt", "attempt", "sent", "receipt", "receipt", "delivered",
                     "receipt"]  # fmt: skip
    order = [timeline.index(t) for t in ("SendGrid answered 503", "Attempt with Mailgun",
                                         "Accepted by the mail server", "250 OK", "Marked as spam")]  # fmt: skip
    assert order == sorted(order)
    # The email's HTML only inside a sandboxed frame, escaped; never in the page itself.
    assert XSS not in page.text and "<h1>Statement</h1>" not in page.text
    frame = re.search(r"<iframe [^>]*>", page.text, re.S).group(0)
    assert (
        'sandbox=""' in frame
        and 'srcdoc="&lt;meta http-equiv=&#34;Content-Security-Policy' in frame
    )
    assert "&lt;h1&gt;Statement&lt;/h1&gt;" in frame and ESCAPED in frame
    assert "Your contribution of KES 500.00 was received." in page.text  # the text version
    # A viewer sees no Resend button.
    assert "Resend" not in page.text

    partial = viewer_client.get(DETAIL, query_string={"notification_id": row.id}, headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<section id="notify-notification"')


def test_an_sms_message_and_its_reason_are_escaped(viewer_client):
    row = add(None, "sms", "failed", message=f"Hi {XSS}", skip_reason=f"Bad {XSS}")
    page = viewer_client.get(DETAIL, query_string={"notification_id": row.id})
    assert XSS not in page.text and f"Hi {ESCAPED}" in page.text and f"Bad {ESCAPED}" in page.text
    assert "No provider has been tried" in page.text and "No delivery receipt has come" in page.text
    listing = viewer_client.get(LIST, headers=HX)
    assert XSS not in listing.text and ESCAPED in listing.text


@pytest.mark.parametrize("raw", ["", "abc", "999999", "99999999999999999999"])
def test_detail_of_no_notification_is_404(viewer_client, raw):
    response = viewer_client.get(DETAIL, query_string={"notification_id": raw})
    assert response.status_code == 404


# --- resend -----------------------------------------------------------------------------------


def urgent_failed(member) -> Notification:
    """A failed high-priority SMS (high: quiet hours do not hold its copy)."""
    return add(member, "sms", "failed", priority="high", provider="africastalking",
               skip_reason="Every provider failed 4 times")  # fmt: skip


@pytest.mark.parametrize(("role", "shown"), [(Role.ADMIN, True), (Role.LOAN_OFFICER, True),
                                             (Role.ACCOUNTANT, False), (Role.VIEWER, False)])  # fmt: skip
def test_the_resend_button_by_role(login, member, role, shown):
    row = urgent_failed(member)
    page = login(role).get(DETAIL, query_string={"notification_id": row.id})
    assert (f'hx-post="{RESEND}"' in page.text) is shown


def test_no_resend_button_while_on_its_way(officer_client, member):
    row = add(member, "sms", "sent")
    page = officer_client.get(DETAIL, query_string={"notification_id": row.id})
    assert page.status_code == 200 and f'hx-post="{RESEND}"' not in page.text


def test_resend_stores_a_new_notification_and_enqueues_it(officer_client, member):
    row = urgent_failed(member)
    response = officer_client.post(RESEND, data={"notification_id": row.id}, headers=HX)
    copy = db.session.scalar(select(Notification).where(Notification.id != row.id))
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == f"{DETAIL}?notification_id={copy.id}"
    assert (copy.status, copy.message, copy.recipient_contact, copy.channel) == (
        "pending", row.message, member.phone, "sms")  # fmt: skip
    assert [job.args for job in get_queue("high").jobs if job.func_name == gateway.SEND_JOB] == [
        (copy.id,)
    ]
    actions = db.session.execute(select(AuditLog.action, AuditLog.target_id, AuditLog.actor_label)
                                 .where(AuditLog.action.like("notification.%"))).all()  # fmt: skip
    assert sorted(actions) == [
        ("notification.created_by_resend", copy.id, officer_client.user.email),
        ("notification.resent", row.id, officer_client.user.email),
    ]
    # Both pages link to each other; the flash says what happened.
    new_page = officer_client.get(DETAIL, query_string={"notification_id": copy.id})
    assert f"Notification #{row.id} resent as #{copy.id}. It is being sent now." in new_page.text
    assert f'A resend of <a href="{DETAIL}?notification_id={row.id}">#{row.id}</a>' in new_page.text
    assert "badge-pending" in new_page.text and f'hx-post="{RESEND}"' not in new_page.text
    old_page = officer_client.get(DETAIL, query_string={"notification_id": row.id})
    assert f'Resent as <a href="{DETAIL}?notification_id={copy.id}">#{copy.id}</a>' in old_page.text
    assert "notification.resent" in old_page.text  # in the timeline too


def test_resend_without_htmx_redirects(admin_client, member):
    row = urgent_failed(member)
    response = admin_client.post(RESEND, data={"notification_id": row.id})
    assert response.status_code == 303
    assert response.headers["Location"].startswith(f"{DETAIL}?notification_id=")


def test_resend_of_one_on_its_way_is_refused_with_the_reason(officer_client, member):
    row = add(member, "sms", "sending")
    response = officer_client.post(RESEND, data={"notification_id": row.id}, headers=HX)
    assert response.status_code == 409 and response.headers["HX-Retarget"] == "#flash"
    assert "only a failed, skipped or delivered notification can be resent" in response.text
    assert db.session.scalar(select(Notification.id).where(Notification.id != row.id)) is None


@pytest.mark.parametrize("raw", ["", "abc", "999999"])
def test_resend_of_no_notification_is_404(officer_client, raw):
    response = officer_client.post(RESEND, data={"notification_id": raw}, headers=HX)
    assert response.status_code == 404


@pytest.mark.parametrize("role", [Role.VIEWER, Role.ACCOUNTANT])
def test_resend_needs_manage_members(login, member, role):
    row = urgent_failed(member)
    response = login(role).post(RESEND, data={"notification_id": row.id}, headers=HX)
    assert response.status_code == 403
    assert db.session.scalar(select(Notification.id).where(Notification.id != row.id)) is None


@pytest.mark.parametrize(("method", "url"), [("GET", LIST), ("GET", DETAIL), ("POST", RESEND)])
def test_signed_out_is_sent_to_sign_in(client, method, url):
    response = client.open(url, method=method, data={"notification_id": "1"})
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    hx = client.open(url, method=method, data={"notification_id": "1"}, headers=HX)
    assert "/auth/login" in hx.headers.get("HX-Redirect", "")
