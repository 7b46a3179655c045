"""The default message templates (inserted by `templates.ensure_defaults()` and used whenever a
template is missing from the database), the variables each may use, and sample values for
previews and for checking a template when it is saved.

Every email's HTML is rendered into the branded layout (app/templates/notifications/
email_layout.html), so these hold only the content of the message."""

from datetime import date, datetime
from decimal import Decimal

from app.clock import NAIROBI

# Variables every member message may use, and those of each kind of message.
MEMBER = ("sacco", "member")
VARIABLES: dict[str, tuple[str, ...]] = {
    "welcome": MEMBER,
    "loan_application_received": (*MEMBER, "loan"),
    "loan_approved": (*MEMBER, "loan"),
    "loan_declined": (*MEMBER, "loan"),
    "loan_disbursed": (*MEMBER, "loan"),
    "repayment_received": (*MEMBER, "repayment", "loan"),
    "contribution_received": (*MEMBER, "contribution", "savings"),
    "payment_received": (*MEMBER, "payment"),
    "repayment_due": (*MEMBER, "due"),
    "repayment_overdue": (*MEMBER, "due"),
    "contribution_reminder": (*MEMBER, "week"),
    "account_update": (*MEMBER, "update"),
    "policy_change": (*MEMBER, "notice"),
    "maintenance_notice": (*MEMBER, "notice"),
    "admin_alert": ("sacco", "alert"),
}

_LOAN = {
    "id": 1042,
    "amount": Decimal("50000.00"),
    "product": "Development Loan",
    "term_months": 12,
    "monthly_payment": Decimal("4442.44"),
    "total_payable": Decimal("53309.28"),
    "balance": Decimal("53309.28"),
    "purpose": "School fees",
    "application_date": date(2026, 11, 20),
    "approval_date": date(2026, 11, 24),
    "disbursement_date": date(2026, 11, 25),
    "disbursement_method": "mpesa",
    "first_due_date": date(2026, 12, 25),
    "due_date": date(2027, 11, 25),
    "decision_reason": "Your guarantors' deposits do not cover the amount.",
}

SAMPLE: dict[str, object] = {
    "sacco": {
        "name": "Daystar SACCO",
        "phone": "0700 123 456",
        "email": "info@daystar.co.ke",
        "website": "https://daystar.co.ke",
        "paybill": "174379",
    },
    "member": {
        "first_name": "Wanjiku",
        "last_name": "Kamau",
        "full_name": "Wanjiku Kamau",
        "member_number": "DST000123",
        "phone": "254712345678",
        "email": "wanjiku@example.co.ke",
    },
    "loan": _LOAN,
    "repayment": {
        "amount": Decimal("4442.44"),
        "reference": "SLK4H7PQ2X",
        "method": "mpesa",
        "paid_on": date(2026, 12, 24),
    },
    "contribution": {
        "amount": Decimal("2000.00"),
        "kind": "deposit",
        "kind_label": "deposit",
        "reference": "SLK4H7PQ3Y",
        "method": "mpesa",
        "paid_on": date(2026, 12, 1),
    },
    "savings": {"deposits": Decimal("48000.00"), "share_capital": Decimal("10000.00")},
    "payment": {
        "amount": Decimal("1500.00"),
        "reference": "SLK4H7PQ4Z",
        "paid_on": date(2026, 12, 2),
        "description": "M-Pesa payment to paybill 174379",
    },
    "due": {
        "amount": Decimal("4442.44"),
        "due_date": date(2026, 12, 25),
        "days": 3,
        "loans": 1,
    },
    "week": {"start": date(2026, 11, 23), "end": date(2026, 11, 29)},
    "update": {"summary": "Your phone number was changed to 0712 345 678."},
    "notice": {
        "title": "New loan interest rates",
        "body": "From 1 January 2027 the Development Loan's rate is 11% a year.",
        "effective_date": date(2027, 1, 1),
        "starts_at": None,
        "ends_at": None,
    },
    "alert": {
        "kind": "mpesa_amount_mismatch",
        "title": "M-Pesa amount mismatch",
        "message": "An STK callback reports KES 1,000.00 for a request of KES 100.00.",
        "details": {"transaction": "84", "receipt": "SLK4H7PQ5A"},
        "raised_at": datetime(2026, 11, 27, 10, 15, tzinfo=NAIROBI),
        "suppressed": 0,
    },
}


