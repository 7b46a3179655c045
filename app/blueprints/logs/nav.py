"""The Logs pages' sub-navigation: links to the pages that exist and the person may open."""

from flask import current_app, request

from app.auth import can
from app.blueprints.logs import bp

# (endpoint, label, prefixes of the endpoints that belong to the section)
SECTIONS = (
    ("logs.index", "Log", ("logs.index", "logs.entry")),
    ("logs.errors", "Errors", ("logs.errors",)),
    ("logs.performance", "Performance", ("logs.performance",)),
    ("logs.failed_jobs", "Failed jobs", ("logs.failed_job", "logs.retry", "logs.delete")),
)


@bp.context_processor
def logs_nav() -> dict:
    """`logs_nav`: (endpoint, label, current) for logs/_nav.html; a page that is not built yet,
    or that the person's role may not open, is left out."""
    links = []
    for endpoint, label, prefixes in SECTIONS:
        view = current_app.view_functions.get(endpoint)
        permission = getattr(view, "required_permission", None)
        if view is None or (permission and not can(permission)):
            continue
        links.append((endpoint, label, (request.endpoint or "").startswith(prefixes)))
    return {"logs_nav": links}
