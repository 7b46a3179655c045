"""The CSV export of the filtered log: the same filters, newest first, Nairobi times, the context
as JSON, streamed in batches up to a cap, and no cell a spreadsheet would run as a formula."""

import csv
import io
import json
from datetime import timedelta

from app.services import log_browser
from tests.blueprints.logs.conftest import NOW, add_entry

URL = "/integrations/logs/export.csv"


def rows_of(response) -> list[dict]:
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_export_has_the_filtered_entries_newest_first(viewer_client):
    older = add_entry(level="error", error_kind="ProviderFault", integration="notifications",
                      event="notify.failed", message="Twilio refused: 21211.",
                      notification_id=5, member_id=9, request_id="req-1",
                      context={"provider": "twilio", "amount": "10.00"},
                      created_at=NOW - timedelta(hours=1))  # fmt: skip
    newer = add_entry(level="error", message="Held.", mpesa_transaction_id=3, job_id="job-7")
    add_entry(level="info", message="Fine.")
    response = viewer_client.get(URL, query_string={"level": "error"})
    assert response.headers["Content-Disposition"] == 'attachment; filename="integration-log.csv"'
    rows = rows_of(response)
    assert [int(r["id"]) for r in rows] == [newer.id, older.id]
    first, second = rows
    assert first["created_at"] == "2026-03-10T12:00:00+03:00"  # Nairobi time
    assert (first["mpesa_transaction_id"], first["job_id"]) == ("3", "job-7")
    assert second == {
        "id": str(older.id),
        "created_at": "2026-03-10T11:00:00+03:00",
        "integration": "notifications",
        "level": "error",
        "event": "notify.failed",
        "message": "Twilio refused: 21211.",
        "error_kind": "ProviderFault",
        "request_id": "req-1",
        "job_id": "",
        "mpesa_transaction_id": "",
        "notification_id": "5",
        "webhook_delivery_id": "",
        "api_key_id": "",
        "member_id": "9",
        "context": json.dumps({"amount": "10.00", "provider": "twilio"}),
    }


def test_cells_that_would_be_formulas_are_quoted(viewer_client):
    attacks = ["=HYPERLINK(\"http://evil\",\"x\")", "+254712345678", "-2+3", "@SUM(A1)",
               "\t=1", "plain"]  # fmt: skip
    for n, text in enumerate(attacks):
        add_entry(message=text, event="mpesa.x", error_kind=text if n == 0 else None,
                  created_at=NOW - timedelta(minutes=n))  # fmt: skip
    rows = rows_of(viewer_client.get(URL))
    messages = [r["message"] for r in rows]
    assert messages == ["'=HYPERLINK(\"http://evil\",\"x\")", "'+254712345678", "'-2+3",
                        "'@SUM(A1)", "'\t=1", "plain"]  # fmt: skip
    assert rows[0]["error_kind"] == '\'=HYPERLINK("http://evil","x")'
    for row in rows:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row.values())


def test_export_reads_in_batches_and_stops_at_the_cap(viewer_client, monkeypatch):
    for n in range(7):
        add_entry(created_at=NOW - timedelta(seconds=n // 2), message=f"entry {n}")
    monkeypatch.setattr(log_browser, "EXPORT_BATCH", 2)
    assert len(rows_of(viewer_client.get(URL))) == 7  # four batches, through the ties
    ids = [int(r["id"]) for r in rows_of(viewer_client.get(URL))]
    assert len(set(ids)) == 7
    monkeypatch.setattr(log_browser, "EXPORT_LIMIT", 5)
    assert len(rows_of(viewer_client.get(URL))) == 5


def test_an_empty_export_has_the_header_only(viewer_client):
    response = viewer_client.get(URL, query_string={"integration": "webhooks"})
    assert response.get_data(as_text=True).startswith("id,created_at,integration,level,event")
    assert rows_of(response) == []


def test_bad_filters_give_no_file(viewer_client):
    response = viewer_client.get(URL, query_string={"date_from": "tomorrow"})
    assert response.status_code == 422
    assert "text/html" in response.content_type
    assert "Enter a date as YYYY-MM-DD." in response.text
