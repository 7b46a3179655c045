"""The Notifications pages' sub-navigation: links to the pages that exist and the person may open."""

from app.blueprints.notify_admin import bp
from app.blueprints.section_nav import section_links

# (endpoint, label, prefix of the endpoints that belong to the section)
SECTIONS = (
    ("notify_admin.index", "Overview", "notify_admin.index"),
    ("notify_admin.log", "Log", "notify_admin.log"),
    ("notify_admin.templates", "Templates", "notify_admin.template"),
    ("notify_admin.broadcasts", "Broadcasts", "notify_admin.broadcast"),
    ("notify_admin.suppressions", "Suppression list", "notify_admin.suppression"),
    ("notify_admin.test_message", "Test message", "notify_admin.test_message"),
    ("notify_admin.settings", "Settings", "notify_admin.settings"),
)


@bp.context_processor
def notify_nav() -> dict:
    """`notify_nav`: (endpoint, label, current) for notify_admin/_nav.html; a page that is not
    built yet, or that the person's role may not open, is left out."""
    return {"notify_nav": section_links(SECTIONS)}