# Where one kind of message needs other sample values than the rest.
SAMPLE_FOR = {
    "maintenance_notice": {
        "notice": {
            "title": "Planned maintenance",
            "body": "M-Pesa payments to the SACCO may be delayed while we upgrade our systems.",
            "effective_date": None,
            "starts_at": datetime(2026, 12, 6, 22, 0, tzinfo=NAIROBI),
            "ends_at": datetime(2026, 12, 7, 2, 0, tzinfo=NAIROBI),
        }
    }
}


def sample_context(key: str) -> dict:
    """Sample values for the variables the message `key` may use (all of them for a new key)."""
    names = VARIABLES.get(key, tuple(SAMPLE))
    overrides = SAMPLE_FOR.get(key, {})
    return {name: overrides.get(name, SAMPLE[name]) for name in names}


_PAY = (
    "{% if sacco.paybill %}Pay through M-Pesa paybill {{ sacco.paybill }}, account "
    "{{ member.member_number }}.{% endif %}"
)
_PAY_HTML = (
    "{% if sacco.paybill %}<p>Pay through M-Pesa: paybill <strong>{{ sacco.paybill }}</strong>, "
    "account number <strong>{{ member.member_number }}</strong>.</p>{% endif %}"
)
_SIGN_TEXT = "\n\n{{ sacco.name }}{% if sacco.phone %}\n{{ sacco.phone }}{% endif %}"
_ROW = '<tr><td style="padding:6px 12px 6px 0;color:#6b7280">{0}</td><td style="padding:6px 0"><strong>{1}</strong></td></tr>'  # noqa: E501


def _table(*rows: tuple[str, str]) -> str:
    body = "".join(_ROW.format(label, value) for label, value in rows)
    return f'<table role="presentation" cellspacing="0" cellpadding="0" style="margin:0 0 16px">{body}</table>'  # noqa: E501


