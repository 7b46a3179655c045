"""Sign-in, lockout, sign-out, CSRF and the answers an expired session gets."""

import pytest

from app.models import LoginFailure, Role
from tests.conftest import PASSWORD


def test_sign_in_page_and_success(client, staff_user):
    user = staff_user(Role.VIEWER)
    page = client.get("/auth/login")
    assert page.status_code == 200 and b"Sign in" in page.data
    response = client.post(
        "/auth/login?next=/members/", data={"email": user.email, "password": PASSWORD}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/members/"


def test_next_never_leaves_the_site(client, staff_user):
    user = staff_user(Role.VIEWER)
    response = client.post(
        "/auth/login?next=//evil.example/x", data={"email": user.email, "password": PASSWORD}
    )
    assert response.headers["Location"] == "/dashboard"


def test_wrong_password_is_refused_without_saying_which_part(client, staff_user):
    user = staff_user(Role.VIEWER)
    response = client.post("/auth/login", data={"email": user.email, "password": "nope"})
    assert response.status_code == 401
    assert b"email or password is wrong" in response.data


def test_lockout_after_five_failures_for_the_account(client, staff_user, db):
    user = staff_user(Role.ADMIN)
    for _ in range(5):
        client.post("/auth/login", data={"email": user.email, "password": "wrong"})
    response = client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.data and b"15 minutes" in response.data
    assert db.session.query(LoginFailure).count() == 5


def test_lockout_by_ip_across_accounts(client, staff_user):
    user = staff_user(Role.ADMIN)
    for n in range(5):
        client.post("/auth/login", data={"email": f"guess{n}@daystar.co.ke", "password": "x"})
    response = client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 429


def test_inactive_account_cannot_sign_in(client, staff_user, db):
    user = staff_user(Role.ADMIN)
    user.active = False
    db.session.commit()
    response = client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 401


def test_sign_out(admin_client):
    assert admin_client.post("/auth/logout").status_code == 302
    assert admin_client.get("/dashboard").status_code == 302


@pytest.mark.parametrize(
    "headers,status,header",
    [
        ({}, 302, "Location"),
        (
            {"HX-Request": "true", "HX-Current-URL": "http://localhost/members/?q=wa"},
            401,
            "HX-Redirect",
        ),
        ({"Accept": "application/json"}, 401, None),
    ],
)
def test_signed_out_answer_in_the_callers_language(client, headers, status, header):
    response = client.get("/members/", headers=headers)
    assert response.status_code == status
    if header == "HX-Redirect":
        assert response.headers["HX-Redirect"] == "/auth/login?next=/members/?q%3Dwa"
    elif header:
        assert response.headers[header].startswith("/auth/login")
    else:
        assert response.json == {"error": "authentication required"}


def test_session_cookie_flags(client, staff_user):
    user = staff_user(Role.VIEWER)
    response = client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_post_without_csrf_token_is_refused(app, staff_user):
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        user = staff_user(Role.ADMIN)
        client = app.test_client()
        page = client.get("/auth/login")
        assert b'name="csrf_token"' in page.data
        response = client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
        assert response.status_code == 400
        assert b"CSRF" in response.data
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


def test_htmx_post_with_csrf_header_is_accepted(app, staff_user):
    import re

    app.config["WTF_CSRF_ENABLED"] = True
    try:
        user = staff_user(Role.ADMIN)
        client = app.test_client()
        page = client.get("/auth/login").get_data(as_text=True)
        token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        response = client.post(
            "/auth/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 302
        dashboard = client.get("/dashboard").get_data(as_text=True)
        token = re.search(r'name="csrf-token" content="([^"]+)"', dashboard).group(1)
        assert f'"X-CSRFToken": "{token}"' in dashboard
        assert client.post("/auth/logout").status_code == 400  # no token
        assert client.post("/auth/logout", headers={"X-CSRFToken": token}).status_code == 302
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
