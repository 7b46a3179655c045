from flask import abort, flash, request, url_for

from app.auth import current_actor, requires
from app.blueprints.members import bp
from app.blueprints.members.forms import EditMemberForm, MemberForm, PaymentRequestForm
from app.blueprints.mpesa_admin.live_status import live_context
from app.htmx import hx_redirect, render_partial, render_view
from app.models import MemberStatus, PaymentPurpose
from app.services import contributions, loans, members, repayments
from app.services.errors import ServiceError, ValidationFailed
from app.services.mpesa import payments
from app.services.repayments import REPAYABLE
from app.services.validation import normalize_phone

PER_PAGE = 25
MAX_PER_PAGE = 100
MAX_PAGE = 100_000  # far beyond any real list; keeps the OFFSET a sane integer
RECENT = 10


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    value = request.args.get(name, default, type=int)
    return min(max(value, low), high)


@bp.get("/")
@requires("read")
def index():
    """Members list with active search, status filter and pages (the results are a partial)."""
    q = request.args.get("q", "").replace("\x00", "").strip()[:100]
    status = request.args.get("status", "")
    status = status if status in set(MemberStatus) else ""
    per_page = _int_arg("per_page", PER_PAGE, 1, MAX_PER_PAGE)
    page = members.search_members(q, status or None, _int_arg("page", 1, 1, MAX_PAGE), per_page)
    return render_view(
        "members/index.html",
        "members/_results.html",
        results=page,
        q=q,
        selected_status=status,
        per_page=per_page,
        statuses=list(MemberStatus),
    )


def _detail_context(member, **extra) -> dict:
    return {
        "member": member,
        "loans": loans.list_loans(member_id=member.id, per_page=MAX_PER_PAGE),
        "repayments": repayments.list_repayments(member_id=member.id, per_page=RECENT),
        "contributions": contributions.list_contributions(member_id=member.id, per_page=RECENT),
        **extra,
    }


@bp.get("/<int:member_id>")
@requires("read")
def detail(member_id: int):
    """One member: details, loans, recent repayments and contributions, and allowed actions."""
    member = members.get_member(member_id)
    return render_view("members/detail.html", "members/_detail.html", **_detail_context(member))


STK_DESCRIPTIONS = {
    PaymentPurpose.LOAN_REPAYMENT: "Loan payment",
    PaymentPurpose.CONTRIBUTION: "Contribution",
}


def _repayable_loans(member) -> list:
    """The member's loans that take repayments, newest first."""
    found = loans.list_loans(member_id=member.id, per_page=MAX_PER_PAGE).items
    return [loan for loan in found if loan.status in REPAYABLE]


def _chosen_loan(form, repayable):
    if form.payment_purpose.data != PaymentPurpose.LOAN_REPAYMENT:
        return None
    return next((loan for loan in repayable if str(loan.id) == form.loan_id.data), None)


def _payment_view(member, form, status: int = 200, /, **extra):
    return render_view(
        "members/detail.html",
        "members/_payment_request.html",
        status,
        **_detail_context(member, payment_form=form, **extra),
    )


