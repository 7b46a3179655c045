"""The M-Pesa pages' sub-navigation: links to the pages that exist and the person may open."""

from flask import current_app, request

from app.auth import can
from app.blueprints.mpesa_admin import bp

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
    links = []
    for endpoint, label, prefix in SECTIONS:
        view = current_app.view_functions.get(endpoint)
        permission = getattr(view, "required_permission", None)
        if view is None or (permission and not can(permission)):
            continue
        links.append((endpoint, label, (request.endpoint or "").startswith(prefix)))
    return {"mpesa_nav": links}
