"""Integrations > Notifications > Broadcasts: the list, the form with its live count (full page and
htmx partial each), 422 for a bad form, confirming (audited, one job), the progress page and its
poll (286 once finished), cancelling, and who may do what."""

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.jobs import get_queue
from app.models import AuditLog, Broadcast, MemberStatus, Notification, Role
from app.services.notifications import broadcasts
from tests import factories

BASE = "/integrations/notifications/broadcasts"
HX = {"HX-Request": "true"}
XSS = "<script>alert(1)</script>"
FORM = {
    "name": "Office hours",
    "channel": "both",
    "template": "",
    "subject": "New office hours",
    "message": "Dear {{ member.first_name }}, our office now opens at 8:00.",
    "priority": "normal",
    "status": "active",
    "loans": "",
    "joined_from": "",
    "joined_to": "",
    "member_numbers": "",
}


def is_page(response) -> bool:
    return "<html" in response.text


def starts_with(response, html: str) -> bool:
    return response.text.lstrip().startswith(html)


def stored() -> list[Broadcast]:
    db.session.expire_all()
    return list(db.session.scalars(select(Broadcast).order_by(Broadcast.id)))


def sent_broadcast(**overrides) -> Broadcast:
    return broadcasts.create({**FORM, **overrides}, factories.SYSTEM)


@pytest.fixture
def members():
    return [
        factories.member(first_name="Achieng"),
        factories.member(first_name="Baraka", email=None),
        factories.member(first_name="Chebet", sms_opt_in=False, email_opt_in=False),
        factories.member(first_name="Dalmas", status=MemberStatus.DORMANT),
    ]


# --- the list ------------------------------------------------------------------------------------


def test_the_list_full_page_and_partial(viewer_client, admin_client, members):
    broadcast = sent_broadcast(name=XSS)
    page = viewer_client.get(BASE)
    assert page.status_code == 200 and is_page(page)
    assert 'aria-current="page">Broadcasts</a>' in page.text
    row = re.search(rf'<tr id="broadcast-{broadcast.id}">.*?</tr>', page.text, re.S).group(0)
    assert "&lt;script&gt;" in row and XSS not in page.text
    assert "queued" in row and '<td class="num">3</td>' in row  # three active members matched
    assert "New broadcast" not in page.text  # a viewer may not send
    assert "New broadcast" in admin_client.get(BASE).text

    partial = viewer_client.get(BASE, headers=HX, query_string={"page": 1})
    assert partial.status_code == 200 and not is_page(partial)
    assert starts_with(partial, '<section id="broadcasts"')
    assert "HX-Request" in partial.headers["Vary"]


def test_the_list_is_empty_at_first(viewer_client):
    assert "No broadcast has been sent yet." in viewer_client.get(BASE).text


# --- the form and its live count -----------------------------------------------------------------


def test_the_form_full_page_and_partial_show_the_count(admin_client, members):
    page = admin_client.get(f"{BASE}/new")
    assert page.status_code == 200 and is_page(page)
    assert 'id="broadcast-form"' in page.text and 'id="broadcast-preview"' in page.text
    assert "This will reach 2 members</strong>\n    (2 by SMS, 1 by email)." in page.text
    assert (
        "1 more match the filters but cannot be reached either way: opted out, or no contact."
        in page.text
    )
    partial = admin_client.get(f"{BASE}/new", headers=HX)
    assert partial.status_code == 200 and starts_with(partial, '<form id="broadcast-form"')


def test_the_preview_counts_and_renders_as_the_filters_change(admin_client, members):
    response = admin_client.post(
        f"{BASE}/preview", data={**FORM, "channel": "sms", "status": "any"}, headers=HX
    )
    assert response.status_code == 200 and not is_page(response)
    assert starts_with(response, '<section id="broadcast-preview"')
    assert "This will reach 3 members</strong>\n    (3 by SMS, 0 by email)." in response.text
    assert "Dear Achieng, our office now opens at 8:00." in response.text  # the first member's
    assert "1 part (GSM-7)" in response.text
    full = admin_client.post(f"{BASE}/preview", data=FORM)  # no htmx: the whole form page
    assert full.status_code == 200 and is_page(full) and 'id="broadcast-form"' in full.text


