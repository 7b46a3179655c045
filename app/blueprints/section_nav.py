"""Sub-navigation of a section of pages (M-Pesa, Notifications, Logs): links to the pages that
exist and the person may open."""

from flask import current_app, request

from app.auth import can


def section_links(sections) -> list[tuple[str, str, bool]]:
    """(endpoint, label, current) for each (endpoint, label, prefix or prefixes of the endpoints
    that belong to it) in `sections`; a page not built yet, or that the person's role may not
    open, is left out."""
    links = []
    for endpoint, label, prefixes in sections:
        view = current_app.view_functions.get(endpoint)
        permission = getattr(view, "required_permission", None)
        if view is None or (permission and not can(permission)):
            continue
        links.append((endpoint, label, (request.endpoint or "").startswith(prefixes)))
    return links
