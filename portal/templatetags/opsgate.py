"""Template filters every template has (TEMPLATES builtins)."""

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def ago(value: datetime | None, now: datetime | None = None) -> str:
    """"just now" under a minute, "3 minutes ago" after: never "0 minutes ago"."""
    if not value:
        return ""
    now = now or timezone.now()
    if (now - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value, now)} ago"


@register.filter
def waited(value: datetime | None, now: datetime | None = None) -> str:
    """How long something has waited: "under a minute", then "3 minutes"
    (timesince alone says "0 minutes")."""
    if not value:
        return ""
    now = now or timezone.now()
    if (now - value).total_seconds() < 60:
        return "under a minute"
    return timesince(value, now)