DEFAULTS: dict[str, dict[str, str]] = {
    "welcome": {
        "name": "Welcome",
        "sms_body": (
            "Karibu {{ sacco.name }}, {{ member.first_name }}! Your member number is "
            "{{ member.member_number }}. Use it as the account number for M-Pesa payments."
        ),
        "email_subject": "Welcome to {{ sacco.name }}",
        "email_html": (
            "<p>Dear {{ member.first_name }},</p>"
            "<p>Karibu! You are now a member of {{ sacco.name }}.</p>"
            + _table(("Member number", "{{ member.member_number }}"))
            + "<p>Use your member number as the account number whenever you pay by M-Pesa.</p>"
        ),
        "email_text": (
            "Dear {{ member.first_name }},\n\nKaribu! You are now a member of {{ sacco.name }}.\n"
            "Your member number is {{ member.member_number }}. Use it as the account number "
            "whenever you pay by M-Pesa." + _SIGN_TEXT
        ),
    },
    "loan_application_received": {
        "name": "Loan application received",
        "sms_body": (
            "Dear {{ member.first_name }}, we have received your application for a "
            "{{ loan.amount|money }} {{ loan.product }} (loan {{ loan.id }}). We will let you "
            "know our decision."
        ),
        "email_subject": "We have received your loan application",
        "email_html": (
            "<p>Dear {{ member.first_name }},</p>"
            "<p>We have received your loan application. We will let you know our decision.</p>"
            + _table(
                ("Loan", "{{ loan.id }} &middot; {{ loan.product }}"),
                ("Amount", "{{ loan.amount|money }}"),
                ("Term", "{{ loan.term_months }} months"),
                ("Monthly payment", "{{ loan.monthly_payment|money }}"),
            )
        ),
        "email_text": (
            "Dear {{ member.first_name }},\n\nWe have received your loan application and will "
            "let you know our decision.\n\nLoan: {{ loan.id }} ({{ loan.product }})\n"
            "Amount: {{ loan.amount|money }}\nTerm: {{ loan.term_months }} months\n"
            "Monthly payment: {{ loan.monthly_payment|money }}" + _SIGN_TEXT
        ),
    },
    "loan_approved": {
        "name": "Loan approved",
        "sms_body": (
            "Dear {{ member.first_name }}, your {{ loan.amount|money }} loan {{ loan.id }} is "
            "approved: {{ loan.term_months }} payments of {{ loan.monthly_payment|money }}. "
            "We will tell you when it is disbursed."
        ),
        "email_subject": "Your loan is approved",
        "email_html": (
            "<p>Dear {{ member.first_name }},</p>"
            "<p>Good news: your loan is approved. We will tell you when it is disbursed.</p>"
            + _table(
                ("Loan", "{{ loan.id }} &middot; {{ loan.product }}"),
                ("Amount", "{{ loan.amount|money }}"),
                ("Monthly payment", "{{ loan.monthly_payment|money }}"),
                ("Term", "{{ loan.term_months }} months"),
                ("Total to repay", "{{ loan.total_payable|money }}"),
            )
        ),
        "email_text": (
            "Dear {{ member.first_name }},\n\nGood news: your loan is approved. We will tell you "
            "when it is disbursed.\n\nLoan: {{ loan.id }} ({{ loan.product }})\n"
            "Amount: {{ loan.amount|money }}\nMonthly payment: {{ loan.monthly_payment|money }}\n"
            "Term: {{ loan.term_months }} months\nTotal to repay: {{ loan.total_payable|money }}"
            + _SIGN_TEXT
        ),
    },
    "loan_declined": {
        "name": "Loan declined",
        "sms_body": (
            "Dear {{ member.first_name }}, we are sorry: your application for "
            "{{ loan.amount|money }} (loan {{ loan.id }}) was not approved."
            "{% if sacco.phone %} Call {{ sacco.phone }} to talk it over.{% endif %}"
        ),
        "email_subject": "About your loan application",
        "email_html": (
            "<p>Dear {{ member.first_name }},</p>"
            "<p>We are sorry: your application for a {{ loan.amount|money }} "
            "{{ loan.product }} (loan {{ loan.id }}) was not approved.</p>"
            "{% if loan.decision_reason %}<p>The reason: {{ loan.decision_reason }}</p>{% endif %}"
            "<p>You are welcome to talk it over with us{% if sacco.phone %} on "
            "{{ sacco.phone }}{% endif %}.</p>"
        ),
        "email_text": (
            "Dear {{ member.first_name }},\n\nWe are sorry: your application for a "
            "{{ loan.amount|money }} {{ loan.product }} (loan {{ loan.id }}) was not approved."
            "{% if loan.decision_reason %}\nThe reason: {{ loan.decision_reason }}{% endif %}\n\n"
            "You are welcome to talk it over with us{% if sacco.phone %} on "
            "{{ sacco.phone }}{% endif %}." + _SIGN_TEXT
        ),
    },
    "loan_disbursed": {
        "name": "Loan disbursed",
        "sms_body": (
            "Dear {{ member.first_name }}, {{ loan.amount|money }} of loan {{ loan.id }} has been "
            "sent to you. First payment of {{ loan.monthly_payment|money }}"
            "{% if loan.first_due_date %} is due on {{ loan.first_due_date|day }}{% endif %}."
        ),
        "email_subject": "Your loan has been disbursed",
        "email_html": (
            "<p>Dear {{ member.first_name }},</p>"
            "<p>Your loan has been disbursed.</p>"
            + _table(
                ("Loan", "{{ loan.id }} &middot; {{ loan.product }}"),
                ("Amount", "{{ loan.amount|money }}"),
                ("Disbursed on", "{{ loan.disbursement_date|day }}"),
                ("Monthly payment", "{{ loan.monthly_payment|money }}"),
                ("First payment due", "{{ loan.first_due_date|day }}"),
            )
            + _PAY_HTML
        ),
        "email_text": (
            "Dear {{ member.first_name }},\n\nYour loan has been disbursed.\n\n"
            "Loan: {{ loan.id }} ({{ loan.product }})\nAmount: {{ loan.amount|money }}\n"
            "Disbursed on: {{ loan.disbursement_date|day }}\n"
            "Monthly payment: {{ loan.monthly_payment|money }}\n"
            "First payment due: {{ loan.first_due_date|day }}\n\n" + _PAY + _SIGN_TEXT
        ),
    },
    "repayment_received": {
        "name": "Repayment received",
        "sms_body": (
            "Dear {{ member.first_name }}, we have received {{ repayment.amount|money }} for loan "
            "{{ loan.id }}{% if repayment.reference %} (ref {{ repayment.reference }}){% endif %}"
            ". Balance: {{ loan.balance|money }}. Asante!"
        ),
        "email_subject": "Repayment received: {{ repayment.amount|money }}",
        "email_html": (
            "<p>Dear {{ member.first_name }},</p><p>Thank you: we have received your repayment.</p>"
            + _table(
                ("Amount", "{{ repayment.amount|money }}"),
                ("Loan", "{{ loan.id }}"),
                ("Reference", "{{ repayment.reference or '-' }}"),
                ("Paid on", "{{ repayment.paid_on|day }}"),
                ("Loan balance", "{{ loan.balance|money }}"),
            )
        ),
        "email_text": (
            "Dear {{ member.first_name }},\n\nThank you: we have received your repayment.\n\n"
            "Amount: {{ repayment.amount|money }}\nLoan: {{ loan.id }}\n"
            "Reference: {{ repayment.reference or '-' }}\nPaid on: {{ repayment.paid_on|day }}\n"
            "Loan balance: {{ loan.balance|money }}" + _SIGN_TEXT
        ),
    },
    "contribution_received": {
        "name": "Contribution received",
        "sms_body": (
            "Dear {{ member.first_name }}, we have received your {{ contribution.kind_label }} of "
            "{{ contribution.amount|money }}{% if contribution.reference %} (ref "
            "{{ contribution.reference }}){% endif %}. Total deposits: "
            "{{ savings.deposits|money }}. Asante!"
        ),
        "email_subject": "Contribution received: {{ contribution.amount|money }}",
        "email_html": (
            "<p>Dear {{ member.first_name }},</p>"
            "<p>Thank you: we have received your {{ contribution.kind_label }}.</p>"
            + _table(
                ("Amount", "{{ contribution.amount|money }}"),
                ("Reference", "{{ contribution.reference or '-' }}"),
                ("Paid on", "{{ contribution.paid_on|day }}"),
                ("Total deposits", "{{ savings.deposits|money }}"),
                ("Share capital", "{{ savings.share_capital|money }}"),
            )
        ),
        "email_text": (
            "Dear {{ member.first_name }},\n\nThank you: we have received your "
            "{{ contribution.kind_label }}.\n\nAmount: {{ contribution.amount|money }}\n"
            "Reference: {{ contribution.reference or '-' }}\n"
            "Paid on: {{ contribution.paid_on|day }}\nTotal deposits: {{ savings.deposits|money }}"
            "\nShare capital: {{ savings.share_capital|money }}" + _SIGN_TEXT
        ),
    },
    "payment_received": {
        "name": "Payment received",
        "sms_body": (
            "Dear {{ member.first_name }}, we have received your payment of "
            "{{ payment.amount|money }}{% if payment.reference %} (ref {{ payment.reference }})"
            "{% endif %}. Asante!"
        ),
        "email_subject": "Payment received: {{ payment.amount|money }}",
        "email_html": (
            "<p>Dear {{ member.first_name }},</p><p>Thank you: we have received your payment.</p>"
            + _table(
                ("Amount", "{{ payment.amount|money }}"),
                ("Reference", "{{ payment.reference or '-' }}"),
                ("Paid on", "{{ payment.paid_on|day }}"),
                ("For", "{{ payment.description }}"),
            )
        ),
        "email_text": (
            "Dear {{ member.first_name }},\n\nThank you: we have received your payment.\n\n"
            "Amount: {{ payment.amount|money }}\nReference: {{ payment.reference or '-' }}\n"
            "Paid on: {{ payment.paid_on|day }}\nFor: {{ payment.description }}" + _SIGN_TEXT
        ),
    },
    "repayment_due": {
        "name": "Repayment due",
        "sms_body": (
            "Dear {{ member.first_name }}, a loan repayment of {{ due.amount|money }} is due on "
            "{{ due.due_date|day }}. " + _PAY
        ),
        "email_subject": "Your loan repayment is due on {{ due.due_date|day }}",
        "email_html": (
            "<p>Dear {{ member.first_name }},</p>"
            "<p>A friendly reminder: your loan repayment is due in {{ due.days }} days.</p>"
            + _table(("Amount due", "{{ due.amount|money }}"), ("Due on", "{{ due.due_date|day }}"))
            + _PAY_HTML
        ),
        "email_text": (
            "Dear {{ member.first_name }},\n\nA friendly reminder: your loan repayment of "
            "{{ due.amount|money }} is due on {{ due.due_date|day }}.\n\n" + _PAY + _SIGN_TEXT
        ),
    },
    "repayment_overdue": {
        "name": "Repayment overdue",
        "sms_body": (
            "Dear {{ member.first_name }}, your loan repayment of {{ due.amount|money }} is "
            "{{ due.days }} day{{ 's' if due.days != 1 }} overdue. Please pay today to avoid "
            "penalties. " + _PAY
        ),
        "email_subject": "Your loan repayment is overdue",
        "email_html": (
            "<p>Dear {{ member.first_name }},</p>"
            "<p>Your loan repayment is overdue. Please pay today to avoid penalties, or talk to "
            "us{% if sacco.phone %} on {{ sacco.phone }}{% endif %} if you are having "
            "difficulty.</p>"
            + _table(
                ("Overdue amount", "{{ due.amount|money }}"),
                ("Due since", "{{ due.due_date|day }}"),
                ("Days overdue", "{{ due.days }}"),
            )
            + _PAY_HTML
        ),
        "email_text": (
            "Dear {{ member.first_name }},\n\nYour loan repayment of {{ due.amount|money }}, due "
            "on {{ due.due_date|day }}, is {{ due.days }} day{{ 's' if due.days != 1 }} overdue. "
            "Please pay today to avoid penalties, or talk to us{% if sacco.phone %} on "
            "{{ sacco.phone }}{% endif %} if you are having difficulty.\n\n" + _PAY + _SIGN_TEXT
        ),
    },
    "contribution_reminder": {
        "name": "Contribution reminder",
        "sms_body": (
            "Dear {{ member.first_name }}, a reminder to make your savings contribution this "
            "week. " + _PAY
        ),
        "email_subject": "A reminder to save this week",
        "email_html": (
            "<p>Dear {{ member.first_name }},</p>"
            "<p>We have not yet received your contribution for the week of "
            "{{ week.start|day }} to {{ week.end|day }}. Regular savings grow your deposits "
            "and how much you can borrow.</p>" + _PAY_HTML
        ),
        "email_text": (
            "Dear {{ member.first_name }},\n\nWe have not yet received your contribution for the "
            "week of {{ week.start|day }} to {{ week.end|day }}. Regular savings grow your "
            "deposits and how much you can borrow.\n\n" + _PAY + _SIGN_TEXT
        ),
    },
    "account_update": {
        "name": "Account update",
        "sms_body": (
            "Dear {{ member.first_name }}, your {{ sacco.name }} account was updated: "
            "{{ update.summary }} If this was not you, call us{% if sacco.phone %} on "
            "{{ sacco.phone }}{% endif %}."
        ),
        "email_subject": "Your account was updated",
        "email_html": (
            "<p>Dear {{ member.first_name }},</p><p>Your account was updated: "
            "{{ update.summary }}</p><p>If you did not ask for this change, contact us at once"
            "{% if sacco.phone %} on {{ sacco.phone }}{% endif %}.</p>"
        ),
        "email_text": (
            "Dear {{ member.first_name }},\n\nYour account was updated: {{ update.summary }}\n\n"
            "If you did not ask for this change, contact us at once{% if sacco.phone %} on "
            "{{ sacco.phone }}{% endif %}." + _SIGN_TEXT
        ),
    },
    "policy_change": {
        "name": "Policy change",
        "sms_body": (
            "{{ sacco.name }}: {{ notice.title }}. {{ notice.body }}"
            "{% if notice.effective_date %} From {{ notice.effective_date|day }}.{% endif %}"
        ),
        "email_subject": "{{ notice.title }}",
        "email_html": (
            "<p>Dear {{ member.first_name }},</p><p><strong>{{ notice.title }}</strong></p>"
            "<p>{{ notice.body }}</p>{% if notice.effective_date %}<p>This applies from "
            "{{ notice.effective_date|day }}.</p>{% endif %}"
        ),
        "email_text": (
            "Dear {{ member.first_name }},\n\n{{ notice.title }}\n\n{{ notice.body }}"
            "{% if notice.effective_date %}\n\nThis applies from {{ notice.effective_date|day }}."
            "{% endif %}" + _SIGN_TEXT
        ),
    },
    "maintenance_notice": {
        "name": "Maintenance notice",
        "sms_body": (
            "{{ sacco.name }}: {{ notice.title }}. {{ notice.body }}"
            "{% if notice.starts_at %} From {{ notice.starts_at|when }}"
            "{% if notice.ends_at %} to {{ notice.ends_at|when }}{% endif %}.{% endif %}"
        ),
        "email_subject": "{{ notice.title }}",
        "email_html": (
            "<p>Dear {{ member.first_name }},</p><p><strong>{{ notice.title }}</strong></p>"
            "<p>{{ notice.body }}</p>{% if notice.starts_at %}<p>When: "
            "{{ notice.starts_at|when }}{% if notice.ends_at %} to {{ notice.ends_at|when }}"
            "{% endif %}.</p>{% endif %}<p>We are sorry for any inconvenience.</p>"
        ),
        "email_text": (
            "Dear {{ member.first_name }},\n\n{{ notice.title }}\n\n{{ notice.body }}"
            "{% if notice.starts_at %}\n\nWhen: {{ notice.starts_at|when }}{% if notice.ends_at %}"
            " to {{ notice.ends_at|when }}{% endif %}.{% endif %}\n\nWe are sorry for any "
            "inconvenience." + _SIGN_TEXT
        ),
    },
    "admin_alert": {
        "name": "Administrator anomaly alert",
        "sms_body": (
            "{{ sacco.name }} ALERT: {{ alert.title }}. {{ alert.message }}"
            "{% if alert.suppressed %} (+{{ alert.suppressed }} similar){% endif %}"
        ),
        "email_subject": "[{{ sacco.name }} alert] {{ alert.title }}",
        "email_html": (
            "<p><strong>{{ alert.title }}</strong></p><p>{{ alert.message }}</p>"
            '{% if alert.details %}<table role="presentation" cellspacing="0" cellpadding="0" '
            'style="margin:0 0 16px">{% for name, value in alert.details|dictsort %}<tr><td '
            'style="padding:4px 12px 4px 0;color:#6b7280">{{ name }}</td><td style="padding:4px 0">'
            "{{ value }}</td></tr>{% endfor %}</table>{% endif %}"
            "{% if alert.suppressed %}<p>{{ alert.suppressed }} similar alert"
            "{{ 's' if alert.suppressed != 1 }} in the last interval were not sent separately."
            "</p>{% endif %}<p>Raised {{ alert.raised_at|when }}.</p>"
        ),
        "email_text": (
            "{{ alert.title }}\n\n{{ alert.message }}\n{% for name, value in alert.details|dictsort"
            " %}\n{{ name }}: {{ value }}{% endfor %}{% if alert.suppressed %}\n\n"
            "{{ alert.suppressed }} similar alert{{ 's' if alert.suppressed != 1 }} in the last "
            "interval were not sent separately.{% endif %}\n\nRaised {{ alert.raised_at|when }}."
        ),
    },
}
