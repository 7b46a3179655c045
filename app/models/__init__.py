"""Every model, imported here so that Alembic's autogenerate and the app see each table."""

from app.models.api import (
    ApiKey,
    ApiPermission,
    ApiRequestLog,
    DeliveryStatus,
    EndpointStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.models.audit import ActorType, AuditLog
from app.models.events import Event
from app.models.sacco import (
    Contribution,
    ContributionKind,
    InstallmentStatus,
    InterestMethod,
    Loan,
    LoanInstallment,
    LoanProduct,
    LoanStatus,
    Member,
    MemberStatus,
    PaymentMethod,
    Repayment,
)
from app.models.staff import LoginFailure, Role, StaffUser

__all__ = [
    "ApiKey",
    "ApiPermission",
    "ApiRequestLog",
    "DeliveryStatus",
    "EndpointStatus",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "ActorType",
    "AuditLog",
    "Contribution",
    "ContributionKind",
    "Event",
    "InstallmentStatus",
    "InterestMethod",
    "Loan",
    "LoanInstallment",
    "LoanProduct",
    "LoanStatus",
    "LoginFailure",
    "Member",
    "MemberStatus",
    "PaymentMethod",
    "Repayment",
    "Role",
    "StaffUser",
]
