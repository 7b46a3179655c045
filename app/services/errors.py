"""Errors a service raises for bad input or an illegal request; views turn them into 4xx."""


class ServiceError(Exception):
    """A request the rules refuse; `message` is fit to show to the person who made it."""

    status_code = 400

    def __init__(self, message: str, errors: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class ValidationFailed(ServiceError):
    """Some fields are invalid; `errors` maps each field name to what is wrong with it."""

    status_code = 422

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()), errors)


class NotFound(ServiceError):
    status_code = 404


class IllegalTransition(ServiceError):
    """The record's state does not allow this action (for example approving a declined loan)."""

    status_code = 409
