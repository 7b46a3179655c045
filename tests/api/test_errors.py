"""Errors of the accounting API: RFC 9457 problems naming each bad parameter; 404 and 405 as
problems; the portal keeps its HTML error pages; no input makes the API answer 500."""

import pytest

from app.blueprints.api import BASE_PATH, COMPAT_PATH
from app.models import Role

LISTS = ["/loans", "/repayments", "/contributions", "/members"]


@pytest.fixture
def headers(auth_headers):
    return auth_headers()


def problem_of(response, status):
    assert response.status_code == status, response.text
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body["status"] == status
    assert body["type"].startswith("https://daystar.co.ke/problems/")
    assert body["title"]
    return body


@pytest.mark.parametrize(
    ("path", "query", "named"),
    [
        ("/loans", "date_from=2026-13-01", "date_from"),
        ("/loans", "date_to=15/01/2026", "date_to"),
        ("/loans", "date_from=yesterday", "date_from"),
        ("/loans", "per_page=1000", "per_page"),
        ("/loans", "per_page=0", "per_page"),
        ("/loans", "page=0", "page"),
        ("/loans", "page=two", "page"),
        ("/loans", "status=open", "status"),
        ("/loans", "member_id=abc", "member_id"),
        ("/loans", "product_id=-3", "product_id"),
        ("/loans", "updated_since=last-week", "updated_since"),
        ("/loans", "format=xml", "format"),
        ("/repayments", "loan_id=1.5", "loan_id"),
        ("/repayments", "date_from=2026-02-30", "date_from"),
        ("/contributions", "kind=savings", "kind"),
        ("/members", "status=gone", "status"),
        ("/events", "limit=1001", "limit"),
        ("/events", "limit=0", "limit"),
        ("/events", "after_sequence=-1", "after_sequence"),
        ("/financial-summary", "period=fortnightly", "period"),
        ("/financial-summary", "date_from=2026-1-1", "date_from"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(client, headers, path, query, named):
    body = problem_of(client.get(f"{BASE_PATH}{path}?{query}", headers=headers), 400)
    assert list(body["errors"]) == [named]
    assert body["errors"][named]


def test_every_bad_parameter_is_named_at_once(client, headers):
    response = client.get(
        f"{BASE_PATH}/loans?date_from=2026-99-01&per_page=1000&status=open&member_id=x",
        headers=headers,
    )
    body = problem_of(response, 400)
    assert set(body["errors"]) == {"date_from", "per_page", "status", "member_id"}
    assert "YYYY-MM-DD" in body["errors"]["date_from"]
    assert "100" in body["errors"]["per_page"]
    assert "pending" in body["errors"]["status"]


def test_unknown_parameters_are_refused_here_and_ignored_on_the_old_path(client, headers):
    body = problem_of(client.get(f"{BASE_PATH}/loans?stauts=active", headers=headers), 400)
    assert body["errors"] == {"stauts": "Unknown parameter or field."}
    old = client.get(f"{COMPAT_PATH}/loans?stauts=active&_=123", headers=headers)
    assert old.status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "status=active%00",
        "date_from=2026-01-01%00",
        "member_id=1%00",
        "updated_since=2026-01-01T00:00:00Z%00",
        "st%00atus=active",
        "format=csv%00",
    ],
)
def test_nul_bytes_are_refused(client, headers, query):
    body = problem_of(client.get(f"{BASE_PATH}/loans?{query}", headers=headers), 400)
    assert body["errors"]


@pytest.mark.parametrize(
    ("path", "query", "named"),
    [
        ("/loans", "member_id=99999999999999999999999", "member_id"),
        ("/loans", "product_id=2147483648", "product_id"),
        ("/loans", "page=99999999999999999999", "page"),
        ("/loans", "per_page=1e400", "per_page"),
        ("/repayments", "loan_id=" + "9" * 5000, "loan_id"),
        ("/events", "after_sequence=9223372036854775808", "after_sequence"),
        ("/events", "limit=99999999999999999999", "limit"),
    ],
)
def test_huge_numbers_are_refused(client, headers, path, query, named):
    body = problem_of(client.get(f"{BASE_PATH}{path}?{query}", headers=headers), 400)
    assert named in body["errors"]


def test_largest_values_are_accepted(client, headers):
    ok = client.get(f"{BASE_PATH}/loans?member_id=2147483647&page=2147483647", headers=headers)
    assert ok.status_code == 200 and ok.json["loans"] == []
    feed = client.get(f"{BASE_PATH}/events?after_sequence=9223372036854775807", headers=headers)
    assert feed.status_code == 200 and feed.json["events"] == []


@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:00:00%2B05:00",
        "9999-12-31T23:59:59-05:00",
        "2026-01-01",
        "2026-01-01T10:00:00.123456%2B03:00",
    ],
)
def test_updated_since_at_the_calendars_edges_never_fails(client, headers, moment):
    response = client.get(f"{BASE_PATH}/loans?updated_since={moment}", headers=headers)
    assert response.status_code in (200, 400), response.text


