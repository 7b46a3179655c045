"""Form helpers shared by the portal's blueprints."""


class ServiceErrorsMixin:
    """For forms whose rules live in a service: shows a ValidationFailed's messages."""

    def show_errors(self, errors: dict[str, str], aliases: dict[str, str] | None = None) -> None:
        """Put each service error next to its field (`aliases` maps a service's field name to
        the form's); any other goes to the form's own list, shown above the form."""
        for name, message in errors.items():
            field = self._fields.get((aliases or {}).get(name, name))
            if field is not None and field.name != "csrf_token":
                field.errors = [message]
            else:
                self.form_errors.append(message)


def without_nul(value):
    """A form filter: PostgreSQL refuses NUL characters in text, so they are dropped and odd
    input is a 422, never a 500."""
    return value.replace("\x00", "") if isinstance(value, str) else value


def stripped_without_nul(value):
    """without_nul, then surrounding spaces stripped (filter fields)."""
    value = without_nul(value)
    return value.strip() if isinstance(value, str) else value
