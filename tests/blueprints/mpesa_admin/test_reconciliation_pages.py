"""Integrations > M-Pesa > Reconciliation: upload (a bad file is a 422 naming the line), the
progress bar polled until 286, the report by category with htmx paging, the CSV download and
the send-to-suspense button; each page full and as its htmx partial; admin and accountant only."""

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import MpesaReconciliation, Role, SuspenseItem
from app.services.mpesa import reconciliation
from tests.factories import SYSTEM
from tests.services.mpesa.statement_data import (
    charge,
    mpesa_transaction,
    nairobi,
    paid_in,
    statement,
)

BASE = "/integrations/mpesa"
HX = {"HX-Request": "true"}


def march_statement(unmatched: int = 1) -> str:
    rows = [paid_in("RCA0000001", "02-03-2026 12:00:00", "1500")]
    rows += [
        paid_in(f"RCN{n:07d}", "03-03-2026 13:00:00", "12345", account="NOSUCH1")
        for n in range(unmatched)
    ]
    rows.append(charge("RCC0000001", "02-03-2026 12:00:01", "34"))
    return statement(rows)


def finished_run(unmatched: int = 1):
    mpesa_transaction("RCA0000001", "1500", completed_at=nairobi(2026, 3, 2))
    started = reconciliation.start("march.csv", march_statement(unmatched), SYSTEM, enqueue=False)
    return reconciliation.run(started.id)


