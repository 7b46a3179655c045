"""The read endpoints on both paths: records, filters, paging, Link, money, ETag/304, CSV, events,
plugin fields and the permission each one needs."""

import csv
import io
import sys
import types
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from app.blueprints.api import BASE_PATH, COMPAT_PATH
from app.extensions import db
from app.hooks import hookimpl
from app.models import Contribution, Loan, Member, Repayment
from app.services import contributions, loans, repayments
from tests import factories
from tests.factories import SYSTEM

PREFIXES = [BASE_PATH, COMPAT_PATH]
LOAN_FIELDS = [
    "id",
    "member_id",
    "member_number",
    "product_id",
    "amount",
    "interest_rate",
    "term_months",
    "monthly_payment",
    "total_payable",
    "paid_amount",
    "balance",
    "status",
    "application_date",
    "approval_date",
    "disbursement_date",
    "due_date",
    "purpose",
    "updated_at",
]
REPAYMENT_FIELDS = [
    "id",
    "loan_id",
    "member_id",
    "amount",
    "principal_amount",
    "interest_amount",
    "method",
    "reference",
    "paid_on",
    "created_at",
    "updated_at",
]
CONTRIBUTION_FIELDS = [
    "id",
    "member_id",
    "amount",
    "kind",
    "method",
    "reference",
    "paid_on",
    "created_at",
    "updated_at",
]
MEMBER_FIELDS = [
    "id",
    "member_number",
    "first_name",
    "last_name",
    "phone",
    "email",
    "national_id",
    "status",
    "joined_on",
    "created_at",
    "updated_at",
]


@pytest.fixture(params=PREFIXES, ids=["api", "compat"])
def prefix(request):
    return request.param


@pytest.fixture
def headers(auth_headers):
    return auth_headers()


@pytest.fixture
def world():
    """Two products, three members, loans in several states, repayments and contributions."""
    reducing = factories.product()
    flat = factories.product(method="flat", rate="10")
    wanjiku = factories.member(joined_on=date(2024, 1, 15))
    otieno = factories.member(joined_on=date(2025, 6, 1))
    dormant = factories.member(joined_on=date(2026, 2, 10), status="dormant")
    active = factories.active_loan(wanjiku, reducing, Decimal("50000"), 12, date(2026, 1, 22))
    pending = factories.pending_loan(otieno, flat, Decimal("20000"), 6, date(2026, 3, 1))
    declined = factories.pending_loan(otieno, reducing, Decimal("15000"), 6, date(2026, 2, 1))
    loans.decline(declined.id, "Guarantor missing", SYSTEM)
    first = repayments.record_repayment(
        active.id, "4442.44", "mpesa", "QAB1234567", SYSTEM, date(2026, 2, 22)
    )
    second = repayments.record_repayment(
        active.id, "4442.44", "cash", "RCPT-77", SYSTEM, date(2026, 3, 22)
    )
    deposit = contributions.record_contribution(
        wanjiku.id, "1500.50", "deposit", "mpesa", "QCD7654321", SYSTEM, date(2026, 1, 31)
    )
    share = contributions.record_contribution(
        otieno.id, "10000", "share_capital", "bank", "TRF-9", SYSTEM, date(2026, 2, 28)
    )
    return types.SimpleNamespace(
        reducing=reducing,
        flat=flat,
        wanjiku=wanjiku,
        otieno=otieno,
        dormant=dormant,
        active=db.session.get(Loan, active.id),
        pending=pending,
        declined=declined,
        first=first,
        second=second,
        deposit=deposit,
        share=share,
    )


def ids(response, key):
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json[key]]


def touch(model, row_id, moment):
    db.session.execute(update(model).where(model.id == row_id).values(updated_at=moment))
    db.session.commit()


# ----- loans ----------------------------------------------------------------------------------


