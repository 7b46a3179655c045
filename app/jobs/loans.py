"""Loan jobs."""

from flask import current_app

from app.services import loans


def mark_overdue_loans_defaulted() -> int:
    """Mark defaulted the active loans overdue by LOAN_DEFAULT_AFTER_DAYS; returns how many."""
    return len(loans.mark_overdue_defaulted(current_app.config["LOAN_DEFAULT_AFTER_DAYS"]))