def test_the_preview_says_what_the_message_still_lacks(admin_client, members):
    response = admin_client.post(
        f"{BASE}/preview",
        data={**FORM, "subject": "", "message": "Hi {{ member.first_name"},
        headers=HX,
    )
    assert response.status_code == 200
    assert "Give the email a subject." in response.text
    broken = admin_client.post(
        f"{BASE}/preview", data={**FORM, "message": "Hi {{ member.first_name"}, headers=HX
    )
    assert broken.status_code == 200 and "This will reach 2 members" in broken.text
    assert "Text: The SMS text has an error on line 1" in broken.text


def test_the_preview_refuses_filters_it_cannot_use(admin_client, members):
    response = admin_client.post(
        f"{BASE}/preview",
        data={**FORM, "joined_from": "yesterday", "member_numbers": f"DST999999 {XSS}"},
        headers=HX,
    )
    assert response.status_code == 422 and starts_with(response, '<section id="broadcast-preview"')
    assert "Joined from: Enter a date as YYYY-MM-DD." in response.text
    assert "No member has the number DST999999" in response.text
    assert XSS not in response.text


# --- confirming ----------------------------------------------------------------------------------


def test_a_bad_form_comes_back_with_422_and_the_reasons(admin_client, members):
    bad = {**FORM, "name": "", "subject": "", "joined_to": "31/12/2024"}
    partial = admin_client.post(f"{BASE}/new", data=bad, headers=HX)
    assert partial.status_code == 422 and starts_with(partial, '<form id="broadcast-form"')
    assert 'id="name-error"' in partial.text and "Give the broadcast a name" in partial.text
    assert 'id="subject-error"' in partial.text and 'id="joined_to-error"' in partial.text
    full = admin_client.post(f"{BASE}/new", data=bad)
    assert full.status_code == 422 and is_page(full)
    nobody = admin_client.post(f"{BASE}/new", data={**FORM, "loans": "overdue"}, headers=HX)
    assert nobody.status_code == 422
    assert "No member these filters pick can be reached" in nobody.text
    assert stored() == []


def test_confirming_stores_the_broadcast_and_starts_one_job(admin_client, members):
    response = admin_client.post(f"{BASE}/new", data=FORM, headers=HX)
    assert response.status_code == 200
    (broadcast,) = stored()
    assert response.headers["HX-Redirect"] == f"{BASE}/view?broadcast_id={broadcast.id}"
    assert (broadcast.status, broadcast.targeted, broadcast.created_by_id) == (
        "queued", 3, admin_client.user.id,
    )  # fmt: skip
    assert broadcast.filters["status"] == "active"
    jobs = [j for j in get_queue("default").get_jobs() if j.id == f"broadcast-{broadcast.id}"]
    assert [j.args for j in jobs] == [(broadcast.id,)]
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "broadcast.queued"))
    assert (entry.actor_id, entry.target_id) == (admin_client.user.id, broadcast.id)
    plain = admin_client.post(f"{BASE}/new", data=FORM)  # without htmx: a redirect
    assert (
        plain.status_code == 303 and "/broadcasts/view?broadcast_id=" in plain.headers["Location"]
    )


# --- progress ------------------------------------------------------------------------------------


