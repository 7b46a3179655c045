"""The M-Pesa pages' sub-navigation: links to the pages that exist and the person may open."""

from app.blueprints.mpesa_admin import bp
from app.blueprints.section_nav import section_links

# (endpoint, label, prefix of the endpoints that belong to the section)
SECTIONS = (
    ("mpesa_admin.index", "Overview", "mpesa_admin.index"),
    ("mpesa_admin.transactions", "Transactions", "mpesa_admin.transaction"),
    ("mpesa_admin.reconciliation_index", "Reconciliation", "mpesa_admin.reconciliation"),
    ("mpesa_admin.suspense_index", "Suspense queue", "mpesa_admin.suspense"),
    ("mpesa_admin.settings", "Settings", "mpesa_admin.settings"),
)


@bp.context_processor
def mpesa_nav() -> dict:
    """`mpesa_nav`: (endpoint, label, current) for mpesa_admin/_nav.html; a page that is not
    built yet, or that the person's role may not open, is left out."""
    return {"mpesa_nav": section_links(SECTIONS)}
