from flask import redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from app.auth import safe_next
from app.blueprints.auth import bp
from app.blueprints.auth.forms import LoginForm
from app.services import staff
from app.services.errors import ServiceError


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign-in form; refuses every attempt for a while after repeated failures."""
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = LoginForm()
    error = None
    status = 200
    if form.validate_on_submit():
        try:
            user = staff.authenticate(
                form.email.data, form.password.data, request.remote_addr or ""
            )
        except ServiceError as exc:
            error, status = exc.message, (429 if isinstance(exc, staff.LockedOut) else 401)
        else:
            login_user(user)
            return redirect(safe_next(request.args.get("next")) or url_for("dashboard.index"))
    elif form.is_submitted():
        status = 422
    return render_template("auth/login.html", form=form, error=error), status


@bp.post("/logout")
@login_required
def logout():
    """Sign out (POST with a CSRF token, so no other site can sign staff out)."""
    logout_user()
    return redirect(url_for("auth.login"))
