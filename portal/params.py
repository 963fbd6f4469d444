"""Query-string parameters, parsed the same way by every view.

Anyone can put anything in a query string (a pasted link, a scanner), so a bad
value must never reach int(), a date computation or the database as is. Bad
numbers and dates count as "not given" (or a form error); a NUL character never
reaches a view (portal.middleware.QueryStringGuardMiddleware answers 400).
Digits are ASCII digits only: `'²'.isdigit()` is true and `int('٣')` is 3.
"""

import re
from datetime import date

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest

_NUMBER = re.compile(r"[0-9]{1,18}")  # below 2**63: fits a bigint column

EARLIEST_DAY = date(1900, 1, 1)
# A day range runs to the next midnight: the day after must exist in every
# time zone (date.max + 1 day overflows).
LATEST_DAY = date(9998, 12, 31)


def integer(raw: str | None, *, minimum: int = 0) -> int | None:
    """A whole number written in ASCII digits, at least `minimum`; else None."""
    if raw is None or not _NUMBER.fullmatch(raw.strip()):
        return None
    value = int(raw)
    return value if value >= minimum else None


def page(request: HttpRequest, name: str = "page") -> int:
    """The page number for `Paginator.get_page`: 1 unless a positive number
    is given (get_page shows the last page for numbers past the end)."""
    return integer(request.GET.get(name), minimum=1) or 1


def integers(request: HttpRequest, name: str, *, limit: int = 100) -> list[int]:
    """Comma-separated ids, at most `limit` of them; anything else is skipped."""
    parts = request.GET.get(name, "").split(",", limit)[:limit]
    return [n for n in map(integer, parts) if n is not None]


def text(request: HttpRequest, name: str, *, max_length: int = 200) -> str:
    """Search text, stripped and cut to `max_length`. (A NUL character never
    gets this far: QueryStringGuardMiddleware answers 400.)"""
    return request.GET.get(name, "").strip()[:max_length]


class DayField(forms.DateField):
    """A day of a filter form: ASCII digits, between EARLIEST_DAY and
    LATEST_DAY, so the range around it can always be computed."""

    def to_python(self, value):
        if isinstance(value, str) and not value.isascii():
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        day = super().to_python(value)
        if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:
            raise ValidationError(
                f"Give a date from {EARLIEST_DAY:%Y-%m-%d} to {LATEST_DAY:%Y-%m-%d}.",
                code="range",
            )
        return day
