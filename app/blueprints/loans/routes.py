from flask import flash, request, url_for

from app import clock
from app.auth import current_actor, requires
from app.blueprints.loans import bp
from app.blueprints.loans.forms import (
    DeclineForm,
    DisbursementForm,
    LoanApplicationForm,
    LoanFilterForm,
    RepaymentForm,
)
from app.blueprints.mpesa_admin.live_status import live_context
from app.htmx import hx_redirect, is_htmx, render_view
from app.models import LoanStatus, MpesaStatus
from app.services import loans, members, repayments
from app.services.amortization import build_schedule
from app.services.errors import IllegalTransition, NotFound, ValidationFailed
from app.services.mpesa import config as mpesa_config
from app.services.mpesa import disbursements, monitor
from app.services.validation import normalize_phone

MAX_PAGE = 100_000  # far beyond any real list; keeps the OFFSET a sane integer
PROJECTED = (LoanStatus.PENDING, LoanStatus.APPROVED)


@bp.get("/")
@requires("read")
def index():
    """Loans filtered by status, product and application dates; bad filters are shown (422)."""
    form = LoanFilterForm(loans.all_products(), formdata=request.args)
    if not form.validate():
        return render_view(
            "loans/index.html",
            "loans/_results.html",
            422,
            form=form,
            results=None,
            filters=form.filters(),
        )
    page_number = min(max(request.args.get("page", 1, type=int), 1), MAX_PAGE)
    page = loans.list_loans(
        status=form.status.data or None,
        product_id=int(form.product_id.data) if form.product_id.data else None,
        date_from=form.date_from.data,
        date_to=form.date_to.data,
        page=page_number,
        per_page=int(form.per_page.data),
    )
    return render_view(
        "loans/index.html", "loans/_results.html", form=form, results=page, filters=form.filters()
    )


def _application_member(form: LoanApplicationForm):
    """The member the application is for, from the hidden id or the typed member number."""
    if form.member_id.data and form.member_id.data.isdigit():
        try:
            return members.get_member(int(form.member_id.data))
        except NotFound:
            pass
    number = (form.member_number.data or "").strip().upper().replace(" ", "")
    if number:
        found = members.search_members(number, per_page=5).items
        return next((m for m in found if m.member_number == number), None)
    return None


def _render_new(
    form, member, status=200, schedule=None, preview_errors=None, partial="loans/_form.html"
):
    return render_view(
        "loans/new.html",
        partial,
        status,
        form=form,
        member=member,
        schedule=schedule,
        preview_errors=preview_errors or {},
    )


@bp.route("/new", methods=["GET", "POST"])
@requires("manage_loans")
def new():
    """Loan application form; a valid one creates a pending loan and opens it."""
    form = LoanApplicationForm(loans.active_products())
    if request.method == "GET":
        member_id = request.args.get("member_id", type=int)
        member = members.get_member(member_id) if member_id else None
        if member is not None:
            form.member_id.data = str(member.id)
        return _render_new(form, member)
    member = _application_member(form)
    if member is None:
        form.show_errors(
            {"member_number": "Enter the number of an existing member, e.g. DST000123."}
        )
        return _render_new(form, None, 422)
    try:
        loan = loans.submit_application(
            member.id,
            form.product_id.data,
            form.amount.data,
            form.term_months.data,
            form.purpose.data,
            current_actor(),
        )
    except ValidationFailed as exc:
        form.show_errors(exc.errors, aliases={"member_id": "member_number"})
        return _render_new(form, member, 422)
    flash(
        f"Loan application {loan.id} for {member.full_name} ({member.member_number}) submitted.",
        "success",
    )
    return hx_redirect(url_for("loans.detail", loan_id=loan.id))


@bp.post("/preview")
@requires("manage_loans")
def preview():
    """The schedule the application's terms would give, or why they are not acceptable (422)."""
    form = LoanApplicationForm(loans.active_products())
    try:
        schedule = loans.preview_schedule(
            form.product_id.data, form.amount.data, form.term_months.data
        )
    except ValidationFailed as exc:
        return _render_new(
            form,
            _application_member(form),
            422,
            preview_errors=exc.errors,
            partial="loans/_preview.html",
        )
    return _render_new(
        form, _application_member(form), schedule=schedule, partial="loans/_preview.html"
    )


def _detail_context(loan, **forms) -> dict:
    """What the detail page shows: the stored schedule once disbursed, else a projection."""
    projected = None
    if loan.status in PROJECTED:
        projected = build_schedule(
            loan.amount, loan.interest_rate, loan.term_months, loan.interest_method, clock.today()
        )
    return {
        "loan": loan,
        "projected": projected,
        "today": clock.today(),
        "decline_form": forms.get("decline_form") or DeclineForm(formdata=None),
        "disburse_form": forms.get("disburse_form") or DisbursementForm(formdata=None),
        "repayment_form": forms.get("repayment_form"),
        **_mpesa_context(loan),
        **forms.get("mpesa", {}),
    }


def _mpesa_context(loan) -> dict:
    """The loan's latest M-Pesa disbursement for the loan page: its live status while it is
    under way or waiting for approval, the reason when it failed."""
    txn = monitor.latest_disbursement(loan.id)
    if txn is None:
        return {"mpesa_disbursement": None}
    return {"mpesa_disbursement": txn, **live_context(txn)}


@bp.get("/<int:loan_id>")
@requires("read")
def detail(loan_id: int):
    """A loan with its terms, decision, schedule, repayments and the actions the role allows."""
    loan = loans.get_loan(loan_id)
    return render_view("loans/detail.html", "loans/_detail.html", **_detail_context(loan))