def upload(client, text: str | bytes, name="march.csv", headers=None):
    data = text.encode() if isinstance(text, str) else text
    return client.post(
        f"{BASE}/reconciliation",
        data={"statement": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
        headers=headers or {},
    )


def is_page(response) -> bool:
    return "<html" in response.text


def test_reconciliation_page_full_and_partial(accountant_client):
    finished_run()
    page = accountant_client.get(f"{BASE}/reconciliation")
    assert page.status_code == 200 and is_page(page)
    assert 'id="upload-form"' in page.text and "march.csv" in page.text
    assert "HX-Request" in page.headers["Vary"]
    nav = re.search(r'<nav class="tabs" aria-label="M-Pesa sections">.*?</nav>', page.text, re.S)
    assert "Reconciliation" in nav.group(0) and "Suspense queue" in nav.group(0)
    partial = accountant_client.get(f"{BASE}/reconciliation", headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert '<section id="reconciliations"' in partial.text and 'id="upload-form"' in partial.text
    assert "HX-Request" in partial.headers["Vary"]


def test_upload_then_progress_then_report(accountant_client, run_jobs):
    mpesa_transaction("RCA0000001", "1500", completed_at=nairobi(2026, 3, 2))
    response = upload(accountant_client, march_statement(), headers=HX)
    assert response.status_code == 200
    run = db.session.scalars(select(MpesaReconciliation)).one()
    report_url = f"{BASE}/reconciliation/report?reconciliation_id={run.id}"
    assert response.headers["HX-Redirect"] == report_url
    assert upload(accountant_client, march_statement()).status_code == 303

    page = accountant_client.get(report_url)
    assert page.status_code == 200 and is_page(page)
    assert "<progress" in page.text and 'hx-trigger="every 1s"' in page.text
    poll_url = f"{BASE}/reconciliation/progress?reconciliation_id={run.id}"
    running = accountant_client.get(poll_url, headers=HX)
    assert running.status_code == 200 and "<progress" in running.text and not is_page(running)

    run_jobs()
    done = accountant_client.get(poll_url, headers=HX)
    assert done.status_code == 286  # htmx stops polling
    assert "<progress" not in done.text and "hx-trigger" not in done.text
    assert 'id="count-matched"' in done.text and "RCN0000000" in done.text
    assert "Download the report (CSV)" in done.text
    full = accountant_client.get(poll_url)
    assert full.status_code == 200 and is_page(full)


def test_a_failed_run_stops_the_poll_and_says_why(accountant_client):
    started = reconciliation.start("march.csv", march_statement(), SYSTEM, enqueue=False)
    started.statement = "not a statement any more"
    db.session.commit()
    reconciliation.run(started.id)
    url = f"{BASE}/reconciliation/progress?reconciliation_id={started.id}"
    response = accountant_client.get(url, headers=HX)
    assert (
        response.status_code == 286 and "The reconciliation failed: No column row" in response.text
    )
    items = accountant_client.get(
        f"{BASE}/reconciliation/items?reconciliation_id={started.id}&category=matched", headers=HX
    )
    assert items.status_code == 409


def test_a_bad_upload_is_a_422_naming_the_problem(accountant_client):
    bad = march_statement().replace("1,500.00", "1,5OO.00")
    partial = upload(accountant_client, bad, headers=HX)
    assert partial.status_code == 422 and not is_page(partial)
    assert 'id="upload-form"' in partial.text and "Line 8: Paid In is not an amount" in partial.text
    page = upload(accountant_client, "name,phone\nWanjiku,0712\n")
    assert page.status_code == 422 and is_page(page) and "No column row" in page.text
    workbook = upload(accountant_client, b"PK\x03\x04xlsx", name="march.xlsx", headers=HX)
    assert workbook.status_code == 422 and "Excel workbook" in workbook.text
    nothing = accountant_client.post(f"{BASE}/reconciliation", data={}, headers=HX)
    assert nothing.status_code == 422 and "Choose the statement" in nothing.text
    assert db.session.scalar(select(func.count(MpesaReconciliation.id))) == 0


def test_items_by_category_with_htmx_paging(accountant_client):
    run = finished_run(unmatched=55)
    url = f"{BASE}/reconciliation/items?reconciliation_id={run.id}&category=not_in_system"
    first = accountant_client.get(url, headers=HX)
    assert first.status_code == 200 and not is_page(first)
    assert first.text.count('<tr id="item-') == 50 and "Next →" in first.text
    assert "HX-Request" in first.headers["Vary"]
    second = accountant_client.get(url + "&page=2", headers=HX)
    assert second.text.count('<tr id="item-') == 5 and "← Previous" in second.text
    matched = accountant_client.get(
        f"{BASE}/reconciliation/items?reconciliation_id={run.id}&category=matched"
    )
    assert matched.status_code == 200 and is_page(matched) and "RCA0000001" in matched.text
    unknown = accountant_client.get(
        f"{BASE}/reconciliation/items?reconciliation_id={run.id}&category=lost", headers=HX
    )
    assert unknown.status_code == 404
    missing = accountant_client.get(f"{BASE}/reconciliation/report?reconciliation_id=999999")
    assert missing.status_code == 404


def test_csv_download(accountant_client):
    run = finished_run()
    response = accountant_client.get(f"{BASE}/reconciliation/export?reconciliation_id={run.id}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert f"mpesa-reconciliation-{run.id}.csv" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["category"], r["receipt"]) for r in rows] == [
        ("not_in_system", "RCN0000000"),
        ("charge", "RCC0000001"),
        ("matched", "RCA0000001"),
    ]
    queued = reconciliation.start("april.csv", march_statement(), SYSTEM, enqueue=False)
    refused = accountant_client.get(f"{BASE}/reconciliation/export?reconciliation_id={queued.id}")
    assert refused.status_code == 409


def test_send_to_suspense_button(accountant_client):
    run = finished_run()
    report = accountant_client.get(f"{BASE}/reconciliation/report?reconciliation_id={run.id}")
    item_id = re.search(r'name="item_id" value="(\d+)"', report.text).group(1)
    assert "Send to suspense" in report.text
    url = f"{BASE}/reconciliation/suspense?category=not_in_system&page=1"
    sent = accountant_client.post(url, data={"item_id": item_id}, headers=HX)
    assert sent.status_code == 200 and not is_page(sent)
    held = db.session.scalars(select(SuspenseItem)).one()
    assert f"In suspense (item {held.id})" in sent.text and "Send to suspense" not in sent.text
    assert "is in the suspense queue" in sent.text  # the flash, out of band
    again = accountant_client.post(url, data={"item_id": item_id}, headers=HX)
    assert again.status_code == 200
    assert db.session.scalar(select(func.count(SuspenseItem.id))) == 1


ROUTES = [
    ("GET", "/reconciliation"),
    ("POST", "/reconciliation"),
    ("GET", "/reconciliation/report?reconciliation_id={id}"),
    ("GET", "/reconciliation/progress?reconciliation_id={id}"),
    ("GET", "/reconciliation/items?reconciliation_id={id}&category=matched"),
    ("GET", "/reconciliation/export?reconciliation_id={id}"),
    ("POST", "/reconciliation/suspense"),
]


@pytest.mark.parametrize("role", [Role.LOAN_OFFICER, Role.VIEWER])
def test_officers_and_viewers_are_refused(login, role):
    run = finished_run()
    browser = login(role)
    for method, path in ROUTES:
        response = browser.open(BASE + path.format(id=run.id), method=method, headers=HX)
        assert response.status_code == 403, (method, path)


def test_admin_may_reconcile(admin_client):
    run = finished_run()
    response = admin_client.get(f"{BASE}/reconciliation/report?reconciliation_id={run.id}")
    assert response.status_code == 200 and "RCN0000000" in response.text