def test_loan_records_carry_exactly_the_previous_systems_fields(client, headers, world, prefix):
    response = client.get(f"{prefix}/loans", headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    record = response.json["loans"][0]
    assert list(record) == LOAN_FIELDS
    loan = world.active
    assert record["id"] == loan.id
    assert record["member_id"] == world.wanjiku.id
    assert record["member_number"] == world.wanjiku.member_number
    assert record["product_id"] == world.reducing.id
    assert record["status"] == "active"
    assert record["term_months"] == 12
    assert record["application_date"] == "2026-01-02"
    assert record["approval_date"] == "2026-01-03"
    assert record["disbursement_date"] == "2026-01-22"
    assert record["due_date"] == "2027-01-22"
    assert record["purpose"] == "School fees"
    assert datetime.fromisoformat(record["updated_at"]).tzinfo is not None
    assert Decimal(str(record["paid_amount"])) == Decimal("8884.88")
    assert Decimal(str(record["balance"])) == loan.total_payable - Decimal("8884.88")
    pending = response.json["loans"][1]
    assert pending["approval_date"] is None and pending["disbursement_date"] is None


def test_money_is_a_two_decimal_json_number_from_decimal(client, headers, world):
    raw = client.get(f"{BASE_PATH}/loans", headers=headers).data
    assert b'"amount": 50000.00' in raw
    assert b'"interest_rate": 12.00' in raw
    assert b'"monthly_payment": 4442.44' in raw
    assert b'"paid_amount": 0.00' in raw
    raw = client.get(f"{BASE_PATH}/contributions", headers=headers).data
    assert b'"amount": 1500.50' in raw


def test_rates_keep_their_own_decimals(client, headers):
    product = factories.product(rate="12.125")
    factories.pending_loan(factories.member(), product)
    raw = client.get(f"{BASE_PATH}/loans", headers=headers).data
    assert b'"interest_rate": 12.125' in raw


def test_list_envelope_order_and_link_header(client, headers, world, prefix):
    for _ in range(3):
        factories.pending_loan(world.otieno, world.flat)
    response = client.get(f"{prefix}/loans?per_page=2&page=2&status=pending", headers=headers)
    assert response.json["pagination"] == {
        "page": 2,
        "per_page": 2,
        "total_items": 4,
        "total_pages": 2,
    }
    every = ids(client.get(f"{prefix}/loans?status=pending", headers=headers), "loans")
    assert every == sorted(every)
    assert ids(response, "loans") == every[2:]
    links = response.headers["Link"]
    base = f"http://localhost{prefix}/loans?"
    assert f'<{base}per_page=2&page=1&status=pending>; rel="first"' in links
    assert f'<{base}per_page=2&page=1&status=pending>; rel="prev"' in links
    assert 'rel="next"' not in links
    assert f'<{base}per_page=2&page=2&status=pending>; rel="last"' in links
    first_page = client.get(f"{prefix}/loans?per_page=2&status=pending", headers=headers)
    assert f"<{base}per_page=2&status=pending&cursor=" in first_page.headers["Link"]
    assert 'rel="next"' in first_page.headers["Link"]
    assert 'rel="prev"' not in first_page.headers["Link"]


def test_default_and_largest_page_size(client, headers, world):
    assert client.get(f"{BASE_PATH}/loans", headers=headers).json["pagination"]["per_page"] == 50
    response = client.get(f"{BASE_PATH}/loans?per_page=100", headers=headers)
    assert response.json["pagination"]["per_page"] == 100


def test_a_page_past_the_end_is_empty(client, headers, world):
    response = client.get(f"{BASE_PATH}/loans?page=9", headers=headers)
    assert response.json["loans"] == []
    assert response.json["pagination"]["total_items"] == 3


def test_loan_filters(client, headers, world, prefix):
    def loan_ids(query):
        return ids(client.get(f"{prefix}/loans?{query}", headers=headers), "loans")

    everyone = [world.active.id, world.pending.id, world.declined.id]
    assert loan_ids("") == everyone
    assert loan_ids("status=active") == [world.active.id]
    assert loan_ids("status=declined") == [world.declined.id]
    assert loan_ids("status=completed") == []
    assert loan_ids(f"member_id={world.otieno.id}") == [world.pending.id, world.declined.id]
    assert loan_ids(f"product_id={world.flat.id}") == [world.pending.id]
    # application dates: active 2026-01-02, declined 2026-02-01, pending 2026-03-01
    assert loan_ids("date_from=2026-02-01") == [world.pending.id, world.declined.id]
    assert loan_ids("date_to=2026-02-01") == [world.active.id, world.declined.id]
    assert loan_ids("date_from=2026-01-03&date_to=2026-02-28") == [world.declined.id]
    assert loan_ids(f"member_id={world.otieno.id}&status=pending") == [world.pending.id]


def test_updated_since_filters_every_list(client, headers, world, prefix):
    old = datetime(2026, 1, 1, tzinfo=UTC)
    recent = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    for model in (Loan, Repayment, Contribution, Member):
        db.session.execute(update(model).values(updated_at=old))
    db.session.commit()
    touch(Loan, world.pending.id, recent)
    touch(Repayment, world.second.id, recent)
    touch(Contribution, world.share.id, recent)
    touch(Member, world.dormant.id, recent)
    cases = {
        "loans": world.pending.id,
        "repayments": world.second.id,
        "contributions": world.share.id,
        "members": world.dormant.id,
    }
    for key, only in cases.items():
        for since in (
            "2026-06-01T12:00:00Z",
            "2026-06-01T15:00:00%2B03:00",
            "2026-06-01T15:00:00+03:00",  # unencoded: the + arrives as a space
            "2026-06-01T12:00:00",
        ):
            got = ids(client.get(f"{prefix}/{key}?updated_since={since}", headers=headers), key)
            assert got == [only], (key, since)
        later = client.get(f"{prefix}/{key}?updated_since=2026-06-01T12:00:01Z", headers=headers)
        assert ids(later, key) == []


def test_loan_detail_with_repayments_and_stored_schedule(client, headers, world, prefix):
    response = client.get(f"{prefix}/loans/{world.active.id}", headers=headers)
    assert response.status_code == 200
    body = response.json
    assert list(body)[: len(LOAN_FIELDS)] == LOAN_FIELDS
    assert [r["id"] for r in body["repayments"]] == [world.first.id, world.second.id]
    repayment = body["repayments"][0]
    assert list(repayment) == REPAYMENT_FIELDS
    assert repayment["reference"] == "QAB1234567"
    schedule = body["schedule"]
    assert schedule["basis"] == "stored"
    assert len(schedule["installments"]) == 12
    first = schedule["installments"][0]
    assert first["number"] == 1 and first["due_date"] == "2026-02-22"
    assert first["status"] == "paid" and first["paid_on"] == "2026-02-22"
    total = sum(Decimal(str(i["amount"])) for i in schedule["installments"])
    assert total == world.active.total_payable
    assert b'"principal": ' in response.data


def test_pending_loan_has_a_projected_schedule_and_declined_none(client, headers, world):
    from app import clock

    body = client.get(f"{BASE_PATH}/loans/{world.pending.id}", headers=headers).json
    assert body["schedule"]["basis"] == "projected"
    assert len(body["schedule"]["installments"]) == 6
    first = body["schedule"]["installments"][0]
    assert date.fromisoformat(first["due_date"]) > clock.today()
    assert first["principal_paid"] == 0 and first["status"] == "due"
    assert body["repayments"] == []
    declined = client.get(f"{BASE_PATH}/loans/{world.declined.id}", headers=headers).json
    assert declined["schedule"] == {"basis": "none", "installments": []}


@pytest.mark.parametrize("loan_id", ["999", "0", "99999999999", "9" * 40])
def test_unknown_loan_is_a_404_problem(client, headers, world, prefix, loan_id):
    response = client.get(f"{prefix}/loans/{loan_id}", headers=headers)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 404


# ----- repayments, contributions, members ------------------------------------------------------


def test_repayments_with_portions_method_reference_and_filters(client, headers, world, prefix):
    def repayment_ids(query):
        return ids(client.get(f"{prefix}/repayments?{query}", headers=headers), "repayments")

    response = client.get(f"{prefix}/repayments", headers=headers)
    first = response.json["repayments"][0]
    assert list(first) == REPAYMENT_FIELDS
    assert first["loan_id"] == world.active.id
    assert first["member_id"] == world.wanjiku.id
    assert first["method"] == "mpesa" and first["reference"] == "QAB1234567"
    assert first["paid_on"] == "2026-02-22"
    assert Decimal(str(first["interest_amount"])) == Decimal("500.00")
    assert Decimal(str(first["principal_amount"])) == Decimal("3942.44")
    assert b'"amount": 4442.44' in response.data
    both = [world.first.id, world.second.id]
    assert repayment_ids(f"loan_id={world.active.id}") == both
    assert repayment_ids(f"loan_id={world.pending.id}") == []
    assert repayment_ids(f"member_id={world.wanjiku.id}") == both
    assert repayment_ids(f"member_id={world.otieno.id}") == []
    assert repayment_ids("date_from=2026-03-01") == [world.second.id]
    assert repayment_ids("date_to=2026-02-22") == [world.first.id]
    assert repayment_ids("date_from=2026-02-23&date_to=2026-03-21") == []


def test_contributions_and_filters(client, headers, world, prefix):
    def contribution_ids(query):
        return ids(client.get(f"{prefix}/contributions?{query}", headers=headers), "contributions")

    response = client.get(f"{prefix}/contributions", headers=headers)
    record = response.json["contributions"][0]
    assert list(record) == CONTRIBUTION_FIELDS
    assert record["kind"] == "deposit" and record["method"] == "mpesa"
    assert record["reference"] == "QCD7654321"
    assert contribution_ids("kind=deposit") == [world.deposit.id]
    assert contribution_ids("kind=share_capital") == [world.share.id]
    assert contribution_ids(f"member_id={world.otieno.id}") == [world.share.id]
    assert contribution_ids("date_from=2026-02-01") == [world.share.id]
    assert contribution_ids("date_to=2026-01-31") == [world.deposit.id]
    assert contribution_ids(f"member_id={world.wanjiku.id}&kind=share_capital") == []


def test_members_and_filters(client, headers, world, prefix):
    def member_ids(query):
        return ids(client.get(f"{prefix}/members?{query}", headers=headers), "members")

    response = client.get(f"{prefix}/members", headers=headers)
    record = response.json["members"][0]
    assert list(record) == MEMBER_FIELDS
    assert record["member_number"] == world.wanjiku.member_number
    assert record["joined_on"] == "2024-01-15"
    assert member_ids("status=dormant") == [world.dormant.id]
    assert member_ids("status=active") == [world.wanjiku.id, world.otieno.id]
    assert member_ids("status=exited") == []
    assert member_ids("date_from=2025-01-01") == [world.otieno.id, world.dormant.id]
    assert member_ids("date_to=2025-06-01") == [world.wanjiku.id, world.otieno.id]
    assert member_ids("date_from=2026-01-01&status=dormant") == [world.dormant.id]


# ----- events ---------------------------------------------------------------------------------


def test_event_feed_resumes_without_gaps(client, headers, world, prefix):
    everything = client.get(f"{prefix}/events?limit=1000", headers=headers).json
    assert everything["has_more"] is False
    sequences = [e["sequence"] for e in everything["events"]]
    assert sequences == list(range(1, len(sequences) + 1))
    assert everything["next_after_sequence"] == sequences[-1]
    first = everything["events"][0]
    assert list(first) == ["id", "type", "sequence", "timestamp", "data"]
    assert first["type"] == "member.created" and first["id"].startswith("evt_")
    read, after = [], 0
    while True:
        page = client.get(f"{prefix}/events?after_sequence={after}&limit=4", headers=headers).json
        read += page["events"]
        assert len(page["events"]) <= 4
        after = page["next_after_sequence"]
        if not page["has_more"]:
            break
    assert [e["sequence"] for e in read] == sequences
    end = client.get(f"{prefix}/events?after_sequence={after}", headers=headers).json
    assert end == {"events": [], "next_after_sequence": after, "has_more": False}


def test_event_feed_matches_the_webhook_envelope(client, headers, world):
    from app.services import webhook_deliveries

    event = client.get(f"{BASE_PATH}/events?limit=1", headers=headers).json["events"][0]
    from app.models import Event

    row = db.session.scalar(db.select(Event).where(Event.sequence == 1))
    assert event == webhook_deliveries.envelope(
        webhook_deliveries.message_id(row.id),
        row.event_type,
        row.sequence,
        row.created_at,
        row.payload,
    )


# ----- ETag -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/loans", "/repayments", "/contributions", "/members", "/events", "/financial-summary"],
)
def test_get_responses_carry_an_etag_and_answer_304(client, headers, world, prefix, path):
    first = client.get(f"{prefix}{path}", headers=headers)
    etag = first.headers["ETag"]
    assert etag
    again = client.get(f"{prefix}{path}", headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    other = client.get(f"{prefix}{path}", headers={**headers, "If-None-Match": '"other"'})
    assert other.status_code == 200


def test_etag_changes_with_the_data(client, headers, world):
    before = client.get(f"{BASE_PATH}/loans/{world.active.id}", headers=headers).headers["ETag"]
    repayments.record_repayment(world.active.id, "100", "cash", "R-1", SYSTEM, date(2026, 4, 1))
    after = client.get(
        f"{BASE_PATH}/loans/{world.active.id}", headers={**headers, "If-None-Match": before}
    )
    assert after.status_code == 200
    assert after.headers["ETag"] != before


# ----- CSV ------------------------------------------------------------------------------------


def read_csv(response) -> list[dict]:
    assert response.status_code == 200, response.text
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.text)))


