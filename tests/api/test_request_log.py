"""The API request log: a row for every API request (200, 401, 404, 403 over HTTP...), written
after the response, without secrets; search and per-key usage (retention: tests/services/test_retention.py)."""

import logging
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from app.clock import NAIROBI
from app.clock import today as nairobi_today
from app.models import ApiKey, ApiRequestLog
from app.models.base import utcnow
from app.services import api_log
from app.services.errors import ValidationFailed

LOANS = "/api/accounting/v1/loans"
COMPAT = "/wp-json/daystar-accounting/v1"


def bearer(plaintext: str) -> dict:
    return {"Authorization": f"Bearer {plaintext}"}


def rows(db) -> list[ApiRequestLog]:
    """The rows written, once the buffer has been flushed."""
    api_log.flush()
    db.session.expire_all()
    return list(db.session.scalars(select(ApiRequestLog).order_by(ApiRequestLog.id)))


def no_secret_in(row: ApiRequestLog, *secrets: str) -> bool:
    text = " ".join(str(getattr(row, c.name)) for c in ApiRequestLog.__table__.columns)
    return not any(secret in text for secret in secrets)


def test_a_200_is_logged_with_every_field(client, make_key, db):
    key, plaintext = make_key(["read_loans"])
    response = client.get(
        f"{LOANS}?page=1&per_page=10",
        headers={**bearer(plaintext), "User-Agent": "XeroSync/2.1 " + "x" * 400},
        environ_base={"REMOTE_ADDR": "192.0.2.44"},
        buffered=True,
    )
    assert response.status_code == 200
    [row] = rows(db)
    assert (row.api_key_id, row.method, row.path, row.query, row.status) == (
        key.id,
        "GET",
        LOANS,
        "page=1&per_page=10",
        200,
    )
    assert row.ip == "192.0.2.44"
    assert row.user_agent.startswith("XeroSync/2.1 ") and len(row.user_agent) == 300
    assert row.response_size == len(response.data) > 0
    assert 0 <= row.duration_ms < 10_000
    assert utcnow() - row.created_at < timedelta(seconds=30)
    assert no_secret_in(row, plaintext, plaintext[15:])


def test_a_streamed_csv_is_logged_with_the_bytes_sent(client, make_key, active_loan, db):
    _, plaintext = make_key(["read_loans"])
    response = client.get(f"{LOANS}?format=csv", headers=bearer(plaintext), buffered=True)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    [row] = rows(db)
    assert row.status == 200 and row.query == "format=csv"
    assert row.response_size == len(response.data) > 100


def test_a_401_is_logged_without_the_key(client, db):
    sent = "dsk_live_" + "s" * 43
    response = client.get(LOANS, headers=bearer(sent), buffered=True)
    assert response.status_code == 401
    [row] = rows(db)
    assert (row.api_key_id, row.status, row.path) == (None, 401, LOANS)
    assert row.response_size == len(response.data)
    assert no_secret_in(row, sent, "s" * 43)


def test_a_404_under_the_compat_prefix_is_logged(client, make_key, db):
    key, plaintext = make_key(["read_loans"])
    response = client.get(f"{COMPAT}/no-such-thing?x=1", headers=bearer(plaintext), buffered=True)
    assert response.status_code == 404
    [row] = rows(db)
    assert (row.status, row.path, row.query) == (404, f"{COMPAT}/no-such-thing", "x=1")
    assert row.api_key_id is None  # no route, so the key was never checked
    assert no_secret_in(row, plaintext)


def test_a_key_pasted_into_the_path_is_masked(client, make_key, db):
    _, plaintext = make_key(["read_loans"])
    client.get(f"{LOANS}/{plaintext}", headers=bearer(plaintext), buffered=True)
    [row] = rows(db)
    assert row.status == 404 and row.path == f"{LOANS}/***"


def test_secrets_in_the_query_string_are_masked(client, make_key, db):
    key, plaintext = make_key(["read_loans"])
    client.get(
        f"{LOANS}?api_key={plaintext}&token=t0ps3cret&status=active&note={plaintext}",
        headers=bearer(plaintext),
        buffered=True,
    )
    [row] = rows(db)
    assert row.api_key_id == key.id
    assert "api_key=***" in row.query and "token=***" in row.query
    assert "status=active" in row.query and "note=***" in row.query
    assert no_secret_in(row, plaintext, "t0ps3cret")


@pytest.mark.parametrize(
    ("query", "masked"),
    [
        ("", ""),
        ("page=2&per_page=50", "page=2&per_page=50"),
        ("key=abc&key_id=7", "key=***&key_id=7"),
        ("access_token=abc&X-Api-Key=def&password=p&signature=s", None),
        ("q=dsk_live_AbC-12_3&monkey=banana", "q=***&monkey=banana"),
        ("token=", "token="),
    ],
)
def test_mask_query(query, masked):
    result = api_log.mask_query(query)
    if masked is not None:
        assert result == masked
    else:
        assert result.count("***") == 4 and "abc" not in result and "def" not in result


def test_portal_requests_are_not_logged(client, db):
    client.get("/auth/login", buffered=True)
    assert rows(db) == []


def test_refused_plain_http_is_logged(app, client, monkeypatch, db):
    monkeypatch.setitem(app.config, "API_REQUIRE_HTTPS", True)
    assert client.get(LOANS, buffered=True).status_code == 403
    assert [r.status for r in rows(db)] == [403]


