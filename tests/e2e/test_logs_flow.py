"""Integrations > Logs in headless Chromium: an administrator filters the integration log, pages
to older entries, opens an entry (its context shown as text, its M-Pesa transaction linked),
finds the failed job that wrote another entry, and retries it after confirming; the job then
runs in a real RQ worker."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import expect
from rq.job import JobStatus

from app.blueprints.logs import browser
from app.extensions import db
from app.jobs import enqueue, redis_client
from app.models import IntegrationLogEntry, MpesaStatus, MpesaTransaction, MpesaType, Role
from app.models.base import utcnow
from tests.e2e.test_portal_flow import SCREENSHOTS, sign_in

pytestmark = pytest.mark.e2e
FLAG = "test:e2e-logs:flag"


def send_statement(member_id: int) -> None:
    """Fails until the test sets FLAG, as a job whose provider was down would."""
    if not redis_client().get(FLAG):
        raise ConnectionError(f"statement for member {member_id}: provider unreachable")


def entry(**fields) -> IntegrationLogEntry:
    row = IntegrationLogEntry(**{"integration": "mpesa", "level": "info", "context": {}, **fields})
    db.session.add(row)
    return row


def test_admin_filters_the_log_opens_an_entry_and_retries_a_failed_job(
    page, staff_user, run_jobs, redis_conn, monkeypatch
):
    monkeypatch.setattr(browser, "PER_PAGE", 5)
    admin = staff_user(Role.ADMIN)
    job = enqueue(send_statement, 42, queue="low", retry=None)
    run_jobs()
    assert job.get_status(refresh=True) == JobStatus.FAILED
    txn = MpesaTransaction(
        transaction_type=MpesaType.STK_PUSH, status=MpesaStatus.COMPLETED, environment="sandbox",
        mpesa_receipt_number="NLJ7RT61SV", amount=Decimal("1500.00"), phone_number="254708374149",
    )  # fmt: skip
    db.session.add(txn)
    db.session.flush()
    now = utcnow()
    for n in range(8):
        entry(event="mpesa.payment_received", message=f"Payment {n} received.",
              created_at=now - timedelta(minutes=30 + n))  # fmt: skip
    held = entry(level="error", event="mpesa.callback_held", error_kind="mpesa.callback_held",
                 message="STK callback held: amount differs.", mpesa_transaction_id=txn.id,
                 request_id="req-e2e-1", created_at=now - timedelta(minutes=5),
                 context={"expected": "1500.00", "note": "<img src=x onerror=alert(1)>"})  # fmt: skip
    entry(request_id="req-e2e-1", event="mpesa.callback_received", message="Callback stored.",
          created_at=now - timedelta(minutes=6))  # fmt: skip
    entry(integration="notifications", level="error", event="job.failed", error_kind="ConnectionError",
          message="send_statement(42) raised ConnectionError", job_id=job.id,
          context={"queue": "low", "job": job.id}, created_at=now - timedelta(minutes=1))  # fmt: skip
    db.session.commit()

    sign_in(page, admin.email)
    page.click("nav >> text=Integrations")
    page.click("nav >> text=Logs")
    rows = page.locator("#log-entries tbody tr")
    expect(rows).to_have_count(5)
    expect(page.locator("#log-entries")).to_contain_text("11 entries")
    page.get_by_role("link", name="Older →").click()  # pages by key, through htmx
    expect(page).to_have_url(re.compile(r"before="))
    expect(rows).to_have_count(5)
    expect(page.get_by_role("link", name="← Newer")).to_be_visible()

    page.select_option("#integration", "mpesa")  # the filter form reloads the list on change
    page.select_option("#level", "error")
    expect(page.locator("#log-entries")).to_contain_text("1 entry match these filters")
    expect(rows).to_have_count(1)
    assert "level=error" in page.url and "before=" not in page.url
    page.screenshot(path=str(SCREENSHOTS / "logs-filtered.png"), full_page=True)

    rows.first.get_by_role("link").click()
    expect(page.locator("#log-entry h2")).to_contain_text(f"Entry #{held.id}")
    expect(page.locator("pre.log-context")).to_contain_text(
        '"note": "<img src=x onerror=alert(1)>"'
    )
    expect(page.locator(".log-neighbours")).to_contain_text("Callback stored.")
    transaction = page.get_by_role("link", name=f"#{txn.id} · NLJ7RT61SV")
    expect(transaction).to_have_attribute(
        "href", f"/integrations/mpesa/transactions/detail?transaction_id={txn.id}"
    )
    page.screenshot(path=str(SCREENSHOTS / "logs-entry.png"), full_page=True)

    page.locator("nav.tabs").get_by_role("link", name="Errors").click()
    expect(page.locator("#log-errors h2")).to_have_text("2 errors in the last 24 hours")
    page.screenshot(path=str(SCREENSHOTS / "logs-errors.png"), full_page=True)
    page.get_by_role("link", name="ConnectionError").click()
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link").click()
    page.get_by_role("link", name="open the failed job").click()
    expect(page.locator("#failed-job")).to_contain_text("provider unreachable")

    dialogs = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)  # the hx-confirm question
    page.locator("#failed-job").get_by_role("button", name="Retry").click()
    expect(page.locator("#flash")).to_contain_text(f"Job {job.id}")
    expect(page.locator("#failed-low")).to_contain_text("No failed jobs.")
    assert len(dialogs) == 1 and "send_statement" in dialogs[0]
    page.screenshot(path=str(SCREENSHOTS / "logs-job-retried.png"), full_page=True)

    redis_conn.set(FLAG, "1")
    run_jobs()
    assert job.get_status(refresh=True) == JobStatus.FINISHED
