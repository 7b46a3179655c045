"""The /webhooks endpoints: register (secret shown once), list, show, delete, rotate, test event,
deliveries and redelivery; every refusal as application/problem+json; manage_webhooks required."""

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from app.extensions import db
from app.models import (
    AuditLog,
    DeliveryStatus,
    IntegrationLogEntry,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.services import webhook_deliveries as deliveries
from app.services import webhooks
from tests.factories import SYSTEM
from tests.webhook_receiver import Receiver

BASE = "/api/accounting/v1"
PROBLEM = "application/problem+json"


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


@pytest.fixture
def headers(auth_headers):
    return auth_headers(["manage_webhooks"])


def create(client, headers, url="http://127.0.0.1:9/hooks", events=("member.created",), **extra):
    return client.post(
        f"{BASE}/webhooks", json={"url": url, "events": list(events), **extra}, headers=headers
    )


def assert_problem(response, status: int, *fields):
    assert response.status_code == status, response.text
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status and body["title"] and body["type"].startswith("https://")
    for field in fields:
        assert field in body["errors"], body
    return body


def test_register_answers_201_with_the_secret_once(client, headers):
    response = create(
        client, headers, events=["loan.approved", "member.created"], description="Xero sync"
    )
    assert response.status_code == 201, response.text
    body = response.get_json()
    assert body["secret"].startswith("whsec_")
    assert body["url"] == "http://127.0.0.1:9/hooks" and body["description"] == "Xero sync"
    assert body["events"] == ["loan.approved", "member.created"]
    assert body["status"] == "active" and body["previous_secret_expires_at"] is None
    shown = client.get(f"{BASE}/webhooks/{body['id']}", headers=headers)
    assert shown.status_code == 200
    assert "secret" not in shown.get_json() and body["secret"] not in shown.text
    listed = client.get(f"{BASE}/webhooks", headers=headers)
    assert body["secret"] not in listed.text
    endpoint = db.session.get(WebhookEndpoint, body["id"])
    assert endpoint.api_key_id is not None
    assert body["secret"] not in endpoint.secret_encrypted


def test_list_has_the_previous_systems_shape_and_every_key_sees_every_endpoint(
    client, headers, auth_headers
):
    for n in range(3):
        create(client, headers, url=f"http://127.0.0.1:9/hooks/{n}")
    other_key = auth_headers(["manage_webhooks", "read_loans"])
    response = client.get(f"{BASE}/webhooks?per_page=2&page=2", headers=other_key)
    assert response.status_code == 200
    body = response.get_json()
    assert [w["url"] for w in body["webhooks"]] == ["http://127.0.0.1:9/hooks/2"]
    assert body["pagination"] == {"page": 2, "per_page": 2, "total_items": 3, "total_pages": 2}
    assert 'rel="prev"' in response.headers["Link"]
    first = body["webhooks"][0]["id"]
    assert client.delete(f"{BASE}/webhooks/{first}", headers=other_key).status_code == 204


def test_the_compatibility_path_serves_the_same_endpoints(client, headers):
    response = client.post(
        "/wp-json/daystar-accounting/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hooks", "events": ["repayment.received"]},
        headers=headers,
    )
    assert response.status_code == 201
    listed = client.get("/wp-json/daystar-accounting/v1/webhooks", headers=headers).get_json()
    assert [w["id"] for w in listed["webhooks"]] == [response.get_json()["id"]]


def test_unknown_events_are_a_422_naming_them(client, headers):
    response = create(client, headers, events=["member.created", "loan.exploded", "x.y"])
    body = assert_problem(response, 422, "events")
    assert "loan.exploded" in body["errors"]["events"] and "x.y" in body["errors"]["events"]
    assert db.session.query(WebhookEndpoint).count() == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"events": ["member.created"]}, "url"),
        ({"url": "http://127.0.0.1:9/"}, "events"),
        ({"url": "http://127.0.0.1:9/", "events": []}, "events"),
        ({"url": "http://127.0.0.1:9/", "events": "member.created"}, "events"),
        ({"url": "http://127.0.0.1:9/", "events": [7]}, "events.0"),
        ({"url": 42, "events": ["member.created"]}, "url"),
        ({"url": "", "events": ["member.created"]}, "url"),
        ({"url": "h" * 2001, "events": ["member.created"]}, "url"),
        ({"url": "ftp://127.0.0.1/", "events": ["member.created"]}, "url"),
        (
            {"url": "http://127.0.0.1:9/", "events": ["member.created"], "description": "d" * 301},
            "description",
        ),
        ({"url": "http://127.0.0.1:9/", "events": ["member.created"], "secret": "mine"}, "secret"),
    ],
)
def test_invalid_bodies_are_a_422_naming_the_field(client, headers, payload, field):
    response = client.post(f"{BASE}/webhooks", json=payload, headers=headers)
    assert_problem(response, 422, field)


