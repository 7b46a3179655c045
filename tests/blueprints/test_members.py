"""Members pages: list with active search, detail, new/edit forms with inline validation."""

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import event, select

from app.models import Member, Role
from app.services import contributions, members, repayments
from tests import factories

HX = {"HX-Request": "true"}
XSS = "<script>alert(1)</script>"


def form_data(**overrides) -> dict:
    data = {
        "first_name": "Achieng",
        "last_name": "Otieno",
        "phone": "0712 345 678",
        "email": "achieng@example.co.ke",
        "national_id": "31234567",
        "joined_on": "2025-03-01",
        "sms_opt_in": "y",
    }
    data.update(overrides)
    return data


def feedback(html: str, name: str) -> str:
    """The text of the `<name>-feedback` element."""
    start = html.index(f'id="{name}-feedback"')
    return html[start : html.index("</small>", start)]


@pytest.fixture
def people():
    return {
        "wanjiku": factories.member(
            first_name="Wanjiku", last_name="Kamau", phone="0712345678", national_id="12345678"
        ),
        "otieno": factories.member(
            first_name="Brian", last_name="Otieno", phone="0722000111", national_id="87654321"
        ),
        "njeri": factories.member(
            first_name="Njeri",
            last_name="Mwangi",
            phone="0110123456",
            national_id="55550000",
            status="dormant",
        ),
    }


# --- list -------------------------------------------------------------------------------


def test_index_full_page_and_partial(viewer_client, people):
    page = viewer_client.get("/members/")
    assert page.status_code == 200
    assert "<html" in page.text and 'id="members-results"' in page.text
    assert 'hx-trigger="input changed delay:300ms, search"' in page.text
    assert 'hx-target="#members-results"' in page.text and "hx-push-url" in page.text
    assert "HX-Request" in page.headers["Vary"]
    for m in people.values():
        assert m.member_number in page.text
        assert f'href="/members/{m.id}"' in page.text

    partial = viewer_client.get("/members/", headers=HX)
    assert partial.status_code == 200
    assert "<html" not in partial.text
    assert partial.text.lstrip().startswith('<div id="members-results"')
    assert people["njeri"].national_id in partial.text and "2547" in partial.text


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("wanj", {"wanjiku"}),  # first-name prefix
        ("OTI", {"otieno"}),  # last-name prefix, any case
        ("brian oti", {"otieno"}),  # full-name prefix
        ("0712", {"wanjiku"}),  # phone as typed, matched against 2547...
        ("254722", {"otieno"}),
        ("0110 123", {"njeri"}),
        ("8765", {"otieno"}),  # national ID prefix
        ("zzz", set()),
    ],
)
def test_search(viewer_client, people, q, expected):
    text = viewer_client.get("/members/", query_string={"q": q}, headers=HX).text
    assert {name for name, m in people.items() if m.member_number in text} == expected


def test_search_by_member_number(viewer_client, people):
    number = people["otieno"].member_number
    text = viewer_client.get("/members/", query_string={"q": number.lower()}, headers=HX).text
    assert number in text
    assert people["wanjiku"].member_number not in text


def test_status_filter(viewer_client, people):
    text = viewer_client.get("/members/?status=dormant", headers=HX).text
    assert people["njeri"].member_number in text
    assert people["wanjiku"].member_number not in text
    page = viewer_client.get("/members/?status=dormant").text
    assert '<option value="dormant" selected>' in page


def test_empty_results_say_so(viewer_client, people):
    assert (
        "No members match this search." in viewer_client.get("/members/?q=nobody", headers=HX).text
    )


def test_no_members_yet(viewer_client):
    assert "No members yet." in viewer_client.get("/members/").text


def test_pagination_keeps_the_search(viewer_client):
    for n in range(5):
        factories.member(first_name="Kiprono", last_name=f"Rotich{n}")
    factories.member(first_name="Someone", last_name="Else")
    text = viewer_client.get("/members/?q=kip&per_page=2", headers=HX).text
    assert "Page 1 of 3" in text and "5 in all" in text
    assert "/members/?q=kip&amp;per_page=2&amp;page=2" in text
    second = viewer_client.get("/members/?q=kip&per_page=2&page=2", headers=HX).text
    assert "Page 2 of 3" in second and "page=1" in second and "page=3" in second


@pytest.mark.parametrize(
    "query",
    [
        "page=abc",
        "page=-3",
        "page=99999999999999999999999",
        "per_page=0",
        "per_page=100000",
        "status=nonsense",
        "q=%00",
        "q=" + "x" * 5000,
        "q=%25_%5C",
        "q=%2B254",
    ],
)
def test_bad_list_input_is_never_a_500(viewer_client, people, query):
    assert viewer_client.get(f"/members/?{query}").status_code == 200
    assert viewer_client.get(f"/members/?{query}", headers=HX).status_code == 200