def test_the_progress_page_full_and_partial_and_its_poll(viewer_client, members):
    broadcast = sent_broadcast()
    page = viewer_client.get(f"{BASE}/view", query_string={"broadcast_id": broadcast.id})
    assert page.status_code == 200 and is_page(page)
    assert "Dear {{ member.first_name }}" in page.text  # the text as written
    assert "Active members with or without a loan" in page.text
    assert "Waiting for a worker to start" in page.text and 'hx-trigger="every 1s"' in page.text
    assert "Cancel the broadcast" not in page.text  # a viewer may not
    partial = viewer_client.get(
        f"{BASE}/view", query_string={"broadcast_id": broadcast.id}, headers=HX
    )
    assert partial.status_code == 200 and starts_with(partial, '<section id="broadcast-progress"')

    broadcasts.run(broadcast.id)
    poll = f"{BASE}/progress?broadcast_id={broadcast.id}"
    sending = viewer_client.get(poll, headers=HX)
    assert sending.status_code == 200 and starts_with(sending, '<section id="broadcast-progress"')
    assert '<progress value="0" max="3"' in sending.text
    assert "Sending: 0 of 3 messages done (0%)." in sending.text
    ids = [r.id for r in db.session.scalars(select(Notification).where(Notification.broadcast_id == broadcast.id))]  # fmt: skip
    db.session.execute(
        Notification.__table__.update().where(Notification.id.in_(ids[:2])).values(status="sent")
    )
    db.session.commit()
    assert '<progress value="2" max="3"' in viewer_client.get(poll, headers=HX).text
    db.session.execute(
        Notification.__table__.update().where(Notification.id == ids[2]).values(status="failed")
    )
    db.session.commit()
    finished = viewer_client.get(poll, headers=HX)
    assert finished.status_code == 286  # htmx stops polling
    assert "Finished: all 3 messages done (100%)" in finished.text
    assert 'hx-trigger="every 1s"' not in finished.text
    assert '<td class="num" id="count-failed">1</td>' in finished.text
    full = viewer_client.get(poll)  # no htmx: the whole page, a plain 200
    assert full.status_code == 200 and is_page(full)


def test_the_poll_restarts_a_job_that_redis_lost(viewer_client, members):
    broadcast = sent_broadcast()
    get_queue("default").empty()
    viewer_client.get(f"{BASE}/progress", query_string={"broadcast_id": broadcast.id}, headers=HX)
    assert [j.id for j in get_queue("default").get_jobs()] == [f"broadcast-{broadcast.id}"]


@pytest.mark.parametrize("broadcast_id", ["", "abc", "99999", "99999999999"])
def test_an_unknown_broadcast_is_404(viewer_client, broadcast_id):
    response = viewer_client.get(f"{BASE}/view", query_string={"broadcast_id": broadcast_id})
    assert response.status_code == 404


# --- cancelling ----------------------------------------------------------------------------------


def test_cancelling_skips_what_is_pending(admin_client, members):
    broadcast = sent_broadcast()
    broadcasts.run(broadcast.id)
    view = admin_client.get(f"{BASE}/view", query_string={"broadcast_id": broadcast.id})
    assert "Cancel the broadcast" in view.text
    response = admin_client.post(f"{BASE}/cancel", data={"broadcast_id": broadcast.id}, headers=HX)
    assert response.status_code == 200 and starts_with(response, '<section id="broadcast-progress"')
    assert "Cancelled by" in response.text and 'hx-trigger="every 1s"' not in response.text
    assert "3 messages not yet sent were skipped" in response.text  # the flash, out of band
    assert stored()[0].status == "cancelled"
    again = admin_client.post(f"{BASE}/cancel", data={"broadcast_id": broadcast.id}, headers=HX)
    assert again.status_code == 409


def test_cancelling_without_htmx_redirects_to_the_page(admin_client, members):
    broadcast = sent_broadcast()
    response = admin_client.post(f"{BASE}/cancel", data={"broadcast_id": broadcast.id})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/broadcasts/view?broadcast_id={broadcast.id}")
    assert admin_client.post(f"{BASE}/cancel", data={}).status_code == 404


# --- who may do what -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.LOAN_OFFICER, Role.ACCOUNTANT, Role.VIEWER])
def test_only_administrators_send_and_cancel(login, role, members):
    broadcast = sent_broadcast()
    client = login(role)
    assert client.get(BASE).status_code == 200
    assert (
        client.get(f"{BASE}/view", query_string={"broadcast_id": broadcast.id}).status_code == 200
    )
    assert client.get(f"{BASE}/new").status_code == 403
    assert client.post(f"{BASE}/new", data=FORM).status_code == 403
    assert client.post(f"{BASE}/preview", data=FORM).status_code == 403
    assert client.post(f"{BASE}/cancel", data={"broadcast_id": broadcast.id}).status_code == 403
    assert len(stored()) == 1 and stored()[0].status == "queued"


def test_signed_out_is_sent_to_sign_in(client):
    assert "/auth/login" in client.get(BASE).headers["Location"]
    assert client.get(BASE, headers=HX).headers["HX-Redirect"].startswith("/auth/login")
