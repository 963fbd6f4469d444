"""Form HTML without the template engine: the same bytes as Django's form
templates (field, label, error list, inputs, select, textarea), written in
Python, because through the template engine they were most of the time of
the pages with forms (a 100-project select: a template per option).

Each template is used only while Django's own file is the one this module
was written against (checked once, at first use); any other template, or a
changed one after an upgrade, goes through the template engine as before.
tests/test_form_render.py renders every form both ways and compares."""

from functools import cache
from pathlib import Path

import django.forms
from django.forms.renderers import DjangoTemplates
from django.template.base import render_value_in_context
from django.template.defaultfilters import stringformat
from django.utils.safestring import SafeData, mark_safe

TEMPLATES = Path(django.forms.__file__).parent / "templates"


class _Context:
    """What render_value_in_context reads of a template Context (its
    defaults: autoescape on, the settings' localisation and time zone)."""

    autoescape = True
    use_l10n = None
    use_tz = None


_CONTEXT = _Context()


def _out(value) -> str:
    """`{{ value }}`."""
    return render_value_in_context(value, _CONTEXT)


def _formatted(value) -> str:
    """`{{ value|stringformat:'s' }}` (a safe value stays unescaped)."""
    text = stringformat(value, "s")
    return _out(mark_safe(text) if isinstance(value, SafeData) else text)


def _attrs(attrs) -> str:
    """widgets/attrs.html and attrs.html."""
    parts = []
    for name, value in (attrs or {}).items():
        if value is False:
            continue
        parts.append(" " + _out(name))
        if value is not True:
            parts.append(f'="{_formatted(value)}"')
    return "".join(parts)


def _input(context) -> str:
    widget = context["widget"]
    value = ""
    if widget["value"] != None:  # noqa: E711 (the template's `!= None`)
        value = f' value="{_formatted(widget["value"])}"'
    return (
        f'<input type="{_out(widget["type"])}" name="{_out(widget["name"])}"'
        f"{value}{_attrs(widget['attrs'])}>"
    )


def _option(widget) -> str:
    return (
        f'<option value="{_formatted(widget["value"])}"{_attrs(widget["attrs"])}>'
        f"{_out(widget['label'])}</option>\n"
    )


def _select(context) -> str | None:
    widget = context["widget"]
    parts = [f'<select name="{_out(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{_out(group_name)}">')
        for option in group_choices:
            if option["template_name"] != OPTION:
                return None
            parts.append("\n  " + _option(option))
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return "".join(parts)


def _textarea(context) -> str:
    widget = context["widget"]
    value = _out(widget["value"]) if widget["value"] else ""
    return (
        f'<textarea name="{_out(widget["name"])}"{_attrs(widget["attrs"])}>\n'
        f"{value}</textarea>"
    )


def _label(context) -> str:
    label = _out(context["label"])
    if not context["use_tag"]:
        return label.strip()
    tag = _out(context["tag"])
    return f"<{tag}{_attrs(context['attrs'])}>{label}</{tag}>"


def _errors(context) -> str:
    errors = context["errors"]
    if not errors:
        return ""
    field_id = f' id="{_out(errors.field_id)}_error"' if errors.field_id else ""
    items = "".join(f"<li>{_out(error)}</li>" for error in errors)
    return f'<ul class="{_out(context["error_class"])}"{field_id}>{items}</ul>'


def _field(context) -> str:
    field = context["field"]
    if field.use_fieldset:
        described = field.aria_describedby
        aria = f' aria-describedby="{_out(described)}"' if described else ""
        legend = _out(field.legend_tag()) if field.label else ""
        head = f"\n  <fieldset{aria}>\n  {legend}\n"
    else:
        head = f"\n  {_out(field.label_tag()) if field.label else ''}\n"
    help_text = ""
    if field.help_text:
        helper = f' id="{_out(field.auto_id)}_helptext"' if field.auto_id else ""
        text = _out(mark_safe(str(field.help_text)))
        help_text = f'<div class="helptext"{helper}>{text}</div>'
    tail = "</fieldset>" if field.use_fieldset else ""
    return (
        f"{head}\n{help_text}\n{_out(field.errors)}\n{_out(field)}{tail}\n"
    ).strip()


OPTION = "django/forms/widgets/select_option.html"
INPUT = '{% include "django/forms/widgets/input.html" %}'

