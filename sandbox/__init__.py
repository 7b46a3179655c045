"""A separate small Flask app that plays Safaricom Daraja and the six SMS and email providers
on loopback, for `make run`, demos and tests. It never imports `app/`.

    flask --app sandbox run --port 5001
"""

from flask import Flask, redirect, render_template, request, url_for

from sandbox import daraja, notify
from sandbox.control import control
from sandbox.delivery import DeliveryLog
from sandbox.scheduler import Scheduler
from sandbox.settings import load_config


def create_app(config: dict | None = None) -> Flask:
    """The sandbox app; `config` overrides `SANDBOX_*` environment variables and defaults."""
    app = Flask(__name__)
    app.config.update(load_config(config))
    app.json.sort_keys = False  # Daraja's bodies keep their documented key order
    scheduler = Scheduler(threads=app.config["SANDBOX_CALLBACK_THREADS"])
    deliveries = DeliveryLog()
    app.extensions["sandbox_scheduler"] = scheduler
    app.extensions["sandbox_deliveries"] = deliveries
    app.extensions["sandbox_providers"] = [
        daraja.init_app(app, scheduler, deliveries),
        notify.init_app(app, scheduler, deliveries),
    ]
    app.register_blueprint(control)

    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(500)
    def http_error(exc):
        if request.path.startswith(daraja.DARAJA_PATHS):
            return daraja.daraja_http_error(exc)
        return exc

    @app.get("/")
    def root():
        return redirect(url_for("sandbox_index"))

    @app.get("/sandbox/", endpoint="sandbox_index")
    def index():
        """Links to every page, the throwaway credentials, the mode, recent activity."""
        return render_template(
            "sandbox/index.html",
            deliveries=list(reversed(deliveries.all()))[:15],
            pending_jobs=scheduler.pending(),
            **daraja.index_context(),
            **notify.index_context(),
        )

    @app.post("/sandbox/flush")
    def flush_page():
        """The index page's "deliver all now" button."""
        scheduler.flush()
        return redirect(url_for("sandbox_index"))

    return app
