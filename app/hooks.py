"""The hook registry (pluggy). Subscribers to outbox events and plugins register here.

A plugin is a module or object with functions marked ``@hookimpl``; it is registered by naming it in
``DAYSTAR_PLUGINS`` or through a ``daystar`` entry point of an installed package (see README).
"""

import importlib

import pluggy

PROJECT = "daystar"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class DaystarSpecs:
    @hookspec
    def daystar_event(self, event_id: int, event_type: str, sequence: int, payload: dict) -> None:
        """Called once per outbox event by the dispatch job. Must be idempotent: a retried dispatch
        calls every subscriber again. Slow or outside work belongs in a job of its own."""

    @hookspec
    def daystar_notification_message(self, message: str, type: str, data: dict) -> str | None:
        """May rewrite a notification's text; return the new text, or None to leave it. Plugins
        are applied in turn, each seeing the previous one's result."""

    @hookspec
    def daystar_api_loan_data(self, loan_data: dict, loan) -> dict | None:
        """May add fields to a loan record of the accounting API; return the fields to add."""


def make_plugin_manager(plugin_paths=()) -> pluggy.PluginManager:
    """A plugin manager with the specs, the entry-point plugins and the named modules."""
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(DaystarSpecs)
    manager.register(importlib.import_module("app.webhook_subscriber"), name="daystar.webhooks")
    manager.register(
        importlib.import_module("app.notification_subscriber"), name="daystar.notifications"
    )
    manager.load_setuptools_entrypoints(PROJECT)
    for path in plugin_paths:
        manager.register(importlib.import_module(path), name=path)
    return manager


def plugin_manager() -> pluggy.PluginManager:
    from flask import current_app

    return current_app.extensions["daystar_hooks"]


def filter_notification_message(message: str, type: str, data: dict) -> str:
    """The message after every plugin's `daystar_notification_message`, applied in turn."""
    hook = plugin_manager().hook.daystar_notification_message
    for impl in hook.get_hookimpls():  # in registration order (pluggy calls hooks in reverse)
        result = impl.function(message=message, type=type, data=data)
        if result is not None:
            message = result
    return message


def extend_api_loan_data(loan_data: dict, loan) -> dict:
    """The loan record with every plugin's extra fields; a plugin cannot remove ours."""
    extra: dict = {}
    for fields in plugin_manager().hook.daystar_api_loan_data(loan_data=dict(loan_data), loan=loan):
        if fields:
            extra.update(fields)
    return {**extra, **loan_data}
