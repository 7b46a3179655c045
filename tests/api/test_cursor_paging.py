"""Keyset paging: the Link rel="next" URL carries a signed cursor; following it reads a whole
(filtered) list once, in order, with no COUNT after the first page; a bad cursor is a 400."""

import re
from datetime import date
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from app.blueprints.api import BASE_PATH, COMPAT_PATH
from app.services import contributions, repayments, webhook_deliveries, webhooks
from tests import factories
from tests.api.test_query_counts import counting
from tests.factories import SYSTEM

PREFIXES = [BASE_PATH, COMPAT_PATH]
LINK = re.compile(r'<([^>]+)>; rel="(\w+)"')


@pytest.fixture(params=PREFIXES, ids=["api", "compat"])
def prefix(request):
    return request.param


@pytest.fixture
def headers(auth_headers):
    return auth_headers()


def links(response) -> dict[str, str]:
    return {rel: url for url, rel in LINK.findall(response.headers["Link"])}


def follow(client, headers, url: str, key: str) -> tuple[list[int], list[dict], list]:
    """Every page from `url` on, following rel="next": (ids in order, paginations, responses)."""
    seen, paginations, responses = [], [], []
    while url:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        seen += [item["id"] for item in response.json[key]]
        paginations.append(response.json["pagination"])
        responses.append(response)
        url = links(response).get("next")
        assert len(responses) < 50, "the next links do not end"
    return seen, paginations, responses


@pytest.fixture
def world():
    """Seven members, two pending loans each for the first five, repayments and contributions."""
    product = factories.product()
    members = [factories.member(joined_on=date(2025, 1, 1 + i)) for i in range(7)]
    for member in members[:5]:
        factories.pending_loan(member, product)
        factories.pending_loan(member, product)
    loan = factories.active_loan(members[0], product, Decimal("50000"), 12, date(2026, 1, 5))
    for n in range(7):
        repayments.record_repayment(loan.id, "100", "cash", f"R{n}", SYSTEM, date(2026, 2, 1 + n))
    for n, member in enumerate(members):
        contributions.record_contribution(
            member.id, "50", "deposit", "cash", f"C{n}", SYSTEM, date(2026, 2, 1)
        )
    return members, loan


