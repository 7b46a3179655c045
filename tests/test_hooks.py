"""The hook registry: plugins register by module path and may rewrite messages or extend loans."""

import sys
import types

from app.hooks import (
    extend_api_loan_data,
    filter_notification_message,
    hookimpl,
    make_plugin_manager,
)


def _plugin_module(name: str, **functions) -> str:
    module = types.ModuleType(name)
    for fn_name, fn in functions.items():
        setattr(module, fn_name, hookimpl(fn))
    sys.modules[name] = module
    return name


def test_plugins_named_in_config_are_registered():
    name = _plugin_module(
        "daystar_test_plugin_a", daystar_event=lambda event_id, event_type, sequence, payload: None
    )
    manager = make_plugin_manager([name])
    assert manager.is_registered(sys.modules[name])


def test_notification_message_filters_apply_in_registration_order(app):
    first = _plugin_module(
        "daystar_test_plugin_b",
        daystar_notification_message=lambda message, type, data: message + " Asante.",
    )
    second = _plugin_module(
        "daystar_test_plugin_c",
        daystar_notification_message=lambda message, type, data: (
            message.upper() if type == "loan_approved" else None
        ),
    )
    manager = app.extensions["daystar_hooks"]
    manager.register(sys.modules[first])
    manager.register(sys.modules[second])
    try:
        assert (
            filter_notification_message("Loan approved.", "loan_approved", {})
            == "LOAN APPROVED. ASANTE."
        )
        assert filter_notification_message("Paid.", "repayment", {}) == "Paid. Asante."
    finally:
        manager.unregister(sys.modules[first])
        manager.unregister(sys.modules[second])


def test_api_loan_data_gains_fields_but_keeps_its_own(app):
    name = _plugin_module(
        "daystar_test_plugin_d",
        daystar_api_loan_data=lambda loan_data, loan: {"branch": "Nyeri", "status": "hacked"},
    )
    manager = app.extensions["daystar_hooks"]
    manager.register(sys.modules[name])
    try:
        record = extend_api_loan_data({"id": 1, "status": "active"}, loan=None)
    finally:
        manager.unregister(sys.modules[name])
    assert record == {"id": 1, "status": "active", "branch": "Nyeri"}