@pytest.mark.parametrize(
    ("key", "fields"),
    [
        ("loans", LOAN_FIELDS),
        ("repayments", REPAYMENT_FIELDS),
        ("contributions", CONTRIBUTION_FIELDS),
        ("members", MEMBER_FIELDS),
    ],
)
def test_every_list_answers_csv_streamed(client, headers, world, prefix, key, fields):
    response = client.get(f"{prefix}/{key}?format=csv", headers=headers)
    assert response.is_streamed
    assert response.headers["Content-Disposition"] == f'attachment; filename="{key}.csv"'
    rows = read_csv(response)
    assert list(rows[0]) == fields
    json_ids = ids(client.get(f"{prefix}/{key}?per_page=100", headers=headers), key)
    assert [int(r["id"]) for r in rows] == json_ids


def test_csv_takes_the_same_filters_and_writes_money_with_two_decimals(client, headers, world):
    rows = read_csv(client.get(f"{BASE_PATH}/loans?format=csv&status=active", headers=headers))
    assert [int(r["id"]) for r in rows] == [world.active.id]
    assert rows[0]["amount"] == "50000.00"
    assert rows[0]["interest_rate"] == "12.00"
    assert rows[0]["approval_date"] == "2026-01-03"
    pending = read_csv(
        client.get(f"{BASE_PATH}/loans?format=csv&member_id={world.otieno.id}", headers=headers)
    )
    assert [int(r["id"]) for r in pending] == [world.pending.id, world.declined.id]
    assert pending[0]["disbursement_date"] == ""
    contributions_rows = read_csv(
        client.get(f"{BASE_PATH}/contributions?format=csv&kind=deposit", headers=headers)
    )
    assert [r["amount"] for r in contributions_rows] == ["1500.50"]
    repayments_rows = read_csv(
        client.get(f"{BASE_PATH}/repayments?format=csv&date_from=2026-03-01", headers=headers)
    )
    assert [int(r["id"]) for r in repayments_rows] == [world.second.id]
    assert repayments_rows[0]["principal_amount"] == f"{world.second.principal_amount:.2f}"
    assert repayments_rows[0]["interest_amount"] == "460.58"
    members_rows = read_csv(
        client.get(f"{BASE_PATH}/members?format=csv&status=dormant", headers=headers)
    )
    assert [int(r["id"]) for r in members_rows] == [world.dormant.id]


