"""Scheduled reminders: repayment due, overdue and weekly contribution; once per member a day."""

from collections import Counter
from datetime import date
from decimal import Decimal

from sqlalchemy import select

from app import clock
from app.extensions import db
from app.jobs import enqueue, get_queue
from app.jobs import notifications as notification_jobs
from app.models import LoanInstallment, MemberStatus, Notification
from app.services import contributions, repayments
from app.services.notifications import bulk, reminders
from tests import factories

SYSTEM = factories.SYSTEM
DISBURSED = date(2026, 1, 5)  # first instalment due 5 Feb 2026, then monthly
FIRST_DUE = date(2026, 2, 5)


def _rows(kind: str | None = None) -> list[Notification]:
    query = select(Notification).order_by(Notification.id)
    if kind:
        query = query.where(Notification.notification_type == kind)
    return list(db.session.scalars(query))


def _first_instalment(loan) -> LoanInstallment:
    return db.session.scalar(
        select(LoanInstallment).where(
            LoanInstallment.loan_id == loan.id, LoanInstallment.number == 1
        )
    )


def test_repayment_reminders_go_three_days_before_once_a_day_however_often_the_job_runs(
    monkeypatch, product, run_jobs
):
    monkeypatch.setattr(clock, "today", lambda: date(2026, 2, 2))
    borrower = factories.member()
    loan = factories.active_loan(borrower, product, Decimal("12000"), 6, DISBURSED)
    second = factories.active_loan(borrower, product, Decimal("6000"), 3, DISBURSED)
    later = factories.member()
    factories.active_loan(later, product, Decimal("12000"), 6, date(2026, 1, 6))  # due in 4 days
    factories.member()  # no loan
    due = _first_instalment(loan).amount + _first_instalment(second).amount

    enqueue(notification_jobs.send_repayment_reminders, queue="low")
    enqueue(notification_jobs.send_repayment_reminders, queue="low")
    run_jobs()

    rows = _rows("repayment_due")
    assert Counter((r.recipient_id, r.channel) for r in rows) == {
        (borrower.id, "sms"): 1,
        (borrower.id, "email"): 1,
    }
    sms = next(r for r in rows if r.channel == "sms")
    assert f"a loan repayment of KES {due:,.2f} is due on 5 Feb 2026." in sms.message
    assert sms.dedupe_key == f"repayment_due:{borrower.id}:2026-02-02:sms"
    assert (sms.priority, sms.template, sms.encoding, sms.segments) == (
        "low", "repayment_due", "GSM-7", 1,
    )  # fmt: skip
    assert reminders.repayment_due(date(2026, 2, 2)).already == 1
    # Next month's instalment: a new day, a new reminder.
    assert reminders.repayment_due(date(2026, 3, 2)).stored == 2


def test_a_reminder_is_sent_in_batches_by_the_send_job(member, active_loan, run_jobs):
    run = reminders.repayment_due(FIRST_DUE.replace(day=2))
    assert run.stored == 2
    ids = [r.id for r in _rows("repayment_due")]
    jobs = get_queue("low").get_jobs()
    assert [(job.func_name, job.args) for job in jobs] == [(bulk.BATCH_JOB, (ids,))]
    assert all(r.scheduled_for is not None for r in _rows("repayment_due"))  # the sweep's too
    run_jobs()
    db.session.expire_all()
    # Each went through deliver(): sent, or (no provider is configured in the tests, or it is
    # quiet hours) waiting with the reason why.
    assert all(r.status != "pending" or r.skip_reason for r in _rows("repayment_due"))


