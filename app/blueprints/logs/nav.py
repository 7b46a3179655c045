"""The Logs pages' sub-navigation: links to the pages that exist and the person may open."""

from app.blueprints.logs import bp
from app.blueprints.section_nav import section_links

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
    return {"logs_nav": section_links(SECTIONS)}
