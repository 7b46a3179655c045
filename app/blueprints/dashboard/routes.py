"""The dashboard: the SACCO's figure cards, the integration status cards and the recent-activity
feed, each a partial that htmx loads or polls."""

from flask import abort, current_app, redirect, render_template, url_for

from app.auth import can, requires
from app.blueprints.dashboard import bp
from app.clock import NAIROBI
from app.htmx import is_htmx, render_view
from app.services import dashboard, ops_activity, ops_cards

CARDS = {
    "members": ("Members", dashboard.member_count),
    "active-loans": ("Active loans", dashboard.active_loans),
    "portfolio": ("Outstanding portfolio", dashboard.outstanding_portfolio),
    "repayments-month": ("Repayments this month", dashboard.repayments_this_month),
}
# How often the integration cards and the activity feed poll; the app config keys
# DAYSTAR_DASHBOARD_POLL_SECONDS and DAYSTAR_DASHBOARD_ACTIVITY_POLL_SECONDS override them.
CARD_POLL_SECONDS = 15
ACTIVITY_POLL_SECONDS = 10

# Where each integration card links: the first endpoint that exists (the failed-jobs page
# belongs to the log browser), with its label.
CARD_LINKS = {
    "api": (("api_admin.index", "API keys and webhooks"),),
    "mpesa": (("mpesa_admin.index", "M-Pesa overview"),),
    "notifications": (("notify_admin.index", "Notifications overview"),),
    "jobs": (("logs.failed_jobs", "Failed jobs"), ("logs.index", "Integration logs")),
    "database": (("logs.index", "Integration logs"),),
    "redis": (("logs.index", "Integration logs"),),
}


@bp.context_processor
def time_helpers() -> dict:
    return {"nairobi_time": lambda moment: moment.astimezone(NAIROBI).strftime("%H:%M:%S")}


def allowed_url(endpoint: str, anchor: str | None = None, **params) -> str | None:
    """The URL of `endpoint` if the app has it and the signed-in user may open it, else None."""
    view = current_app.view_functions.get(endpoint)
    if view is None or not can(getattr(view, "required_permission", "read")):
        return None
    return url_for(endpoint, _anchor=anchor, **params)


def card_link(name: str) -> tuple[str, str] | None:
    """(URL, label) of the first page an integration card links to that the app has and the
    user may open, or None."""
    for endpoint, label in CARD_LINKS[name]:
        url = allowed_url(endpoint)
        if url:
            return url, label
    return None


def activity_items() -> list[tuple]:
    """The feed's entries, each with the URL and label of its record's page (None if none, or
    not for this user)."""
    items = []
    for entry in ops_activity.recent():
        link = ops_activity.link_for(entry)
        url = allowed_url(link.endpoint, link.anchor, **link.params) if link else None
        items.append((entry, url, link.label if url else None))
    return items


def _page(feed: bool = False, **context) -> dict:
    """What the dashboard page needs besides the card it fills in, if any: the activity feed
    only for the whole page or the `feed`'s own poll (a card's poll does not read it)."""
    config = current_app.config
    return {
        "cards": CARDS,
        "ops_cards": ops_cards.CARDS,
        "activity": activity_items() if feed or not is_htmx() else [],
        "labels": ops_activity.INTEGRATION_LABELS,
        "poll_seconds": config.get("DAYSTAR_DASHBOARD_POLL_SECONDS", CARD_POLL_SECONDS),
        "activity_poll_seconds": config.get(
            "DAYSTAR_DASHBOARD_ACTIVITY_POLL_SECONDS", ACTIVITY_POLL_SECONDS
        ),
        **context,
    }


@bp.get("/")
def root():
    """The portal's home is the dashboard."""
    return redirect(url_for("dashboard.index"))


@bp.get("/dashboard")
@requires("read")
def index():
    """The dashboard: each card's figure is fetched lazily by htmx; the integration cards and
    the activity feed then refresh themselves by polling."""
    return render_template("dashboard/index.html", **_page(feed=True))


@bp.get("/dashboard/cards/<name>")
@requires("read")
def card(name: str):
    """One dashboard card, filled in (the whole dashboard when not asked by htmx)."""
    if name not in CARDS:
        abort(404)
    title, compute = CARDS[name]
    return render_view(
        "dashboard/index.html",
        "dashboard/_card.html",
        **_page(name=name, title=title, value=compute()),
    )


@bp.get("/dashboard/integrations/<name>")
@requires("read")
def integration_card(name: str):
    """One integration's status card, coloured by its rules, for its poll (the whole dashboard
    with it filled in when not asked by htmx). Figures from the database come from a cache of a
    few seconds shared by every web process."""
    if name not in ops_cards.CARDS:
        abort(404)
    return render_view(
        "dashboard/index.html",
        f"dashboard/_ops_{name}.html",
        **_page(ops=ops_cards.card(name), ops_link=card_link(name)),
    )


@bp.get("/dashboard/activity")
@requires("read")
def activity():
    """The recent-activity feed, for its poll (the whole dashboard when not asked by htmx)."""
    return render_view("dashboard/index.html", "dashboard/_activity.html", **_page(feed=True))
