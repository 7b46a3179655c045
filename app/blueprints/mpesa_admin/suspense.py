"""The suspense queue: M-Pesa money that could not be credited by itself, allocated by a person
onto a loan or a member (after a confirmation), or dismissed with a note. Admin and accountant
only (`reconciliation`)."""

from flask import flash, request
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField

from app.auth import current_actor, requires
from app.blueprints.api_admin.common import id_from, page_number
from app.blueprints.forms import ServiceErrorsMixin, without_nul
from app.blueprints.mpesa_admin import bp
from app.htmx import is_htmx, render_view
from app.models import SuspenseStatus
from app.services.errors import ValidationFailed
from app.services.lookup import ID_MAX
from app.services.mpesa import suspense

PAGE = "mpesa_admin/suspense.html"
LIST = "mpesa_admin/_suspense.html"
ITEMS_PER_PAGE = 25
STATUSES = [str(s) for s in SuspenseStatus] + ["all"]


class ResolveForm(ServiceErrorsMixin, FlaskForm):
    item_id = HiddenField(filters=[without_nul])
    loan_id = StringField(
        "Loan number",
        filters=[without_nul],
        description="Credit the money as a repayment on this loan…",
        render_kw={"inputmode": "numeric", "autocomplete": "off"},
    )
    member = StringField(
        "Member number",
        filters=[without_nul],
        description="…or as a deposit of this member (for example DST000123).",
        render_kw={"autocomplete": "off"},
    )
    note = TextAreaField("Note (optional)", filters=[without_nul], render_kw={"rows": 2})
    confirmed = HiddenField(filters=[without_nul])


class DismissForm(ServiceErrorsMixin, FlaskForm):
    item_id = HiddenField(filters=[without_nul])
    note = TextAreaField(
        "Why is it dismissed?",
        filters=[without_nul],
        description="For example: refunded to the sender on 12 May, or a test payment.",
        render_kw={"rows": 2},
    )


def _filters() -> tuple[str, str | None]:
    status = request.args.get("status") or SuspenseStatus.OPEN
    source = request.args.get("source") or None
    return (status if status in STATUSES else SuspenseStatus.OPEN), (
        source if source in suspense.SOURCES else None
    )


def _list_view(partial: str = LIST, status_code: int = 200, /, **context):
    """The suspense page (or `partial` of it) with one page of items of the chosen status."""
    status, source = _filters()
    context.setdefault(
        "results",
        suspense.list_items(
            None if status == "all" else status, source, page_number(), ITEMS_PER_PAGE
        ),
    )
    count, amount = suspense.open_total()
    return render_view(
        PAGE,
        partial,
        status_code,
        status_filter=status,
        source_filter=source,
        statuses=STATUSES,
        sources=suspense.SOURCES,
        open_count=count,
        open_amount=amount,
        **context,
    )


def _retarget_to_list(response):
    """After a form succeeds, htmx swaps the whole list (the form asked to swap itself)."""
    if is_htmx():
        response.headers["HX-Retarget"] = "#suspense"
        response.headers["HX-Reswap"] = "outerHTML"
    return response


def _item_id(values) -> int:
    return id_from(values, "item_id", "suspense item")


@bp.get("/suspense")
@requires("reconciliation")
def suspense_index():
    """The suspense queue: open items, oldest first (or resolved, dismissed, all), by source."""
    return _list_view()


def _target_ids(form: ResolveForm) -> tuple[int | None, int | None]:
    """The loan id and member id the form names; ValidationFailed naming the field."""
    loan_text, member_text = (form.loan_id.data or "").strip(), (form.member.data or "").strip()
    if bool(loan_text) == bool(member_text):
        raise ValidationFailed({"loan_id": "Give either a loan number or a member number."})
    if loan_text:
        if not (loan_text.isascii() and loan_text.isdigit() and 1 <= int(loan_text) <= ID_MAX):
            raise ValidationFailed({"loan_id": "Enter the loan's number, for example 1042."})
        return int(loan_text), None
    return None, suspense.find_member(member_text).id


@bp.route("/suspense/resolve", methods=["GET", "POST"])
@requires("reconciliation")
def suspense_resolve():
    """The allocate form; a valid choice first shows what will be credited to whom, and only
    the confirmed form credits it (once: a second time is refused)."""
    form = ResolveForm()
    values = request.args if request.method == "GET" else request.form
    item = suspense.get_item(_item_id(values))
    form.item_id.data = str(item.id)
    suspense.check_open(item)
    if request.method == "GET":
        return _list_view("mpesa_admin/_resolve_form.html", resolve_form=form, item=item)
    try:
        loan_id, member_id = _target_ids(form)
        if form.confirmed.data != "yes":
            _, target = suspense.target_for(item.id, loan_id, member_id)
            return _list_view(
                "mpesa_admin/_resolve_form.html", resolve_form=form, item=item, target=target
            )
        resolved = suspense.resolve(item.id, current_actor(), loan_id, member_id, form.note.data)
    except ValidationFailed as exc:
        form.show_errors(exc.errors)
        return _list_view("mpesa_admin/_resolve_form.html", 422, resolve_form=form, item=item)
    flash(f"Suspense item {resolved.id} resolved: {resolved.resolution}", "success")
    return _retarget_to_list(_list_view())


@bp.route("/suspense/dismiss", methods=["GET", "POST"])
@requires("reconciliation")
def suspense_dismiss():
    """The dismiss form; dismissing closes an open item without crediting it, with the reason."""
    form = DismissForm()
    values = request.args if request.method == "GET" else request.form
    item = suspense.get_item(_item_id(values))
    form.item_id.data = str(item.id)
    suspense.check_open(item)
    if request.method == "GET":
        return _list_view("mpesa_admin/_dismiss_form.html", dismiss_form=form, item=item)
    try:
        dismissed = suspense.dismiss(item.id, current_actor(), form.note.data)
    except ValidationFailed as exc:
        form.show_errors(exc.errors)
        return _list_view("mpesa_admin/_dismiss_form.html", 422, dismiss_form=form, item=item)
    flash(f"Suspense item {dismissed.id} dismissed.", "success")
    return _retarget_to_list(_list_view())
