"""The staff portal's blueprints, registered in this order by create_app()."""

from app.blueprints.api_admin import bp as api_admin_bp
from app.blueprints.auth import bp as auth_bp
from app.blueprints.contributions import bp as contributions_bp
from app.blueprints.dashboard import bp as dashboard_bp
from app.blueprints.loans import bp as loans_bp
from app.blueprints.logs import bp as logs_bp
from app.blueprints.members import bp as members_bp
from app.blueprints.mpesa_admin import bp as mpesa_admin_bp
from app.blueprints.notify_admin import bp as notify_admin_bp
from app.blueprints.repayments import bp as repayments_bp

STAFF_BLUEPRINTS = [
    auth_bp,
    dashboard_bp,
    members_bp,
    loans_bp,
    repayments_bp,
    contributions_bp,
    api_admin_bp,
    mpesa_admin_bp,
    notify_admin_bp,
    logs_bp,
]