@pytest.mark.parametrize(
    ("key", "query"),
    [
        ("loans", "status=pending"),
        ("repayments", "date_from=2026-02-02"),
        ("contributions", "kind=deposit"),
        ("members", "date_from=2025-01-02"),
    ],
)
def test_following_next_reads_a_filtered_list_once_in_order(
    client, headers, world, prefix, key, query
):
    expected = [
        item["id"]
        for item in client.get(f"{prefix}/{key}?{query}&per_page=100", headers=headers).json[key]
    ]
    assert len(expected) >= 6
    seen, paginations, responses = follow(
        client, headers, f"{prefix}/{key}?{query}&per_page=2", key
    )
    assert seen == expected  # every row exactly once, in id order
    total_pages = -(-len(expected) // 2)
    assert [p["page"] for p in paginations] == list(range(1, total_pages + 1))
    assert {p["total_items"] for p in paginations} == {len(expected)}
    assert {p["total_pages"] for p in paginations} == {total_pages}
    assert {p["per_page"] for p in paginations} == {2}
    for response in responses[1:]:
        args = parse_qs(urlsplit(response.request.url).query)
        assert "cursor" in args and "page" not in args
        assert args["per_page"] == ["2"]  # the filters and per_page travel with the cursor
        assert response.request.path.startswith(prefix)


def test_a_cursor_page_links_back_by_number_and_stops_at_the_end(client, headers, world, prefix):
    _, _, responses = follow(client, headers, f"{prefix}/loans?status=pending&per_page=4", "loans")
    assert len(responses) == 3  # 10 pending loans
    second = links(responses[1])
    base = f"http://localhost{prefix}/loans?status=pending&per_page=4"
    assert second["first"] == f"{base}&page=1"
    assert second["prev"] == f"{base}&page=1"
    assert second["last"] == f"{base}&page=3"
    assert second["next"].startswith(f"{base}&cursor=")
    assert "next" not in links(responses[2])


def test_pages_after_the_first_run_no_count(client, headers, world):
    first = client.get(f"{BASE_PATH}/loans?per_page=3", headers=headers)
    following = links(first)["next"]
    with counting() as statements:
        response = client.get(following, headers=headers)
        assert response.status_code == 200
    assert [s for s in statements if "count(" in s.lower()] == []
    assert len(response.json["loans"]) == 3


def test_a_record_added_during_a_sync_is_read_once_and_the_total_stays(client, headers, world):
    first = client.get(f"{BASE_PATH}/members?per_page=3", headers=headers)
    added = factories.member()
    seen, paginations, _ = follow(client, headers, links(first)["next"], "members")
    every = [m["id"] for m in first.json["members"]] + seen
    assert every[-1] == added.id and len(every) == len(set(every)) == 8
    assert {p["total_items"] for p in paginations} == {7}  # as counted on the first page


def test_a_cursor_page_has_an_etag(client, headers, world):
    following = links(client.get(f"{BASE_PATH}/loans?per_page=3", headers=headers))["next"]
    page = client.get(following, headers=headers)
    again = client.get(following, headers={**headers, "If-None-Match": page.headers["ETag"]})
    assert again.status_code == 304


def cursor_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["cursor"][0]


def assert_cursor_refused(response):
    assert response.status_code == 400, response.text
    assert response.mimetype == "application/problem+json"
    assert set(response.json["errors"]) == {"cursor"}


def test_a_tampered_or_malformed_cursor_is_a_400(client, headers, world, prefix):
    token = cursor_of(links(client.get(f"{prefix}/loans?per_page=2", headers=headers))["next"])
    payload, signature = token.split(".")
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    for bad in [
        f"{flipped}.{signature}",  # another page or id under the old signature
        f"{payload}.{signature[:-2]}",
        payload,
        "not-a-cursor",
        "%%%",
        "W10.",  # base64 of [] without a signature
        "x" * 201,
    ]:
        assert_cursor_refused(
            client.get(f"{prefix}/loans?per_page=2&cursor={bad}", headers=headers)
        )


def test_a_cursor_signed_with_another_secret_is_a_400(app, client, headers, world, monkeypatch):
    token = cursor_of(links(client.get(f"{BASE_PATH}/loans?per_page=2", headers=headers))["next"])
    monkeypatch.setattr(app, "secret_key", "another-secret")
    assert_cursor_refused(
        client.get(f"{BASE_PATH}/loans?per_page=2&cursor={token}", headers=headers)
    )


def test_a_cursor_is_bound_to_its_list_filters_and_page_size(client, headers, world, prefix):
    token = cursor_of(
        links(client.get(f"{prefix}/loans?status=pending&per_page=2", headers=headers))["next"]
    )
    for query in [
        "status=active&per_page=2",  # other filters
        "per_page=2",  # a filter dropped
        "status=pending&per_page=3",  # another page size
    ]:
        response = client.get(f"{prefix}/loans?{query}&cursor={token}", headers=headers)
        assert_cursor_refused(response)
        assert "other filters" in response.json["errors"]["cursor"]
    assert_cursor_refused(
        client.get(f"{prefix}/members?per_page=2&cursor={token}", headers=headers)
    )
    same = client.get(f"{prefix}/loans?status=pending&per_page=2&cursor={token}", headers=headers)
    assert same.status_code == 200 and same.json["pagination"]["page"] == 2


def test_cursor_with_page_or_csv_is_a_400(client, headers, world, prefix):
    token = cursor_of(links(client.get(f"{prefix}/loans?per_page=2", headers=headers))["next"])
    both = client.get(f"{prefix}/loans?per_page=2&page=2&cursor={token}", headers=headers)
    assert_cursor_refused(both)
    assert "not both" in both.json["errors"]["cursor"]
    assert_cursor_refused(
        client.get(f"{prefix}/loans?per_page=2&format=csv&cursor={token}", headers=headers)
    )


def test_webhook_lists_page_by_cursor_too(client, headers):
    endpoints = [
        webhooks.register_endpoint(f"https://127.0.0.1:9/hook{n}", ["loan.approved"], SYSTEM)[0]
        for n in range(3)
    ]
    seen, _, _ = follow(client, headers, f"{BASE_PATH}/webhooks?per_page=2", "webhooks")
    assert seen == [e.id for e in endpoints]

    target, other = endpoints[0], endpoints[1]
    sent = [webhook_deliveries.send_test_event(target.id, SYSTEM).id for _ in range(5)]
    webhook_deliveries.send_test_event(other.id, SYSTEM)
    url = f"{BASE_PATH}/webhooks/{target.id}/deliveries?per_page=2"
    seen, paginations, _ = follow(client, headers, url, "deliveries")
    assert seen == sorted(sent, reverse=True)  # newest first, each once
    assert {p["total_items"] for p in paginations} == {5}
    # The cursor of one endpoint's deliveries is refused for another's.
    token = cursor_of(links(client.get(url, headers=headers))["next"])
    assert_cursor_refused(
        client.get(
            f"{BASE_PATH}/webhooks/{other.id}/deliveries?per_page=2&cursor={token}",
            headers=headers,
        )
    )
