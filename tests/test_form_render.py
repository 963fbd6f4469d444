"""portal.forms.render writes the same HTML as Django's form templates: every
form of the portal and a form of every widget kind, unbound and with errors,
rendered both ways and compared byte for byte."""

from datetime import date, datetime

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from portal.forms import (
    accounts,
    approvals,
    audit,
    drift,
    people,
    projects,
    requests,
    reviews,
)
from portal.forms.base import Form
from portal.forms.render import RENDERER, writers

TEMPLATE_ENGINE = DjangoTemplates()


def test_every_template_it_writes_is_still_djangos():
    """A Django upgrade that changes one of these templates turns its
    writer off (the template engine renders it): this says which."""
    assert set(writers()) >= {
        "django/forms/field.html",
        "django/forms/label.html",
        "django/forms/errors/list/default.html",
        "django/forms/widgets/input.html",
        "django/forms/widgets/text.html",
        "django/forms/widgets/number.html",
        "django/forms/widgets/checkbox.html",
        "django/forms/widgets/select.html",
        "django/forms/widgets/textarea.html",
    }


class EveryWidget(Form):
    text = forms.CharField(
        label=mark_safe("<b>Bold</b> label?"),
        help_text=gettext_lazy("Lazy <help> & more"),
        initial='say "hi" <now> & \'then\'',
    )
    number = forms.IntegerField(min_value=1, max_value=12000, initial=10000)
    email = forms.EmailField(required=False, label="E-mail:")
    url = forms.URLField(required=False, label="", assume_scheme="https")
    secret = forms.CharField(widget=forms.PasswordInput(render_value=True))
    hidden = forms.CharField(widget=forms.HiddenInput, initial="h&v")
    day = forms.DateField(initial=date(2026, 1, 2), widget=forms.DateInput)
    moment = forms.DateTimeField(initial=datetime(2026, 1, 2, 3, 4))
    flag = forms.BooleanField(required=False, initial=True)
    off = forms.BooleanField(required=False)
    text_area = forms.CharField(widget=forms.Textarea, initial="a\n<b>\n& c")
    empty_area = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    choice = forms.ChoiceField(
        choices=[
            ("", "None <yet>"),
            ("Group & co", [("a", "A"), ("b", "B & b")]),
            (3, 3000),
        ],
        initial="b",
    )
    many = forms.MultipleChoiceField(
        choices=[("x", "X"), ("y", "Y")], initial=["x", "y"], required=False
    )
    maybe = forms.NullBooleanField()
    radio = forms.ChoiceField(
        widget=forms.RadioSelect, choices=[("1", "One"), ("2", "Two")]
    )
    boxes = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        choices=[("1", "One"), ("2", "Two")],
        required=False,
    )
    attrs = forms.CharField(
        widget=forms.TextInput(
            attrs={"data-x": "<q>", "autofocus": True, "hidden": False, "size": 3}
        ),
        required=False,
    )


BAD = {
    "text": "",
    "number": "x",
    "email": "no",
    "url": "nope",
    "day": "2026-13-01",
    "moment": "soon",
    "choice": "zz",
    "many": ["q"],
    "radio": "<9>",
    "attrs": '"quoted" <x> & y',
}


def _forms(payments, deploy_role):
    plain = [
        accounts.AwsAccountForm,
        accounts.DiscoverForm,
        approvals.QueueFilterForm,
        approvals.DecidedFilterForm,
        approvals.BreakGlassReviewForm,
        audit.AuditFilterForm,
        drift.DriftFilterForm,
        people.PersonForm,
        people.OffboardForm,
        projects.ProjectForm,
        projects.ProjectEditForm,
        projects.RolePrincipalsForm,
        projects.RoleForm,
        projects.ProjectFilterForm,
        projects.ProjectRulesForm,
        projects.RoleRulesForm,
        projects.BreakGlassSettingsForm,
        projects.WebhooksForm,
        projects.AutoRuleForm,
        requests.ProjectChoiceForm,
        reviews.AccessReviewForm,
        reviews.ReviewItemForm,
        EveryWidget,
    ]
    found = [(form, {}) for form in plain]
    found += [
        (requests.AccessRequestForm, {"project": payments}),
        (requests.BreakGlassForm, {"project": payments}),
        (approvals.DecisionForm, {}),
    ]
    return found


def _rendered(form) -> list[str]:
    out = [str(form), str(form.non_field_errors())]
    for field in form:
        out += [
            str(field.as_field_group()),
            str(field),
            str(field.label_tag()),
            str(field.legend_tag()),
            str(field.errors),
        ]
    return out


@pytest.mark.django_db
@pytest.mark.parametrize("bound", [False, True], ids=["unbound", "with errors"])
def test_forms_render_as_djangos_templates_do(payments, deploy_role, bound):
    for form_class, kwargs in _forms(payments, deploy_role):
        data = ({**BAD, "project": "x<y"} if bound else None,)
        fast = form_class(*data, renderer=RENDERER, **kwargs)
        slow = form_class(*data, renderer=TEMPLATE_ENGINE, **kwargs)
        if bound:
            fast.is_valid(), slow.is_valid()
        assert _rendered(fast) == _rendered(slow), form_class.__name__


def test_the_portals_forms_use_it():
    assert EveryWidget().renderer is RENDERER