def test_list_runs_the_same_number_of_queries_for_any_page_size(app, db, viewer_client):
    for n in range(60):
        factories.member(first_name="Mary", last_name=f"Wambui{n}")
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        counts = {}
        for size in (10, 50):
            statements.clear()
            response = viewer_client.get(f"/members/?per_page={size}", headers=HX)
            assert response.text.count('href="/members/') >= size
            counts[size] = len(statements)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert counts[10] == counts[50], counts
    assert counts[10] <= 5, counts


def test_signed_out_is_sent_to_sign_in(client):
    response = client.get("/members/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


# --- detail -----------------------------------------------------------------------------


@pytest.fixture
def member_with_money(member, active_loan):
    repayments.record_repayment(
        active_loan.id,
        Decimal("2070.58"),
        "mpesa",
        "SGH12ABC34",
        factories.SYSTEM,
        paid_on=date(2026, 2, 5),
    )
    contributions.record_contribution(
        member.id,
        Decimal("1500"),
        "share_capital",
        "cash",
        None,
        factories.SYSTEM,
        paid_on=date(2026, 2, 1),
    )
    return member


def test_detail_full_page_and_partial(officer_client, member_with_money, active_loan):
    member = member_with_money
    page = officer_client.get(f"/members/{member.id}")
    assert page.status_code == 200 and "<html" in page.text
    assert member.member_number in page.text and member.national_id in page.text
    assert f'href="/loans/{active_loan.id}"' in page.text
    assert "12,000.00" in page.text  # loan amount
    assert f"{active_loan.balance:,.2f}" in page.text
    assert "2,070.58" in page.text and "SGH12ABC34" in page.text  # repayment
    assert "1,500.00" in page.text and "share capital" in page.text  # contribution

    partial = officer_client.get(f"/members/{member.id}", headers=HX)
    assert partial.status_code == 200 and "<html" not in partial.text
    assert partial.text.lstrip().startswith('<section id="member-detail"')
    assert "SGH12ABC34" in partial.text


def test_detail_actions_follow_the_role(login, member):
    officer = login(Role.LOAN_OFFICER).get(f"/members/{member.id}").text
    assert f'href="/members/{member.id}/edit"' in officer
    assert "Apply for a loan" in officer and "Record contribution" in officer
    viewer = login(Role.VIEWER).get(f"/members/{member.id}").text
    assert (
        "/edit" not in viewer
        and "Apply for a loan" not in viewer
        and "Record contribution" not in viewer
    )
    accountant = login(Role.ACCOUNTANT).get(f"/members/{member.id}").text
    assert "Apply for a loan" not in accountant


def test_detail_without_records_says_so(viewer_client, member):
    text = viewer_client.get(f"/members/{member.id}").text
    assert (
        "No loans yet." in text and "No repayments yet." in text and "No contributions yet." in text
    )


def test_unknown_member_is_404(viewer_client, officer_client):
    response = viewer_client.get("/members/999999")
    assert response.status_code == 404 and "<html" in response.text
    assert viewer_client.get("/members/999999", headers=HX).status_code == 404
    assert officer_client.get("/members/999999/edit").status_code == 404
    assert officer_client.post("/members/999999/edit", data=form_data()).status_code == 404


def test_member_name_is_escaped(viewer_client):
    member = factories.member(first_name=XSS, last_name=XSS)
    for url in ("/members/", f"/members/{member.id}"):
        for headers in ({}, HX):
            text = viewer_client.get(url, headers=headers).text
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
            assert XSS not in text


# --- new --------------------------------------------------------------------------------


def test_new_form_full_page_and_partial(officer_client):
    page = officer_client.get("/members/new")
    assert page.status_code == 200 and "<html" in page.text
    assert 'id="member-form"' in page.text and 'name="national_id"' in page.text
    assert 'hx-post="/members/validate/phone"' in page.text
    assert 'hx-post="/members/validate/national_id"' in page.text
    assert 'name="status"' not in page.text
    partial = officer_client.get("/members/new", headers=HX)
    assert partial.status_code == 200 and "<html" not in partial.text
    assert partial.text.lstrip().startswith('<form id="member-form"')


def test_create_member_redirects_to_detail_with_a_flash(officer_client, db):
    response = officer_client.post("/members/new", data=form_data())
    assert response.status_code == 303
    member = db.session.scalars(select(Member)).one()
    assert response.headers["Location"] == f"/members/{member.id}"
    assert member.phone == "254712345678" and member.sms_opt_in and not member.email_opt_in
    assert member.joined_on == date(2025, 3, 1)
    page = officer_client.get(response.headers["Location"]).text
    assert f"Member {member.member_number} (Achieng Otieno) registered." in page


def test_create_member_via_htmx_gets_hx_redirect(officer_client, db):
    response = officer_client.post("/members/new", data=form_data(), headers=HX)
    assert response.status_code == 200
    member = db.session.scalars(select(Member)).one()
    assert response.headers["HX-Redirect"] == f"/members/{member.id}"


def test_create_with_bad_phone_is_422_naming_the_phone(officer_client, db):
    response = officer_client.post(
        "/members/new", data=form_data(phone="12345", email="not-an-email"), headers=HX
    )
    assert response.status_code == 422 and "<html" not in response.text
    assert "Kenyan mobile number" in feedback(response.text, "phone")
    assert 'id="email-error"' in response.text
    assert 'value="Achieng"' in response.text  # what was typed is kept
    assert db.session.scalars(select(Member)).all() == []


def test_create_with_taken_national_id_is_422(officer_client, member, db):
    response = officer_client.post("/members/new", data=form_data(national_id=member.national_id))
    assert response.status_code == 422 and "<html" in response.text
    assert "already has this national ID" in feedback(response.text, "national_id")
    assert db.session.scalars(select(Member)).all() == [member]


def test_create_with_everything_missing_names_each_field(officer_client):
    response = officer_client.post("/members/new", data={"joined_on": "01/02/2025"}, headers=HX)
    assert response.status_code == 422
    for name in ("first_name", "last_name"):
        assert f'id="{name}-error"' in response.text
    assert "Enter a phone number." in feedback(response.text, "phone")
    assert "national ID" in feedback(response.text, "national_id")
    assert "YYYY-MM-DD" in response.text


def test_create_with_nul_characters_is_422_not_500(officer_client):
    response = officer_client.post(
        "/members/new", data=form_data(first_name="\x00", national_id="1234\x005678")
    )
    assert response.status_code in (303, 422)


# --- edit -------------------------------------------------------------------------------


def test_edit_form_full_page_and_partial(officer_client, member):
    page = officer_client.get(f"/members/{member.id}/edit")
    assert page.status_code == 200 and "<html" in page.text
    assert f'value="{member.national_id}"' in page.text and 'name="status"' in page.text
    assert f"/members/validate/national_id?member_id={member.id}" in page.text
    partial = officer_client.get(f"/members/{member.id}/edit", headers=HX)
    assert partial.status_code == 200 and "<html" not in partial.text
    assert f'value="{member.phone}"' in partial.text


def test_edit_member(officer_client, member, db):
    data = form_data(national_id=member.national_id, status="dormant", first_name="Wairimu")
    response = officer_client.post(f"/members/{member.id}/edit", data=data, headers=HX)
    assert response.headers["HX-Redirect"] == f"/members/{member.id}"
    db.session.expire_all()
    updated = members.get_member(member.id)
    assert (updated.first_name, updated.status) == ("Wairimu", "dormant")


def test_edit_errors_are_422(officer_client, member, people):
    taken = people["otieno"].national_id
    response = officer_client.post(
        f"/members/{member.id}/edit", data=form_data(national_id=taken, status="gone"), headers=HX
    )
    assert response.status_code == 422 and "<html" not in response.text
    assert "already has this national ID" in feedback(response.text, "national_id")
    assert 'id="status-error"' in response.text


# --- inline validation ------------------------------------------------------------------


def test_validate_phone(officer_client):
    ok = officer_client.post("/members/validate/phone", data={"phone": "0712 345 678"}, headers=HX)
    assert ok.status_code == 200 and "<html" not in ok.text
    assert ok.text.startswith('<small id="phone-feedback"') and "OK: 254712345678" in ok.text
    bad = officer_client.post("/members/validate/phone", data={"phone": "0812"}, headers=HX)
    assert "Kenyan mobile number" in bad.text and "field-error" in bad.text
    assert "Enter a phone number." in officer_client.post("/members/validate/phone", data={}).text


def test_validate_national_id(officer_client, member):
    taken = officer_client.post(
        "/members/validate/national_id", data={"national_id": member.national_id}
    )
    assert taken.text.startswith('<small id="national_id-feedback"')
    assert "Another member already has this national ID." in taken.text
    own = officer_client.post(
        f"/members/validate/national_id?member_id={member.id}",
        data={"national_id": member.national_id},
    )
    assert "OK" in own.text and "already" not in own.text
    fresh = officer_client.post("/members/validate/national_id", data={"national_id": "40000001"})
    assert "OK" in fresh.text
    short = officer_client.post("/members/validate/national_id", data={"national_id": "12a"})
    assert "6 to 10 digits" in short.text
    odd = officer_client.post(
        "/members/validate/national_id?member_id=abc", data={"national_id": "\x00"}
    )
    assert odd.status_code == 200


def test_validate_unknown_field_is_404(officer_client):
    assert officer_client.post("/members/validate/email", data={"email": "x"}).status_code == 404


# --- roles ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.ACCOUNTANT])
def test_read_only_roles_cannot_write(login, member, role, db):
    c = login(role)
    assert c.get("/members/new").status_code == 403
    assert c.post("/members/new", data=form_data()).status_code == 403
    assert c.get(f"/members/{member.id}/edit").status_code == 403
    assert c.post(f"/members/{member.id}/edit", data=form_data()).status_code == 403
    assert c.post("/members/validate/phone", data={"phone": "0712345678"}).status_code == 403
    assert (
        c.post("/members/validate/phone", data={"phone": "0712345678"}, headers=HX).status_code
        == 403
    )
    assert db.session.scalars(select(Member)).all() == [member]


def test_admin_can_write(admin_client):
    assert admin_client.get("/members/new").status_code == 200
    assert admin_client.post("/members/new", data=form_data()).status_code == 303