# Each template this module writes, and the source it was written against.
SOURCES = {
    "django/forms/field.html": (
        _field,
        "{% if field.use_fieldset %}\n"
        '  <fieldset{% if field.aria_describedby %} aria-describedby="'
        '{{ field.aria_describedby }}"{% endif %}>\n'
        "  {% if field.label %}{{ field.legend_tag }}{% endif %}\n"
        "{% else %}\n"
        "  {% if field.label %}{{ field.label_tag }}{% endif %}\n"
        "{% endif %}\n"
        '{% if field.help_text %}<div class="helptext"{% if field.auto_id %} id="'
        '{{ field.auto_id }}_helptext"{% endif %}>{{ field.help_text|safe }}</div>'
        "{% endif %}\n"
        "{{ field.errors }}\n"
        "{{ field }}{% if field.use_fieldset %}</fieldset>{% endif %}\n",
    ),
    "django/forms/label.html": (
        _label,
        "{% if use_tag %}<{{ tag }}{% include 'django/forms/attrs.html' %}>"
        "{{ label }}</{{ tag }}>{% else %}{{ label }}{% endif %}\n",
    ),
    "django/forms/errors/list/default.html": (
        _errors,
        '{% include "django/forms/errors/list/ul.html" %}',
    ),
    "django/forms/widgets/input.html": (
        _input,
        '<input type="{{ widget.type }}" name="{{ widget.name }}"'
        "{% if widget.value != None %} value=\"{{ widget.value|stringformat:'s' }}\""
        '{% endif %}{% include "django/forms/widgets/attrs.html" %}>\n',
    ),
    "django/forms/widgets/select.html": (
        _select,
        '<select name="{{ widget.name }}"{% include "django/forms/widgets/attrs.html"'
        " %}>{% for group_name, group_choices, group_index in widget.optgroups %}"
        "{% if group_name %}\n"
        '  <optgroup label="{{ group_name }}">{% endif %}'
        "{% for option in group_choices %}\n"
        "  {% include option.template_name with widget=option %}{% endfor %}"
        "{% if group_name %}\n"
        "  </optgroup>{% endif %}{% endfor %}\n"
        "</select>\n",
    ),
    "django/forms/widgets/textarea.html": (
        _textarea,
        '<textarea name="{{ widget.name }}"{% include '
        '"django/forms/widgets/attrs.html" %}>\n'
        "{% if widget.value %}{{ widget.value }}{% endif %}</textarea>\n",
    ),
}
# Templates these depend on (an include): written above, so checked too.
INCLUDED = {
    "django/forms/attrs.html": (
        "{% for name, value in attrs.items %}{% if value is not False %} "
        "{{ name }}{% if value is not True %}=\"{{ value|stringformat:'s' }}\""
        "{% endif %}{% endif %}{% endfor %}"
    ),
    "django/forms/widgets/attrs.html": (
        "{% for name, value in widget.attrs.items %}{% if value is not False %} "
        "{{ name }}{% if value is not True %}=\"{{ value|stringformat:'s' }}\""
        "{% endif %}{% endif %}{% endfor %}"
    ),
    "django/forms/errors/list/ul.html": (
        '{% if errors %}<ul class="{{ error_class }}"{% if errors.field_id %} id="'
        '{{ errors.field_id }}_error"{% endif %}>{% for error in errors %}<li>'
        "{{ error }}</li>{% endfor %}</ul>{% endif %}"
    ),
    OPTION: (
        "<option value=\"{{ widget.value|stringformat:'s' }}\"{% include "
        '"django/forms/widgets/attrs.html" %}>{{ widget.label }}</option>\n'
    ),
}
# The inputs whose template is input.html and nothing else.
INPUTS = [
    "checkbox",
    "color",
    "date",
    "datetime",
    "email",
    "hidden",
    "number",
    "password",
    "search",
    "tel",
    "text",
    "time",
    "url",
]


def _source(name: str) -> str | None:
    try:
        return (TEMPLATES / name).read_text()
    except OSError:
        return None


@cache
def writers() -> dict:
    """The templates written here whose source (and includes) Django still
    ships unchanged, by name."""
    if any(_source(name) != text for name, text in INCLUDED.items()):
        return {}
    found = {
        name: write for name, (write, text) in SOURCES.items() if _source(name) == text
    }
    if "django/forms/widgets/input.html" in found:
        for kind in INPUTS:
            name = f"django/forms/widgets/{kind}.html"
            if (_source(name) or "").strip() == INPUT:
                found[name] = _input
    return found


class FastRenderer(DjangoTemplates):
    """Django's form renderer, with the templates above written in Python."""

    def render(self, template_name, context, request=None):
        write = writers().get(template_name)
        if write is not None:
            html = write(context)
            if html is not None:
                return html
        return super().render(template_name, context, request=request)


RENDERER = FastRenderer()
