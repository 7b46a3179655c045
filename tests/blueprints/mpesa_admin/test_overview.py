"""Integrations > M-Pesa landing page: environment, what each use still lacks, the last callback,
how many transactions wait in each status, the last known balance and links; full and partial."""

import pytest

from app.models import CallbackKind, MpesaStatus, Role
from app.services.mpesa import callbacks
from tests.blueprints.mpesa_admin.conftest import HX, is_page, mark_sent
from tests.integrations.samples import sample_text

URL = "/integrations/mpesa/"


@pytest.mark.parametrize("role", list(Role))
def test_every_role_sees_the_overview(login, role):
    page = login(role).get(URL)
    assert page.status_code == 200 and is_page(page)
    assert 'id="mpesa-overview"' in page.text and 'aria-label="M-Pesa sections"' in page.text
    assert "/integrations/mpesa/transactions" in page.text


def test_unconfigured(viewer_client):
    page = viewer_client.get(URL)
    assert "sandbox" in page.text and "https://sandbox.safaricom.co.ke" in page.text
    assert "STK Push (payments in): not configured" in page.text
    assert "missing consumer key, consumer secret, shortcode, passkey, public base URL" in page.text
    assert "security credential (or initiator password and certificate)" in page.text
    assert "Last callback from Safaricom" in page.text and "none yet" in page.text
    assert "No balance known yet." in page.text
    assert "An administrator changes the settings." in page.text


def test_configured_with_waiting_transactions_and_a_balance(
    admin_client, save_settings, stk_request
):
    save_settings(
        consumer_key="key-0001", consumer_secret="secret-0001", shortcode="174379",
        passkey="pk-1", public_base_url="https://daystar.example.co.ke",
    )  # fmt: skip
    stk_request("100")
    sent = stk_request("200")
    mark_sent(sent, "ws_CO_0100")
    callbacks.receive(
        CallbackKind.BALANCE_RESULT,
        sample_text("account_balance_result.json").encode(),
        {"Content-Type": "application/json"},
        "196.201.214.200",
    )
    callbacks.process(1)

    partial = admin_client.get(URL, headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<section id="mpesa-overview"')
    assert "STK Push (payments in): configured." in partial.text
    assert "Paybill (C2B): configured." in partial.text
    assert "B2C (loan disbursements): not configured" in partial.text
    for status, count in ((MpesaStatus.QUEUED, 1), (MpesaStatus.PENDING, 1), (MpesaStatus.HELD, 0)):
        card = partial.text.split(f'id="count-{status}"')[1].split("</article>")[0]
        assert f">{count}</a>" in card
    assert "none yet" not in partial.text  # the balance callback's time
    assert "Working Account" in partial.text and "228,037.00" in partial.text
    assert 'href="/integrations/mpesa/settings"' in partial.text