def test_a_body_that_is_not_a_json_object_is_a_400(client, headers):
    for data, content_type in (("not json", "application/json"), ("[1]", "application/json")):
        response = client.post(
            f"{BASE}/webhooks", data=data, content_type=content_type, headers=headers
        )
        assert_problem(response, 400)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hooks",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "https://127.0.0.1/hooks",
        "https://10.0.0.1/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/",
        "https://localhost/",
    ],
)
def test_private_urls_are_a_422_when_not_allowed(client, headers, app, monkeypatch, url):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", False)
    body = assert_problem(create(client, headers, url=url), 422, "url")
    assert "refused" in body["errors"]["url"]


def test_unknown_ids_are_404_problems(client, headers):
    for method, path in (
        ("get", "/webhooks/999"),
        ("delete", "/webhooks/999"),
        ("post", "/webhooks/999/test"),
        ("post", "/webhooks/999/rotate-secret"),
        ("get", "/webhooks/999/deliveries"),
        ("post", "/webhooks/999/deliveries/1/redeliver"),
        ("get", "/webhooks/0"),
        ("get", "/webhooks/99999999999"),
        ("delete", "/webhooks/99999999999"),
        ("post", "/webhooks/99999999999/test"),
        ("post", "/webhooks/1/deliveries/99999999999/redeliver"),
        ("delete", "/webhooks/-1"),
        ("get", "/webhooks/abc"),
    ):
        assert_problem(getattr(client, method)(f"{BASE}{path}", headers=headers), 404)


def test_delete_answers_204_and_the_endpoint_is_gone(client, headers):
    webhook_id = create(client, headers).get_json()["id"]
    response = client.delete(f"{BASE}/webhooks/{webhook_id}", headers=headers)
    assert response.status_code == 204 and response.data == b""
    assert_problem(client.get(f"{BASE}/webhooks/{webhook_id}", headers=headers), 404)
    assert (
        db.session.scalars(select(AuditLog).where(AuditLog.action == "webhook_endpoint.deleted"))
        .one()
        .actor_type
        == "api_key"
    )


def test_a_key_without_manage_webhooks_gets_403_naming_it(client, auth_headers):
    reader = auth_headers(["read_loans", "read_members"])
    endpoint, _ = webhooks.register_endpoint("http://127.0.0.1:9/", ["member.created"], SYSTEM)
    for method, path in (
        ("post", "/webhooks"),
        ("get", "/webhooks"),
        ("get", f"/webhooks/{endpoint.id}"),
        ("delete", f"/webhooks/{endpoint.id}"),
        ("post", f"/webhooks/{endpoint.id}/test"),
        ("post", f"/webhooks/{endpoint.id}/rotate-secret"),
        ("get", f"/webhooks/{endpoint.id}/deliveries"),
        ("post", f"/webhooks/{endpoint.id}/deliveries/1/redeliver"),
    ):
        response = getattr(client, method)(f"{BASE}{path}", headers=reader, json={})
        body = assert_problem(response, 403)
        assert "manage_webhooks" in body["detail"]
        unauthenticated = getattr(client, method)(f"{BASE}{path}", json={})
        assert_problem(unauthenticated, 401)
        assert unauthenticated.headers["WWW-Authenticate"].startswith("Bearer")
    assert db.session.get(WebhookEndpoint, endpoint.id) is not None


def test_send_a_test_event_202_then_see_it_in_the_deliveries(client, headers, receiver, run_jobs):
    created = create(client, headers, url=receiver.url).get_json()
    response = client.post(f"{BASE}/webhooks/{created['id']}/test", headers=headers)
    assert response.status_code == 202
    queued = response.get_json()
    assert queued["status"] == "pending" and queued["message_id"].startswith("evt_test_")
    run_jobs()
    [received] = receiver.received
    message = Webhook(created["secret"]).verify(received.body, received.headers)
    assert message["type"] == "webhook.test" and message["id"] == queued["message_id"]

    listed = client.get(f"{BASE}/webhooks/{created['id']}/deliveries", headers=headers)
    assert listed.status_code == 200
    body = listed.get_json()
    assert body["pagination"]["total_items"] == 1
    [delivery] = body["deliveries"]
    assert delivery["id"] == queued["delivery_id"] and delivery["status"] == "succeeded"
    assert delivery["event_id"] is None and delivery["event_type"] == "webhook.test"
    [attempt] = delivery["attempts"]
    assert attempt["number"] == 1 and attempt["status_code"] == 204 and attempt["error"] is None
    filtered = client.get(
        f"{BASE}/webhooks/{created['id']}/deliveries?status=failed", headers=headers
    ).get_json()
    assert filtered["deliveries"] == []