@bp.route("/<int:member_id>/mpesa-payment", methods=["GET", "POST"])
@requires("record_payments")
def request_payment(member_id: int):
    """Ask the member to pay by M-Pesa (an STK Push prompt on their phone) for a loan repayment
    or a contribution; the request is queued and its live status shown until M-Pesa settles it.
    The form is re-shown on each choice of purpose or loan, with the matching account."""
    member = members.get_member(member_id)
    repayable = _repayable_loans(member)
    if request.method == "GET":
        form = PaymentRequestForm(repayable, formdata=request.args or None)
        if not request.args:
            form.phone.data = member.phone
            form.payment_purpose.data = (
                PaymentPurpose.LOAN_REPAYMENT if repayable else PaymentPurpose.CONTRIBUTION
            )
        loan = _chosen_loan(form, repayable)
        if (
            loan is None
            and form.payment_purpose.data == PaymentPurpose.LOAN_REPAYMENT
            and repayable
        ):
            loan = repayable[0]
            form.loan_id.data = str(loan.id)
        form.account_reference.data = payments.default_reference(member, loan)
        return _payment_view(member, form)
    form = PaymentRequestForm(repayable)
    purpose = form.payment_purpose.data
    try:
        txn = payments.create_request(
            form.phone.data,
            form.amount.data,
            form.account_reference.data,
            STK_DESCRIPTIONS.get(purpose, "Payment"),
            member_id=member.id,
            payment_purpose=purpose,
            loan_id=form.loan_id.data if purpose == PaymentPurpose.LOAN_REPAYMENT else None,
            contribution_kind=form.contribution_kind.data
            if purpose == PaymentPurpose.CONTRIBUTION
            else None,
            actor=current_actor(),
        )
    except ServiceError as exc:
        # A duplicate request is a plain ServiceError: its message goes above the form.
        form.show_errors(exc.errors)
        if not isinstance(exc, ValidationFailed):
            form.form_errors.append(exc.message)
        return _payment_view(member, form, 422)
    flash(
        f"Payment request of KES {txn.amount:,.0f} queued for {txn.phone_number}; "
        "the member's phone shows the prompt in a moment.",
        "success",
    )
    return render_view(
        "members/detail.html",
        "mpesa_admin/_live_status.html",
        **_detail_context(member, **live_context(txn)),
    )


def _form_view(form, action: str, title: str, save, member=None):
    """Shared by new and edit: show the form, or save it and go to the member's page."""
    status = 200
    if form.validate_on_submit():
        try:
            saved, message = save(form.member_data())
        except ValidationFailed as exc:
            form.show_errors(exc.errors)
        else:
            flash(message, "success")
            return hx_redirect(url_for("members.detail", member_id=saved.id))
    if form.is_submitted():
        status = 422
    return render_view(
        "members/form.html",
        "members/_form.html",
        status,
        form=form,
        action=action,
        title=title,
        member=member,
    )


@bp.route("/new", methods=["GET", "POST"])
@requires("manage_members")
def new():
    """Register a member; invalid input comes back as the form with each message by its field."""

    def save(data):
        member = members.create_member(data, current_actor())
        return member, f"Member {member.member_number} ({member.full_name}) registered."

    return _form_view(MemberForm(), url_for("members.new"), "New member", save)


@bp.route("/<int:member_id>/edit", methods=["GET", "POST"])
@requires("manage_members")
def edit(member_id: int):
    """Change a member's details or status."""
    member = members.get_member(member_id)

    def save(data):
        updated = members.update_member(member.id, data, current_actor())
        return updated, f"Member {updated.member_number} updated."

    form = EditMemberForm(obj=member)
    return _form_view(
        form, url_for("members.edit", member_id=member.id), f"Edit {member.full_name}", save, member
    )


def _check_phone(value: str, member_id: int | None) -> tuple[str | None, str | None]:
    try:
        return None, f"OK: {normalize_phone(value)}"
    except ValueError as exc:
        return str(exc), None


def _check_national_id(value: str, member_id: int | None) -> tuple[str | None, str | None]:
    # The whole rule set runs so the message is exactly the one a submission would give.
    try:
        members.clean_member_data({"national_id": value}, member_id)
    except ValidationFailed as exc:
        if "national_id" in exc.errors:
            return exc.errors["national_id"], None
    return None, "OK: not used by another member."


FIELD_CHECKS = {"phone": _check_phone, "national_id": _check_national_id}


@bp.post("/validate/<field>")
@requires("manage_members")
def validate_field(field: str):
    """Inline check of one form field (phone, national ID) as the person types; a small partial."""
    check = FIELD_CHECKS.get(field)
    if check is None:
        abort(404)
    value = request.form.get(field, "").replace("\x00", "")[:200]
    member_id = request.args.get("member_id", type=int)
    error, ok = check(value, member_id)
    return render_partial("members/_field_feedback.html", name=field, error=error, ok=ok)
