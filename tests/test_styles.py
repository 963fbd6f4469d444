"""The portal's one stylesheet styles every input the portal's forms render:
an input type it forgets shows as the browser's small default box beside
full-width fields (the request page's "Start later" did)."""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

from django import forms
from django.forms import widgets

import portal.forms
from portal import mfa_forms

CSS = Path(portal.forms.__file__).parents[1] / "static/opsgate/opsgate.css"
# Laid out on purpose as a box and a label side by side (.check, fieldsets).
UNBOXED = {"checkbox", "radio", "hidden"}


def _portal_forms() -> list[type[forms.BaseForm]]:
    modules = [mfa_forms] + [
        importlib.import_module(f"portal.forms.{m.name}")
        for m in pkgutil.iter_modules(portal.forms.__path__)
    ]
    return [
        cls
        for module in modules
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, forms.BaseForm) and cls.__module__ == module.__name__
    ]


def _input_types() -> dict[str, str]:
    found = {}
    for form in _portal_forms():
        for name, field in form.base_fields.items():
            widget = field.widget
            if not isinstance(widget, widgets.Input):  # select, textarea: styled
                continue
            kind = widget.attrs.get("type", widget.input_type)
            if kind not in UNBOXED:
                found.setdefault(kind, f"{form.__name__}.{name}")
    return found


def test_the_forms_render_more_than_text_inputs():
    # Guards the test below against a walk that finds nothing.
    kinds = _input_types()
    assert {"text", "email", "datetime-local", "date"} <= set(kinds)


def test_every_input_type_of_the_portals_forms_is_styled():
    rule = re.search(r"(input\[type=text\][^{]*)\{", CSS.read_text()).group(1)
    styled = set(re.findall(r"input\[type=([\w-]+)\]", rule))
    missing = {k: where for k, where in _input_types().items() if k not in styled}
    assert missing == {}
