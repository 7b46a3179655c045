"""Integrations > Notifications > Suppression list: the list (full page and htmx partial, filters,
pages, where each entry came from), adding a contact by hand and taking one off after a
confirmation (audited; messages go again), 422 for bad input, and who may do what."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditLog, Suppression
from app.models.base import utcnow
from app.services.notifications import config, gateway, rules

BASE = "/integrations/notifications/suppressions"
HX = {"HX-Request": "true"}
XSS = "<script>alert(1)</script>"


def is_page(response) -> bool:
    return "<html" in response.text


def suppressed(contact="254712345678", channel="sms", reason="hard_bounce", **fields):
    entry = Suppression(channel=channel, contact=contact, reason=reason, **fields)
    db.session.add(entry)
    db.session.commit()
    return entry


def entries() -> list[Suppression]:
    db.session.expire_all()
    return list(db.session.scalars(select(Suppression).order_by(Suppression.id)))


def audited(action: str) -> list[AuditLog]:
    return list(db.session.scalars(select(AuditLog).where(AuditLog.action == action)))


def test_list_full_page_and_partial_with_filters(viewer_client):
    bounce = suppressed("member@example.co.ke", "email", "hard_bounce", provider="sendgrid",
                        detail=XSS)  # fmt: skip
    suppressed("254712345678", "sms", "invalid", provider="twilio", detail="21211 invalid number")
    page = viewer_client.get(BASE)
    assert page.status_code == 200 and is_page(page)
    assert 'aria-current="page">Suppression list</a>' in page.text
    assert 'id="suppression-filters"' in page.text and '<div id="suppressions">' in page.text
    row = re.search(rf'<tr id="suppression-{bounce.id}">.*?</tr>', page.text, re.S).group(0)
    assert "member@example.co.ke" in row and "hard bounce" in row and "sendgrid" in row
    assert XSS not in page.text and "&lt;script&gt;" in row
    assert "refused the contact when sending" in page.text  # the twilio one: no receipt

    partial = viewer_client.get(BASE, query_string={"channel": "sms"}, headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<div id="suppressions">')
    assert "HX-Request" in partial.headers["Vary"]
    assert "254712345678" in partial.text and "member@example.co.ke" not in partial.text
    by_reason = viewer_client.get(BASE, query_string={"reason": "hard_bounce"}, headers=HX)
    assert "member@example.co.ke" in by_reason.text and "254712345678" not in by_reason.text
    search = viewer_client.get(BASE, query_string={"q": "0712 345"}, headers=HX)
    assert "254712345678" in search.text and "member@example.co.ke" not in search.text
    none = viewer_client.get(BASE, query_string={"q": "nobody"}, headers=HX)
    assert "No contact on the list matches these filters." in none.text
    odd = viewer_client.get(BASE, query_string={"channel": "fax", "page": "-3", "q": "\x00"})
    assert odd.status_code == 200 and "254712345678" in odd.text


def test_pages_of_25_keep_the_filters(viewer_client):
    now = utcnow()
    for n in range(30):
        db.session.add(Suppression(channel="sms", contact=f"2547100000{n:02d}", reason="manual",
                                   created_at=now - timedelta(minutes=n)))  # fmt: skip
    db.session.commit()
    first = viewer_client.get(BASE, query_string={"reason": "manual"}, headers=HX)
    assert first.text.count('<tr id="suppression-') == 25
    assert "Page 1 of 2 · 30 in all" in first.text
    assert f'href="{BASE}?reason=manual&amp;page=2"' in first.text
    second = viewer_client.get(BASE, query_string={"reason": "manual", "page": 2}, headers=HX)
    assert second.text.count('<tr id="suppression-') == 5 and "254710000029" in second.text


def test_an_empty_list_says_so(viewer_client):
    response = viewer_client.get(BASE)
    assert "The list is empty: messages may go to every contact." in response.text


def test_add_form_full_page_and_partial(admin_client):
    partial = admin_client.get(BASE + "/add", headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<form id="suppression-form"')
    page = admin_client.get(BASE + "/add")
    assert (
        is_page(page) and 'id="suppression-form"' in page.text and 'id="suppressions"' in page.text
    )


def test_adding_a_contact_by_hand_is_audited_and_shows_who(admin_client):
    data = {"channel": "sms", "contact": "0712 345 678", "note": "Asked by phone on 3 May"}
    response = admin_client.post(BASE + "/add", data=data, headers=HX)
    assert response.status_code == 200 and not is_page(response)
    assert response.headers["HX-Retarget"] == "#suppressions"
    assert response.headers["HX-Reswap"] == "outerHTML"
    assert '<div id="suppression-panel" hx-swap-oob="true"></div>' in response.text  # closed
    assert "No more sms messages go to 254712345678." in response.text  # the flash
    assert f"Added by {admin_client.user.email}" in response.text
    [entry] = entries()
    assert (entry.contact, entry.reason, entry.detail, entry.created_by_id) == (
        "254712345678", "manual", "Asked by phone on 3 May", admin_client.user.id,
    )  # fmt: skip
    [added] = audited("notification_suppression.added")
    assert (added.actor_id, added.target_id) == (admin_client.user.id, entry.id)


def test_adding_without_htmx_redirects_to_the_list(admin_client):
    data = {"channel": "email", "contact": "member@example.co.ke", "note": "Asked at the branch"}
    response = admin_client.post(BASE + "/add", data=data)
    assert response.status_code == 303 and response.headers["Location"] == BASE
    assert [e.contact for e in entries()] == ["member@example.co.ke"]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"channel": "sms", "contact": "12345", "note": "x"}, "contact", "Kenyan mobile number"),
        ({"channel": "sms", "contact": "0712345678", "note": ""}, "note", "Say why"),
        ({"channel": "email", "contact": "nobody", "note": "x"}, "contact", "@"),
        (
            {"channel": "sms", "contact": "0712345678", "note": "x"},
            "contact",
            "on the list already",
        ),
    ],
)
@pytest.mark.parametrize("headers", [HX, {}], ids=["htmx", "page"])
def test_bad_input_is_422_with_the_reason_by_the_field(admin_client, data, field, message, headers):
    suppressed("254712345678")  # so that the last case is a second entry for the same contact
    response = admin_client.post(BASE + "/add", data=data, headers=headers)
    assert response.status_code == 422 and is_page(response) == (headers == {})
    error = re.search(
        rf'<small id="{field}-error" class="field-error">([^<]*)</small>', response.text
    )
    assert error and message in error.group(1)
    assert len(entries()) == 1 and audited("notification_suppression.added") == []


def test_an_unknown_channel_is_a_form_error(admin_client):
    data = {"channel": "fax", "contact": "0712345678", "note": "x"}
    response = admin_client.post(BASE + "/add", data=data, headers=HX)
    assert response.status_code == 422 and "Choose SMS or email." in response.text


def test_removing_asks_first_then_lifts_audited_and_messages_go_again(admin_client, member):
    row = gateway.create(
        member.id, "Your statement is ready.", "sms", options={"priority": "high"}
    )[0]
    entry_id = suppressed(member.phone, reason="invalid", provider="africastalking").id
    assert rules.decide(row, config.current()).action == "skip"

    ask = admin_client.get(BASE + "/remove", query_string={"suppression_id": entry_id}, headers=HX)
    assert ask.status_code == 200 and not is_page(ask)
    assert ask.text.lstrip().startswith('<form id="suppression-form"')
    assert "SMS messages will go to this contact again" in ask.text
    assert f'name="suppression_id" type="hidden" value="{entry_id}"' in ask.text
    full = admin_client.get(BASE + "/remove", query_string={"suppression_id": entry_id})
    assert is_page(full) and "Take it off the list" in full.text
    assert len(entries()) == 1  # asking changed nothing

    done = admin_client.post(
        BASE + "/remove", data={"suppression_id": entry_id, "note": "Number fixed"}, headers=HX
    )
    assert done.status_code == 200 and done.headers["HX-Retarget"] == "#suppressions"
    assert f"{member.phone} is off the list: sms messages go to it again." in done.text
    assert entries() == []
    [removed] = audited("notification_suppression.removed")
    assert (removed.actor_id, removed.target_id, removed.details["note"]) == (
        admin_client.user.id, entry_id, "Number fixed",
    )  # fmt: skip
    assert rules.decide(row, config.current()) == rules.SEND  # the gateway sends again

    again = admin_client.post(BASE + "/remove", data={"suppression_id": entry_id}, headers=HX)
    assert again.status_code == 404 and "not on the suppression list" in again.text


def test_removing_without_htmx_redirects(admin_client):
    entry = suppressed()
    response = admin_client.post(BASE + "/remove", data={"suppression_id": entry.id})
    assert response.status_code == 303 and entries() == []


@pytest.mark.parametrize("value", ["", "abc", "0", "99999999999", "7"])
def test_removing_an_unknown_entry_is_404(admin_client, value):
    response = admin_client.post(BASE + "/remove", data={"suppression_id": value}, headers=HX)
    assert response.status_code == 404


def test_a_removal_note_over_500_characters_is_422(admin_client):
    entry = suppressed()
    response = admin_client.post(
        BASE + "/remove", data={"suppression_id": entry.id, "note": "x" * 501}, headers=HX
    )
    assert response.status_code == 422 and "Use at most 500 characters." in response.text
    assert len(entries()) == 1


def test_only_administrators_change_the_list(viewer_client, officer_client, login):
    entry = suppressed()
    page = viewer_client.get(BASE)
    assert (
        page.status_code == 200 and "Add a contact" not in page.text and "Remove…" not in page.text
    )
    assert "Remove…" in login("admin").get(BASE).text
    for client in (viewer_client, officer_client, login("accountant")):
        assert client.get(BASE + "/add", headers=HX).status_code == 403
        add = {"channel": "sms", "contact": "0798765432", "note": "x"}
        assert client.post(BASE + "/add", data=add, headers=HX).status_code == 403
        remove = {"suppression_id": entry.id}
        assert client.get(BASE + "/remove", query_string=remove).status_code == 403
        assert client.post(BASE + "/remove", data=remove, headers=HX).status_code == 403
    assert [e.id for e in entries()] == [entry.id]


def test_signed_out_is_sent_to_sign_in(client):
    response = client.get(BASE)
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
