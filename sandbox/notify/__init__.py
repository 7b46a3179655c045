"""The six notification providers on loopback: Twilio, Africa's Talking and Infobip (SMS),
SendGrid, Mailgun and Amazon SES (email). Each answers in its provider's exact formats, then
posts delivery receipts signed the way that provider signs, with the sandbox's own keys. An
inbox page shows every message received; failure modes switch per provider. See
sandbox/README.md."""

from flask import Flask

from sandbox.notify.africastalking import africastalking
from sandbox.notify.control import control
from sandbox.notify.core import NotifySimulator
from sandbox.notify.infobip import infobip
from sandbox.notify.mailgun import mailgun
from sandbox.notify.pages import index_context, pages
from sandbox.notify.sendgrid import sendgrid
from sandbox.notify.ses import ses
from sandbox.notify.sns import sns
from sandbox.notify.twilio import twilio

BLUEPRINTS = (twilio, africastalking, infobip, sendgrid, mailgun, ses, sns, control, pages)


def init_app(app: Flask, scheduler, deliveries) -> NotifySimulator:
    """Creates the simulator (with its signing keys) and registers every provider's routes."""
    simulator = NotifySimulator(app, scheduler, deliveries)
    app.extensions["notify"] = simulator
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return simulator


__all__ = ["index_context", "init_app"]