@pytest.mark.parametrize("prefix", [BASE_PATH, COMPAT_PATH])
def test_unknown_path_and_id_are_404_problems(client, headers, prefix):
    problem_of(client.get(f"{prefix}/ledgers", headers=headers), 404)
    problem_of(client.get(f"{prefix}/loans/12345", headers=headers), 404)
    problem_of(client.get(f"{prefix}/loans/abc", headers=headers), 404)
    problem_of(client.get(f"{prefix}/loans/0", headers=headers), 404)
    problem_of(client.get(f"{prefix}/loans/99999999999999", headers=headers), 404)


@pytest.mark.parametrize("prefix", [BASE_PATH, COMPAT_PATH])
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/loans"), ("DELETE", "/loans/1"), ("PUT", "/members"), ("PATCH", "/events")],
)
def test_wrong_method_is_a_405_problem_with_allow(client, headers, prefix, method, path):
    response = client.open(f"{prefix}{path}", method=method, headers=headers)
    problem_of(response, 405)
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert "GET" in allowed and method not in allowed


def test_service_refusals_become_problems(client, headers):
    body = problem_of(client.get(f"{BASE_PATH}/loans/777", headers=headers), 404)
    assert "777" in body["detail"]


def test_the_portal_keeps_its_html_error_pages(client, login):
    page = client.get("/no-such-page")
    assert page.status_code == 404
    assert page.mimetype == "text/html"
    staff = login(Role.ADMIN)
    missing = staff.get("/loans/987654")
    assert missing.status_code == 404
    assert missing.mimetype == "text/html"


def test_errors_are_problems_without_a_key_too(client):
    body = problem_of(client.get(f"{BASE_PATH}/loans"), 401)
    assert "WWW-Authenticate" in client.get(f"{BASE_PATH}/loans").headers
    assert body["title"]


NASTY = [
    "",
    "%00",
    "%FF%FE",
    "%C0%AF",
    "'; DROP TABLE loans; --",
    "1 OR 1=1",
    "-0",
    "+1",
    " 1",
    "1e3",
    "NaN",
    "Infinity",
    "0x10",
    "9" * 300,
    "2026-02-29",
    "0000-01-01",
    "10000-01-01",
    "2026-01-01T25:00:00",
    "2026-01-01T00:00:00%2B24:00",
    "%F0%9F%92%B0",
    "a" * 5000,
]
PARAMETERS = {
    "/loans": [
        "status",
        "date_from",
        "date_to",
        "member_id",
        "product_id",
        "updated_since",
        "page",
        "per_page",
        "format",
    ],
    "/repayments": ["loan_id", "member_id", "date_from", "updated_since"],
    "/contributions": ["kind", "member_id", "date_to"],
    "/members": ["status", "date_from", "updated_since"],
    "/events": ["after_sequence", "limit"],
    "/financial-summary": ["period", "date_from", "date_to"],
}


@pytest.mark.parametrize("path", PARAMETERS)
def test_no_input_makes_the_api_answer_500(client, headers, path):
    for name in PARAMETERS[path]:
        for value in NASTY:
            # The old path shares every handler; it differs only in ignoring unknown names.
            prefix = COMPAT_PATH if value == "%00" else BASE_PATH
            response = client.get(f"{prefix}{path}?{name}={value}", headers=headers)
            response.close()
            assert response.status_code < 500, (prefix, path, name, value, response.text)
            if response.status_code >= 400:
                assert response.mimetype == "application/problem+json"
