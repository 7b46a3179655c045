from app.auth import requires
from app.blueprints.loans import bp


@bp.get("/")
@requires("read")
def index():
    """Placeholder until the page is built."""
    return "loans"
