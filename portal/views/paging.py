"""Pages of a list without a COUNT query when the first page says it all."""

from django.core.paginator import Page, Paginator
from django.http import HttpRequest

from portal import params


def page_of(rows, request: HttpRequest, per_page: int) -> Page:
    """`Paginator(rows, per_page).get_page(?page=)`, but the first page reads
    its rows first: fewer than a page of them is the whole list, so the COUNT
    query is left out (a search with a few results, a project's few roles),
    and a full first page is not read twice."""
    number = params.page(request)
    paginator = Paginator(rows, per_page)
    if number > 1:
        return paginator.get_page(number)
    first = list(rows[:per_page])
    if len(first) < per_page:
        paginator.count = len(first)  # a cached_property: set, not computed
    return Page(first, 1, paginator)