def _done(loan_id: int, message: str):
    """After an action: the refreshed detail for htmx (wherever the form was), a 303 otherwise."""
    flash(message, "success")
    if not is_htmx():
        return hx_redirect(url_for("loans.detail", loan_id=loan_id))
    context = _detail_context(loans.get_loan(loan_id))
    response = render_view("loans/detail.html", "loans/_detail.html", **context)
    response.headers["HX-Retarget"] = "#loan-detail"
    response.headers["HX-Reswap"] = "outerHTML"
    response.headers["HX-Push-Url"] = url_for("loans.detail", loan_id=loan_id)
    return response


def _refused(loan_id: int, partial: str, **forms):
    """The form that was sent, with the service's messages by its fields (422)."""
    return render_view(
        "loans/detail.html", partial, 422, **_detail_context(loans.get_loan(loan_id), **forms)
    )


@bp.post("/<int:loan_id>/approve")
@requires("manage_loans")
def approve(loan_id: int):
    """Approve a pending loan (409 with the reason if it is not pending)."""
    loan = loans.approve(loan_id, current_actor())
    return _done(loan.id, f"Loan {loan.id} approved.")


@bp.post("/<int:loan_id>/decline")
@requires("manage_loans")
def decline(loan_id: int):
    """Decline a pending loan; the reason is required."""
    form = DeclineForm()
    try:
        loan = loans.decline(loan_id, form.reason.data, current_actor())
    except ValidationFailed as exc:
        form.show_errors(exc.errors)
        return _refused(loan_id, "loans/_actions.html", decline_form=form)
    return _done(loan.id, f"Loan {loan.id} declined.")


@bp.post("/<int:loan_id>/disburse")
@requires("manual_disbursement")
def disburse_manual(loan_id: int):
    """Record that an approved loan was paid out by hand (cash, bank, or M-Pesa sent outside)."""
    form = DisbursementForm()
    try:
        loan = loans.mark_disbursed(
            loan_id,
            current_actor(),
            form.method.data,
            form.reference.data,
            form.disbursed_on.data or None,
        )
    except ValidationFailed as exc:
        form.show_errors(exc.errors, aliases={"disbursement_date": "disbursed_on"})
        return _refused(loan_id, "loans/_actions.html", disburse_form=form)
    return _done(loan.id, f"Disbursement of loan {loan.id} recorded; the schedule runs from it.")


@bp.route("/<int:loan_id>/repayments/new", methods=["GET", "POST"])
@requires("record_payments")
def record_repayment(loan_id: int):
    """Record a repayment (cash, bank, check-off or an M-Pesa receipt) against the loan."""
    loan = loans.get_loan(loan_id)
    form = RepaymentForm()
    if request.method == "GET":
        return render_view(
            "loans/detail.html",
            "loans/_repayment_form.html",
            **_detail_context(loan, repayment_form=form),
        )
    try:
        repayment = repayments.record_repayment(
            loan.id,
            form.amount.data,
            form.method.data,
            form.reference.data,
            current_actor(),
            form.paid_on.data or None,
        )
    except ValidationFailed as exc:
        form.show_errors(exc.errors)
        return _refused(loan_id, "loans/_repayment_form.html", repayment_form=form)
    return _done(loan_id, f"Repayment of KES {repayment.amount:,.2f} recorded on loan {loan_id}.")


def _disbursement_check(loan) -> dict:
    """What the confirmation shows before an M-Pesa disbursement: the member, the phone the money
    goes to (or why it cannot), and whether a second staff member must approve it."""
    member = members.get_member(loan.member_id)
    try:
        phone, phone_problem = normalize_phone(member.phone), None
    except ValueError:
        phone, phone_problem = None, f"{member.full_name}'s phone number cannot receive M-Pesa."
    threshold = mpesa_config.current().second_approval_above
    return {
        "recipient": member,
        "phone": phone,
        "phone_problem": phone_problem,
        "needs_second_approval": threshold is not None and loan.amount > threshold,
    }


@bp.route("/<int:loan_id>/mpesa-disbursement", methods=["GET", "POST"])
@requires("manage_loans")
def disburse_mpesa(loan_id: int):
    """Disburse an approved loan to the member's phone by M-Pesa (B2C): first a confirmation with
    the amount, phone and member's name, then the request (once: a second one is refused) and its
    live status."""
    loan = loans.get_loan(loan_id)
    if loan.status != LoanStatus.APPROVED:
        raise IllegalTransition(
            f"Loan {loan.id} is {loan.status}; only an approved loan is disbursed."
        )
    if request.method == "GET":
        if loans.live_mpesa_disbursement(loan.id) is not None:  # already asked for: its status
            return render_view(
                "loans/detail.html", "loans/_mpesa_disbursement.html", **_detail_context(loan)
            )
        check = _disbursement_check(loan)
        return render_view(
            "loans/detail.html",
            "loans/_mpesa_disbursement.html",
            **_detail_context(loan, mpesa={"disbursement_check": check}),
        )
    try:
        txn = disbursements.request_disbursement(loan.id, current_actor())
    except ValidationFailed as exc:
        check = _disbursement_check(loan) | {"refusals": list(exc.errors.values())}
        return render_view(
            "loans/detail.html",
            "loans/_mpesa_disbursement.html",
            422,
            **_detail_context(loan, mpesa={"disbursement_check": check}),
        )
    flash(
        f"Disbursement of KES {txn.amount:,.2f} to {txn.phone_number} "
        + (
            "is waiting for a second approval."
            if txn.status == MpesaStatus.AWAITING_APPROVAL
            else "queued."
        ),
        "success",
    )
    return render_view(
        "loans/detail.html", "loans/_mpesa_disbursement.html", **_detail_context(loan)
    )
