"""What every form shares: `Form` (labels, no maxlength) and
`add_service_errors`, which puts a service's ValidationError on a form.
Forms are input shape only; the rules live in the services."""

from django import forms
from django.core.exceptions import ValidationError

from portal.forms.render import RENDERER


def add_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form: keyed messages on their
    field when the form has it, everything else at the top."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            target = field if field in form.fields else None
            for error in errors:
                form.add_error(target, error.messages)
    else:
        form.add_error(None, exc.messages)


class Form(forms.Form):
    """Labels without a trailing colon, and no `maxlength` in the page: the
    browser would cut a 65-character IAM name to 64 without a word and create
    a name nobody typed; the server says what is too long instead. Rendered
    by portal.forms.render (the same HTML, without a template per field)."""

    default_renderer = RENDERER

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.widget.attrs.pop("maxlength", None)
