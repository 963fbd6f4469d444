"""Admin pages of access reviews (issue 13): the list, starting one, a
review's results."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from accounts_app.models import AccessReview
from accounts_app.services import access_reviews
from portal.forms.base import add_service_errors
from portal.forms.reviews import AccessReviewForm
from portal.views.staff import staff_required


@staff_required
def reviews(request: HttpRequest) -> HttpResponse:
    form = AccessReviewForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            review = access_reviews.review_start(
                actor=request.user,
                deadline=data["deadline"],
                min_age_days=data["min_age_days"],
                projects=list(data["projects"]),
                on_deadline=data["on_deadline"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                f"Access review #{review.pk} started with "
                f"{review.items.count()} grants.",
            )
            return redirect("review_detail", pk=review.pk)
    rows = AccessReview.objects.annotate(
        total=Count("items"),
        open=Count("items", filter=Q(items__decision="")),
    ).order_by("-created_at")[:50]
    return render(request, "staff/reviews.html", {"form": form, "reviews": rows})


@staff_required
@require_GET
def review_detail(request: HttpRequest, pk: int) -> HttpResponse:
    review = get_object_or_404(AccessReview, pk=pk)
    if request.GET.get("format") == "csv":
        response = HttpResponse(
            access_reviews.review_csv(review), content_type="text/csv; charset=utf-8"
        )
        name = f"opsgate-access-review-{review.pk}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    items = review.items.select_related(
        "grant__role__project", "grant__requester", "decided_by"
    )
    return render(
        request, "staff/review_detail.html", {"review": review, "items": items}
    )
