"""The repayments list: every repayment, filtered by date range and method, with totals."""

from flask import request

from app.auth import requires
from app.blueprints.repayments import bp
from app.blueprints.repayments.forms import PAYMENT_METHODS, RepaymentFilters
from app.htmx import render_view
from app.services import repayments


@bp.get("/")
@requires("read")
def index():
    """Repayments newest first, filtered by the query string, with the totals for the filter."""
    filters = RepaymentFilters(formdata=request.args)
    context = {
        "filters": filters,
        "methods": dict(PAYMENT_METHODS),
        "results": None,
        "totals": None,
    }
    if not filters.validate():
        return render_view("repayments/index.html", "repayments/_results.html", 422, **context)
    selected = filters.service_args()
    context["results"] = repayments.list_repayments(
        **selected, page=filters.page.data or 1, per_page=filters.per_page.data or 25
    )
    context["totals"] = repayments.repayment_totals(**selected)
    return render_view("repayments/index.html", "repayments/_results.html", **context)