def test_a_failing_log_write_never_fails_the_request(client, make_key, db):
    """A real failure: the key is deleted after the response and before the row is written,
    so the row's foreign key is refused by the database."""
    key, plaintext = make_key(["read_loans"])
    warnings = []
    handler = logging.Handler()
    handler.emit = warnings.append
    logger = logging.getLogger("app.services.api_log")
    logger.addHandler(handler)
    try:
        response = client.get(LOANS, headers=bearer(plaintext))  # not closed yet: not logged
        assert response.status_code == 200
        db.session.execute(ApiKey.__table__.delete().where(ApiKey.id == key.id))
        db.session.commit()
        response.close()  # the server has sent it: the row is logged (buffered)
        api_log.flush()  # and its write fails
    finally:
        logger.removeHandler(handler)
    assert rows(db) == []
    assert any("could not write the API request log" in r.getMessage() for r in warnings)


# --- search and usage -----------------------------------------------------------------------------


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    """A Nairobi wall-clock time, as UTC."""
    return datetime.combine(day, time(hour, minute), NAIROBI).astimezone(UTC)


def _record(key_id, status=200, path=LOANS, created_at=None, duration_ms=10):
    assert api_log.record(
        api_log.RequestRecord(
            method="GET",
            path=path,
            query="",
            status=status,
            duration_ms=duration_ms,
            ip="192.0.2.1",
            user_agent="test",
            response_size=10,
            api_key_id=key_id,
            created_at=created_at or utcnow(),
        )
    )


def test_search_filters_and_pages(make_key, db):
    first, _ = make_key(name="First")
    second, _ = make_key(name="Second")
    today = nairobi_today()
    yesterday = today - timedelta(days=1)
    _record(first.id, 200, LOANS, _at(yesterday, 23, 30))  # 20:30 UTC: still yesterday here
    _record(first.id, 404, f"{LOANS}/99", _at(today, 0, 30))  # 21:30 UTC yesterday: today here
    _record(first.id, 429, LOANS, _at(today, 9))
    _record(second.id, 500, f"{COMPAT}/members", _at(today, 10))
    _record(None, 401, f"{COMPAT}/re_payments", _at(today, 11))

    everything = api_log.search()
    assert everything.total == 5
    assert [r.status for r in everything.items] == [401, 500, 429, 404, 200]  # newest first
    assert {r.status for r in api_log.search(key_id=first.id).items} == {200, 404, 429}
    assert [r.status for r in api_log.search(status="4xx").items] == [401, 429, 404]
    assert [r.status for r in api_log.search(status="error").items] == [401, 500, 429, 404]
    assert [r.status for r in api_log.search(status=500).items] == [500]
    assert [r.status for r in api_log.search(path="/members").items] == [500]
    assert [r.status for r in api_log.search(path="re_p").items] == [401]  # _ is literal
    assert [r.status for r in api_log.search(date_to=yesterday).items] == [200]
    assert [r.status for r in api_log.search(date_from=today.isoformat()).items] == [
        401,
        500,
        429,
        404,
    ]
    page = api_log.search(per_page=2, page=3)
    assert (page.total, page.pages, [r.status for r in page.items]) == (5, 3, [200])


def test_search_names_each_bad_filter():
    with pytest.raises(ValidationFailed) as err:
        api_log.search(
            key_id="x", status="teapot", date_from="01/02/2026", date_to="2026-13-01", per_page=500
        )
    assert set(err.value.errors) == {"key_id", "status", "date_from", "date_to", "per_page"}
    with pytest.raises(ValidationFailed) as err:
        api_log.search(date_from="2026-03-02", date_to="2026-03-01")
    assert "date_to" in err.value.errors


def test_key_usage_per_day_error_rate_and_p95(make_key, db):
    key, _ = make_key()
    other, _ = make_key()
    today = nairobi_today()
    two_days_ago = today - timedelta(days=2)
    for ms in range(1, 21):  # 20 requests today, 1..20 ms, two of them errors
        status = 500 if ms == 20 else 404 if ms == 19 else 200
        _record(key.id, status, created_at=_at(today, 0, 30), duration_ms=ms)
    _record(key.id, 200, created_at=_at(two_days_ago, 12), duration_ms=1000)
    _record(key.id, 200, created_at=_at(today - timedelta(days=10), 12))  # outside 7 days
    _record(other.id, 500, created_at=_at(today, 8))

    usage = api_log.key_usage(key.id, days=7)
    assert [d.day for d in usage.days] == [today - timedelta(days=6 - i) for i in range(7)]
    per_day = {d.day: (d.requests, d.errors) for d in usage.days}
    assert per_day[today] == (20, 2)
    assert per_day[two_days_ago] == (1, 0)
    assert sum(d.requests for d in usage.days) == usage.requests == 21
    assert (usage.errors, usage.server_errors) == (2, 1)
    assert usage.error_rate == pytest.approx(2 / 21) and usage.error_percent == 9.5
    # Nearest rank of 21 durations (1..20 and 1000): the 20th smallest.
    assert usage.p95_ms == 20

    quiet = api_log.key_usage(other.id + 100, days=3)
    assert (quiet.requests, quiet.error_rate, quiet.p95_ms) == (0, 0.0, None)
    assert [d.requests for d in quiet.days] == [0, 0, 0]
    with pytest.raises(ValidationFailed):
        api_log.key_usage(key.id, days=0)


def test_nearest_rank():
    assert api_log.nearest_rank([], 0.95) is None
    assert api_log.nearest_rank([7], 0.95) == 7
    assert api_log.nearest_rank(list(range(1, 101)), 0.95) == 95
