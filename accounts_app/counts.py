"""Several counts in one SQL statement, each a scalar subquery of an ORM
queryset (so each still uses its partial index), compiled by the ORM once
per process: compiling a queryset costs more CPU than PostgreSQL spends
counting on an index, and a page with eight counts paid it eight times a view.

A value that changes between runs (the time) is a Param: the querysets are
built with its placeholder and the value is given when the statement runs."""

from collections.abc import Callable

from django.db import connection
from django.db.models import Field, QuerySet
from django.db.models.expressions import RawSQL


class Param:
    """A value given at each run, in querysets compiled once."""

    def __init__(self, name: str, output_field: Field):
        self.name = name
        self.output_field = output_field
        self.expression = RawSQL("%s", [self], output_field=output_field)


class Counts:
    """`Counts(build)`: `build()` returns {name: queryset}; calling the
    instance with the Params' values returns {name: count}."""

    def __init__(self, build: Callable[[], dict[str, QuerySet]]):
        self._build = build
        self._compiled = None

    def _compile(self):
        parts, params = [], []
        names = []
        for name, queryset in self._build().items():
            sql, part_params = queryset.order_by().values("pk").query.sql_with_params()
            parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS counted)")
            params.extend(part_params)
            names.append(name)
        return "SELECT " + ", ".join(parts), params, names

    def __call__(self, **values) -> dict[str, int]:
        if self._compiled is None:
            self._compiled = self._compile()
        sql, params, names = self._compiled
        given = [
            p.output_field.get_db_prep_value(values[p.name], connection)
            if isinstance(p, Param)
            else p
            for p in params
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, given)
            row = cursor.fetchone()
        return dict(zip(names, row, strict=True))
