from flask import abort, redirect, render_template, url_for

from app.auth import requires
from app.blueprints.dashboard import bp
from app.htmx import render_view
from app.services import dashboard

CARDS = {
    "members": ("Members", dashboard.member_count),
    "active-loans": ("Active loans", dashboard.active_loans),
    "portfolio": ("Outstanding portfolio", dashboard.outstanding_portfolio),
    "repayments-month": ("Repayments this month", dashboard.repayments_this_month),
}


@bp.get("/")
def root():
    """The portal's home is the dashboard."""
    return redirect(url_for("dashboard.index"))


@bp.get("/dashboard")
@requires("read")
def index():
    """The dashboard: each card's figure is fetched lazily by htmx."""
    return render_template("dashboard/index.html", cards=CARDS)


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
        cards=CARDS,
        name=name,
        title=title,
        value=compute(),
    )
