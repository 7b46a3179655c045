"""The official Daraja payload samples (tests/data/mpesa, copied from ../shared/reference/mpesa/samples)."""

import json
from decimal import Decimal
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "mpesa"  # copied from ../shared/reference


def sample_names(pattern: str = "*.json") -> list[str]:
    names = sorted(path.name for path in SAMPLES.glob(pattern))
    assert names, f"no samples match {pattern} in {SAMPLES}"
    return names


def sample_text(name: str) -> str:
    return (SAMPLES / name).read_text()


def sample(name: str, decimal_floats: bool = False):
    """A sample parsed as the callback routes may parse it: floats as float or as Decimal."""
    return json.loads(sample_text(name), parse_float=Decimal if decimal_floats else None)


# Every sample belongs to exactly one group, so that a new sample cannot go untested.
RESULTS = [
    "account_balance_result.json",
    "b2c_result_failure.json",
    "b2c_result_success.json",
    "b2c_result_success_legacy.json",
    "b2c_timeout.json",
    "reversal_result_failure.json",
    "reversal_result_success.json",
    "transaction_status_result.json",
]
C2B_BODIES = [
    "c2b_confirmation.json",
    "c2b_confirmation_hashed_msisdn.json",
    "c2b_confirmation_legacy_unmasked.json",
    "c2b_validation.json",
]
# Requests the client builds: it must send the same keys (test_daraja_client.py).
CLIENT_REQUESTS = [
    "account_balance_request.json",
    "b2c_request.json",
    "c2b_register_url_v1_request.json",
    "c2b_register_url_v2_request.json",
    "c2b_simulate_request.json",
    "stk_push_request.json",
    "stk_query_request.json",
    "transaction_status_request.json",
]
# Answers the client reads, replayed over HTTP (test_daraja_client.py).
CLIENT_ANSWERS = [
    "account_balance_response.json",
    "b2c_error_duplicate_originator_conversation_id.json",
    "b2c_response.json",
    "c2b_register_url_response.json",
    "c2b_register_url_v1_response.json",
    "c2b_simulate_response.json",
    "error_invalid_access_token.json",
    "error_no_apiproduct_match.json",
    "error_response.json",
    "oauth_response.json",
    "oauth_response_expires_in_string.json",
    "stk_push_response.json",
    "stk_query_processing_error.json",
    "stk_query_response.json",
    "stk_query_response_cancelled.json",
    "transaction_status_response.json",
]
# Not this client's: what our callback routes answer, reconciliation's statement and Pull
# Transactions, and Reversal (no client call yet).
ELSEWHERE = [
    "c2b_validation_accept_response.json",
    "c2b_validation_reject_response.json",
    "org_statement_header.csv",
    "pull_transactions_query_request.json",
    "pull_transactions_query_response.json",
    "pull_transactions_register_request.json",
    "pull_transactions_register_response.json",
    "reversal_error_response.json",
    "reversal_request.json",
    "reversal_response.json",
]