def test_csv_ignores_paging_and_streams_every_row(client, headers, world):
    for _ in range(5):
        factories.member()
    rows = read_csv(client.get(f"{BASE_PATH}/members?format=csv&per_page=1", headers=headers))
    assert len(rows) == 8


def test_csv_neutralises_spreadsheet_formulas(client, headers):
    factories.member(first_name="=HYPERLINK(1)", last_name="+Kamau")
    rows = read_csv(client.get(f"{BASE_PATH}/members?format=csv", headers=headers))
    assert rows[0]["first_name"] == "'=HYPERLINK(1)"
    assert rows[0]["last_name"] == "'+Kamau"


def test_csv_weak_etag_and_304(client, headers, world):
    url = f"{BASE_PATH}/loans?format=csv&status=active"
    first = client.get(url, headers=headers)
    first.close()  # a streamed body holds the request context until read or closed
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    assert client.get(url, headers={**headers, "If-None-Match": etag}).status_code == 304
    other_filter = client.get(f"{BASE_PATH}/loans?format=csv&status=pending", headers=headers)
    other_filter.close()
    assert other_filter.headers["ETag"] != etag
    touch(Loan, world.active.id, datetime.now(UTC) + timedelta(seconds=5))
    changed = client.get(url, headers={**headers, "If-None-Match": etag})
    changed.close()
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


