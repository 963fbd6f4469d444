from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from provisioning.models import AccessRequest


@login_required
def home(request: HttpRequest) -> HttpResponse:
    requests = (
        AccessRequest.objects.filter(requester__user=request.user)
        .select_related("role__project", "requester")
        .order_by("-created_at")[:50]
    )
    return render(request, "home.html", {"access_requests": requests})


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
