"""Safaricom Daraja on loopback: OAuth, STK Push and Query, B2C, Transaction Status, Account
Balance, C2B; callbacks sent by the sandbox itself; a virtual phone, a paybill form, the
certificate and an org-portal statement. See sandbox/README.md."""

from flask import Flask

from sandbox.daraja.control import control
from sandbox.daraja.pages import index_context, pages
from sandbox.daraja.routes import api, daraja_http_error
from sandbox.daraja.simulator import DarajaSimulator

DARAJA_PATHS = ("/oauth/", "/mpesa/")


def init_app(app: Flask, scheduler, deliveries) -> DarajaSimulator:
    """Creates the simulator (with its key and certificate) and registers Daraja's routes."""
    simulator = DarajaSimulator(app.config, scheduler, deliveries)
    app.extensions["daraja"] = simulator
    app.register_blueprint(api)
    app.register_blueprint(control)
    app.register_blueprint(pages)
    return simulator


__all__ = ["DARAJA_PATHS", "daraja_http_error", "index_context", "init_app"]