def test_overdue_notices_go_on_the_listed_days_with_the_amount_still_owed(
    app, monkeypatch, product
):
    member = factories.member(email=None)
    loan = factories.active_loan(member, product, Decimal("12000"), 6, DISBURSED)
    repayments.record_repayment(loan.id, Decimal("500"), "cash", None, SYSTEM, date(2026, 2, 1))
    owed = _first_instalment(loan).outstanding
    assert reminders.overdue(FIRST_DUE).stored == 0  # due today, not overdue
    run = reminders.overdue(date(2026, 2, 6))
    assert (run.members, run.stored) == (1, 1)
    (row,) = _rows("repayment_overdue")
    assert (
        row.channel == "sms" and row.dedupe_key == f"repayment_overdue:{member.id}:2026-02-06:sms"
    )
    assert f"your loan repayment of KES {owed:,.2f} is 1 day overdue." in row.message
    assert reminders.overdue(date(2026, 2, 6)).stored == 0  # once a day
    assert reminders.overdue(date(2026, 2, 7)).stored == 0  # 2 days: not a listed day
    assert reminders.overdue(date(2026, 2, 12)).stored == 1  # 7 days
    monkeypatch.setitem(app.config, "NOTIFY_OVERRIDES", {"overdue_notice_days": "daily"})
    assert reminders.overdue(date(2026, 2, 13)).stored == 1
    assert "is 8 days overdue" in _rows("repayment_overdue")[-1].message


def test_a_paid_instalment_is_neither_due_nor_overdue(member, product):
    loan = factories.active_loan(member, product, Decimal("12000"), 6, DISBURSED)
    amount = _first_instalment(loan).amount
    repayments.record_repayment(loan.id, amount, "cash", None, SYSTEM, date(2026, 2, 1))
    assert reminders.repayment_due(date(2026, 2, 2)).members == 0
    assert reminders.overdue(date(2026, 2, 6)).members == 0


def test_the_weekly_contribution_reminder_skips_members_who_contributed_this_week(
    monkeypatch, run_jobs
):
    friday = date(2026, 11, 20)  # the week of Monday 16 to Sunday 22 November
    monkeypatch.setattr(clock, "today", lambda: friday)
    saved = factories.member()
    contributions.record_contribution(
        saved.id, Decimal("1000"), "deposit", "cash", None, SYSTEM, date(2026, 11, 16)
    )
    last_week = factories.member(email=None)
    contributions.record_contribution(
        last_week.id, Decimal("1000"), "deposit", "cash", None, SYSTEM, date(2026, 11, 15)
    )
    dormant = factories.member()
    dormant.status = MemberStatus.DORMANT
    opted_out = factories.member()
    opted_out.sms_opt_in = opted_out.email_opt_in = False
    email_only = factories.member()
    email_only.sms_opt_in = False
    db.session.commit()

    enqueue(notification_jobs.send_contribution_reminders, queue="low")
    enqueue(notification_jobs.send_contribution_reminders, queue="low")
    run_jobs()

    rows = _rows("contribution_reminder")
    assert Counter((r.recipient_id, r.channel) for r in rows) == {
        (last_week.id, "sms"): 1,
        (email_only.id, "email"): 1,
    }
    email = next(r for r in rows if r.channel == "email")
    assert email.subject == "A reminder to save this week"
    assert "for the week of 16 Nov 2026 to 22 Nov 2026" in email.message
    assert "16 Nov 2026 to 22 Nov 2026" in email.html_message


def test_a_channel_switched_off_is_not_used(app, monkeypatch, member):
    monkeypatch.setitem(app.config, "NOTIFY_OVERRIDES", {"channels_contribution_reminder": "email"})
    run = reminders.contribution(date(2026, 11, 20))
    assert run.stored == 1 and _rows()[0].channel == "email"
    monkeypatch.setitem(app.config, "NOTIFY_OVERRIDES", {"channels_contribution_reminder": "none"})
    assert reminders.contribution(date(2026, 11, 21)).stored == 0


def test_many_members_are_paged(monkeypatch):
    monkeypatch.setattr(reminders, "PAGE", 3)
    people = [factories.member() for _ in range(7)]
    run = reminders.contribution(date(2026, 11, 20))
    assert (run.members, run.stored) == (7, 14)
    assert {r.recipient_id for r in _rows()} == {p.id for p in people}


def test_the_cli_runs_a_reminder(app, member, active_loan):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["notify", "remind", "repayment-due", "--date", "2026-02-02"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "repayment_due for 2026-02-02: 1 member(s), 0 had it already, 2"
    )
