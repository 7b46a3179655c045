"""Contributions: the list with totals per kind, and the form that records one."""

from flask import abort, flash, request, url_for

from app import clock
from app.auth import current_actor, requires
from app.blueprints.contributions import bp
from app.blueprints.contributions.forms import KINDS, ContributionFilters, ContributionForm
from app.blueprints.repayments.forms import PAYMENT_METHODS
from app.htmx import hx_redirect, render_view
from app.services import contributions, members
from app.services.errors import ValidationFailed


@bp.get("/")
@requires("read")
def index():
    """Contributions newest first, filtered by the query string, with totals per kind."""
    filters = ContributionFilters(formdata=request.args)
    context = {"filters": filters, "methods": dict(PAYMENT_METHODS), "kinds": dict(KINDS),
               "results": None, "totals": None}  # fmt: skip
    if not filters.validate():
        return render_view(
            "contributions/index.html", "contributions/_results.html", 422, **context
        )
    selected = filters.service_args()
    context["results"] = contributions.list_contributions(
        **selected, page=filters.page.data or 1, per_page=filters.per_page.data or 25
    )
    context["totals"] = contributions.contribution_totals(**selected)
    return render_view("contributions/index.html", "contributions/_results.html", **context)


@bp.route("/new", methods=["GET", "POST"])
@requires("record_payments")
def new():
    """Record a member's deposit or share-capital payment; back to the member's page when done."""
    member_id = request.args.get("member_id", type=int)
    if member_id is None:
        abort(400, "Choose the member first: open the member's page and use Record contribution.")
    member = members.get_member(member_id)  # NotFound -> 404
    form = ContributionForm()
    status = 200
    if form.validate_on_submit():
        try:  # an exited member raises IllegalTransition: the error handler answers 409
            contribution = contributions.record_contribution(
                member.id, form.amount.data, form.kind.data, form.method.data, form.reference.data,
                current_actor(), paid_on=form.paid_on.data or None,
            )  # fmt: skip
        except ValidationFailed as exc:
            form.show_errors(exc.errors)
        else:
            kind = dict(KINDS)[contribution.kind].lower()
            flash(
                f"Recorded a {kind} of KES {contribution.amount:,.2f} for {member.full_name}.",
                "success",
            )
            return hx_redirect(url_for("members.detail", member_id=member.id))
        status = 422
    elif form.is_submitted():
        status = 422
    return render_view("contributions/new.html", "contributions/_form.html", status,
                       form=form, member=member, today=clock.today())  # fmt: skip