# ----- plugins --------------------------------------------------------------------------------


def test_plugins_add_loan_fields_but_cannot_change_ours(app, client, headers, world):
    module = types.ModuleType("daystar_test_api_plugin")
    module.daystar_api_loan_data = hookimpl(
        lambda loan_data, loan: {"branch": f"Nyeri-{loan.id}", "amount": "hacked"}
    )
    sys.modules[module.__name__] = module
    manager = app.extensions["daystar_hooks"]
    manager.register(module)
    try:
        record = client.get(f"{BASE_PATH}/loans", headers=headers).json["loans"][0]
        detail = client.get(f"{BASE_PATH}/loans/{world.active.id}", headers=headers).json
    finally:
        manager.unregister(module)
    assert record["branch"] == f"Nyeri-{world.active.id}"
    assert record["amount"] == 50000
    assert detail["branch"] == f"Nyeri-{world.active.id}"


# ----- permissions ----------------------------------------------------------------------------

ENDPOINTS = {
    "/loans": "read_loans",
    "/loans/1": "read_loans",
    "/repayments": "read_repayments",
    "/contributions": "read_contributions",
    "/members": "read_members",
    "/financial-summary": "read_financial_summary",
    "/events": "manage_webhooks",
}


@pytest.mark.parametrize(("path", "needed"), ENDPOINTS.items())
def test_each_endpoint_needs_its_permission(client, auth_headers, world, prefix, path, needed):
    from tests.api.conftest import ALL_PERMISSIONS

    without = auth_headers([p for p in ALL_PERMISSIONS if p != needed])
    refused = client.get(f"{prefix}{path}", headers=without)
    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"
    assert needed in refused.json["detail"]
    allowed = client.get(f"{prefix}{path}", headers=auth_headers([needed]))
    assert allowed.status_code in (200, 404)
    anonymous = client.get(f"{prefix}{path}")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")