def test_deliveries_query_errors_are_400_problems(client, headers):
    webhook_id = create(client, headers).get_json()["id"]
    for query in ("status=lost", "per_page=1000", "page=0", "colour=red"):
        response = client.get(f"{BASE}/webhooks/{webhook_id}/deliveries?{query}", headers=headers)
        assert_problem(response, 400)


def test_a_test_event_to_a_disabled_endpoint_is_a_409(client, headers):
    webhook_id = create(client, headers).get_json()["id"]
    webhooks.disable_endpoint(webhook_id, SYSTEM)
    assert_problem(client.post(f"{BASE}/webhooks/{webhook_id}/test", headers=headers), 409)


def test_redeliver_via_the_api(client, headers, receiver, run_jobs, app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_RETRY_DELAYS_SECONDS", ())
    receiver.status = 500
    webhook_id = create(client, headers, url=receiver.url).get_json()["id"]
    delivery_id = client.post(f"{BASE}/webhooks/{webhook_id}/test", headers=headers).get_json()[
        "delivery_id"
    ]
    path = f"{BASE}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"
    assert_problem(client.post(path, headers=headers), 409)  # still being attempted
    run_jobs()
    assert db.session.get(WebhookDelivery, delivery_id).status == DeliveryStatus.FAILED
    logged = db.session.scalars(
        select(IntegrationLogEntry).where(IntegrationLogEntry.webhook_delivery_id == delivery_id)
    ).one()
    assert (logged.event, logged.level, logged.error_kind) == (
        "webhook.delivery_failed",
        "error",
        "HTTP 500",
    )

    receiver.status = 200
    response = client.post(path, headers=headers)
    assert response.status_code == 202 and response.get_json()["delivery_id"] == delivery_id
    run_jobs()
    db.session.expire_all()
    assert db.session.get(WebhookDelivery, delivery_id).status == DeliveryStatus.SUCCEEDED
    assert len(receiver.received) == 2

    other_id = create(client, headers).get_json()["id"]
    wrong = f"{BASE}/webhooks/{other_id}/deliveries/{delivery_id}/redeliver"
    assert_problem(client.post(wrong, headers=headers), 404)


def test_rotate_secret_shows_the_new_secret_once(client, headers, receiver, run_jobs):
    created = create(client, headers, url=receiver.url).get_json()
    response = client.post(f"{BASE}/webhooks/{created['id']}/rotate-secret", headers=headers)
    assert response.status_code == 200
    rotated = response.get_json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert rotated["previous_secret_expires_at"] is not None
    shown = client.get(f"{BASE}/webhooks/{created['id']}", headers=headers)
    assert rotated["secret"] not in shown.text
    delivery = deliveries.send_test_event(created["id"], SYSTEM)
    from app.jobs.webhooks import schedule_delivery

    schedule_delivery(delivery.id, delivery.next_attempt_at)
    run_jobs()
    [received] = receiver.received
    for secret in (created["secret"], rotated["secret"]):
        assert Webhook(secret).verify(received.body, received.headers)["type"] == "webhook.test"


def test_the_openapi_document_describes_the_webhook_operations(client):
    spec = client.get(f"{BASE}/openapi.json").get_json()
    paths = spec["paths"]
    assert set(paths["/webhooks"]) == {"get", "post"}
    assert set(paths["/webhooks/{webhook_id}"]) == {"get", "delete"}
    for path in ("test", "rotate-secret", "deliveries/{delivery_id}/redeliver"):
        assert "post" in paths[f"/webhooks/{{webhook_id}}/{path}"]
    assert "get" in paths["/webhooks/{webhook_id}/deliveries"]
    create_op = paths["/webhooks"]["post"]
    assert {"201", "401", "403", "422"} <= set(create_op["responses"])
    assert "webhook-signature" in create_op["description"]
    events = spec["components"]["schemas"]["WebhookCreate"]["properties"]["events"]
    assert "loan.defaulted" in events["items"]["enum"]


def test_nul_characters_are_422_naming_the_field(client, auth_headers):
    headers = auth_headers(["manage_webhooks"])
    body = {
        "url": "https://hooks.example.co.ke/x",
        "events": ["loan.created"],
        "description": "\x00",
    }
    response = client.post("/api/accounting/v1/webhooks", json=body, headers=headers)
    assert response.status_code == 422
    assert "description" in response.json["errors"]
    body = {**body, "description": "ok", "url": "https://hooks.example\x00.co.ke/x"}
    response = client.post("/api/accounting/v1/webhooks", json=body, headers=headers)
    assert response.status_code == 422
    assert "url" in response.json["errors"]
