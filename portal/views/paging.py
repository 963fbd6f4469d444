"""Pages of a list without a COUNT query when the first page says it all."""

from django.core.paginator import Page, Paginator
from django.db.models import Count, Window
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


def page_counted(rows, number: int, per_page: int) -> Page:
    """`Paginator(rows, per_page).get_page(number)` in one query: the page's
    rows each carry the length of the whole list (`COUNT(*) OVER ()`). For
    lists of tens or hundreds of rows, where the window costs PostgreSQL less
    than compiling and sending a second query costs Django (a page of the
    approvals queue: three lists)."""
    paginator = Paginator(rows, per_page)
    bottom = (number - 1) * per_page
    rows_read = list(
        rows.annotate(list_length=Window(Count("*")))[bottom : bottom + per_page]
    )
    if not rows_read and number > 1:
        # Past the end (an old link): the last page, as get_page does.
        return paginator.get_page(number)
    # A cached_property: set, not computed.
    paginator.count = rows_read[0].list_length if rows_read else 0
    return Page(rows_read, number, paginator)


def page_without_count(rows, request: HttpRequest, per_page: int) -> Page:
    """A page of a list too long to count on every view (the audit log, one
    row per change ever made): one row more than a page is read to know
    whether there is a next page, and no COUNT over the whole list. The page
    has no number of pages (templates/_pager_open.html)."""
    number = params.page(request)
    bottom = (number - 1) * per_page
    rows_read = list(rows[bottom : bottom + per_page + 1])
    if not rows_read and number > 1:
        # Past the end (an old link): the last page, as get_page does.
        return Paginator(rows, per_page).get_page(number)
    return OpenPage(rows_read[:per_page], number, len(rows_read) > per_page)


class OpenPage(Page):
    """A page that knows its neighbours, not the number of pages."""

    def __init__(self, object_list, number: int, more: bool):
        super().__init__(object_list, number, paginator=None)
        self.more = more

    def has_next(self) -> bool:
        return self.more

    def has_previous(self) -> bool:
        return self.number > 1

    def has_other_pages(self) -> bool:
        return self.more or self.number > 1

    def next_page_number(self) -> int:
        return self.number + 1

    def previous_page_number(self) -> int:
        return self.number - 1