# ----- the fast dumper ------------------------------------------------------------------------


def test_fast_dumper_writes_exactly_what_marshmallow_dumps(app, world):
    from app.blueprints.api import schemas
    from app.blueprints.api.dump import Dumper
    from app.services import accounting, financial_summary

    def page(key, query):
        items = list(db.session.scalars(query))
        return {key: items, "pagination": {"page": 1, "per_page": 50, "total_items": 3}}

    events, _ = accounting.events_after(0, 100)
    cases = [
        (schemas.LoanList, page("loans", accounting.loans_query())),
        (schemas.RepaymentList, page("repayments", accounting.repayments_query())),
        (schemas.ContributionList, page("contributions", accounting.contributions_query())),
        (schemas.MemberList, page("members", accounting.members_query())),
        (schemas.LoanDetail, accounting.get_loan_detail(world.active.id)),
        (schemas.LoanDetail, accounting.get_loan_detail(world.pending.id)),
        (schemas.FinancialSummary, financial_summary.summarise("monthly")),
        (
            schemas.EventFeed,
            {
                "events": [accounting.event_envelope(e) for e in events],
                "next_after_sequence": 9,
                "has_more": False,
            },
        ),
    ]
    module = types.ModuleType("daystar_test_dump_plugin")
    module.daystar_api_loan_data = hookimpl(lambda loan_data, loan: {"branch": "Nyeri"})
    manager = app.extensions["daystar_hooks"]
    for with_plugin in (False, True):
        if with_plugin:
            manager.register(module)
        try:
            for schema, obj in cases:
                assert Dumper(schema()).dump(obj) == schema().dump(obj), schema.__name__
        finally:
            if with_plugin:
                manager.unregister(module)
