"""How the sandbox decides what happens to a request (documented in sandbox/README.md).

Order, first match wins:
1. facts: a B2C with a wrong initiator -> 2001; more than the utility balance -> 1; an STK paybill
   push whose PartyB is not the shortcode -> 2028;
2. a forced outcome set on the control API (`stk_outcome`, `b2c_outcome`);
3. manual mode (STK only): the prompt waits on the virtual phone page;
4. a reserved test number 2547990XXXXX (table below);
5. success.
"""

from dataclasses import dataclass

# name -> (ResultCode, ResultDesc) as Daraja sends them (mpesa.md §2.4, §4.3; samples).
STK_RESULTS: dict[str, tuple[int, str]] = {
    "success": (0, "The service request is processed successfully."),
    "insufficient_funds": (1, "The balance is insufficient for the transaction."),
    "cancelled": (1032, "Request cancelled by user"),
    "wrong_pin": (2001, "The initiator information is invalid."),
    "ds_timeout": (1037, "DS timeout user cannot be reached"),
    "smsc_ack_timeout": (1036, "[STK_CB - ]SMSC ACK timeout."),
    "not_permitted": (2028, "The request is not permitted according to product assignment."),
}
B2C_RESULTS: dict[str, tuple[int | str, str]] = {
    "success": (0, "The service request is processed successfully."),
    "insufficient_funds": (1, "The balance is insufficient for the transaction."),
    "initiator_invalid": (2001, "The initiator information is invalid."),
    "msisdn_invalid": ("SFC_IC0003", "The operator does not exist."),
}
# What becomes of the callback, beside the result.
STK_DELIVERY = {"lost": "success", "no_answer": None}  # outcome -> true result
B2C_DELIVERY = {"timeout": "success", "timeout_failed": "insufficient_funds", "lost": "success"}

STK_OUTCOMES = (*STK_RESULTS, *STK_DELIVERY)
B2C_OUTCOMES = (*B2C_RESULTS, *B2C_DELIVERY)
PHONE_ACTIONS = {  # buttons on the virtual phone page
    "pay": "success",
    "cancel": "cancelled",
    "wrong_pin": "wrong_pin",
    "insufficient_funds": "insufficient_funds",
    "timeout": "ds_timeout",
}

# Reserved test numbers: the last four digits name the outcome (the prefix 0799 00 is not used
# by the demo data or the test factories, so ordinary phones always succeed).
STK_TEST_PHONES = {
    "254799000001": "insufficient_funds",
    "254799001032": "cancelled",
    "254799002001": "wrong_pin",
    "254799001037": "ds_timeout",
    "254799001036": "smsc_ack_timeout",
    "254799002028": "not_permitted",
    "254799009998": "no_answer",
    "254799009999": "lost",
}
B2C_TEST_PHONES = {
    "254799000001": "insufficient_funds",
    "254799002001": "initiator_invalid",
    "254799000003": "msisdn_invalid",
    "254799009001": "timeout",
    "254799009002": "timeout_failed",
    "254799009999": "lost",
}


@dataclass(frozen=True)
class Plan:
    """The outcome of one request: its result name (None = waits for the phone page) and what
    happens to its callback: "send", "lost" or "timeout" (B2C queue time-out)."""

    result: str | None
    callback: str = "send"
    rule: str = ""  # which rule chose it, shown in the transaction list


def _plan(outcome: str, delivery: dict, rule: str) -> Plan:
    if outcome == "no_answer":
        return Plan(None, "send", rule)
    if outcome in delivery:
        return Plan(delivery[outcome], "lost" if outcome == "lost" else "timeout", rule)
    return Plan(outcome, "send", rule)


def plan_stk(phone: str, *, forced: str | None, manual: bool, fact: str | None = None) -> Plan:
    if fact:
        return Plan(fact, "send", "fact")
    if forced:
        return _plan(forced, STK_DELIVERY, "forced")
    if manual:
        return Plan(None, "send", "manual")
    if phone in STK_TEST_PHONES:
        return _plan(STK_TEST_PHONES[phone], STK_DELIVERY, "test phone")
    return Plan("success", "send", "default")


def plan_b2c(phone: str, *, forced: str | None, fact: str | None = None) -> Plan:
    """B2C facts are checked again at completion (balance); this is the plan at request time."""
    if fact:
        return Plan(fact, "send", "fact")
    if forced:
        return _plan(forced, B2C_DELIVERY, "forced")
    if phone in B2C_TEST_PHONES:
        return _plan(B2C_TEST_PHONES[phone], B2C_DELIVERY, "test phone")
    return Plan("success", "send", "default")
