"""HTMX helpers: one route serves the full page, or only its partial when htmx asks."""

from flask import make_response, render_template, request


def is_htmx() -> bool:
    # History restores are full-page loads even though htmx sends the header.
    return request.headers.get("HX-Request") == "true" and not request.headers.get(
        "HX-History-Restore-Request"
    )


def render_view(page: str, partial: str, status: int = 200, /, **context):
    """The partial for an htmx request, else the full page (which includes that partial).
    Positional-only parameters leave every keyword (`page`, `status`...) to the template."""
    if is_htmx():
        return render_partial(partial, status, **context)
    response = make_response(render_template(page, **context), status)
    response.vary.add("HX-Request")
    return response


def render_partial(partial: str, status: int = 200, /, **context):
    """The partial, plus the flash area out of band so that it shows this action's messages
    (and no longer the previous page's)."""
    body = render_template(partial, **context) + render_template("_flash.html", oob=True)
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response


def hx_redirect(url: str, status: int = 200):
    """Send the browser to `url`: HX-Redirect for htmx, a 303 otherwise."""
    if is_htmx():
        response = make_response("", status)
        response.headers["HX-Redirect"] = url
        return response
    response = make_response("", 303)
    response.headers["Location"] = url
    return response
