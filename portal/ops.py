"""Operations endpoints (issue 21): /healthz for load balancers and compose,
/metrics for Prometheus.

/metrics is computed at scrape time from the database (backlog, errors, the
oldest pending sync, approval-to-active latency, drift) and from counters in
the shared cache (failed sign-ins, reconcile durations), in a registry made for
the scrape: whichever gunicorn worker answers, the numbers are the same, and no
prometheus_client multiprocess directory has to be shared between the web and
worker containers."""

import hmac
import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, F, Min, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from accounts_app import counters
from accounts_app.models import AccessRequest, AwsAccount, IamUser, OperationRole
from provisioning.models import Drift
from provisioning.reconcile import reconcile_seconds_key

log = logging.getLogger(__name__)

# --- /healthz ---------------------------------------------------------------------


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    key = "opsgate:healthz"
    token = uuid.uuid4().hex
    cache.set(key, token, timeout=30)
    if cache.get(key) != token:
        raise RuntimeError("the cache did not keep a value")


CHECKS = {"database": _check_database, "cache": _check_cache}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the shared cache answer, 503 naming the one
    that does not. No authentication; two round trips; no detail of the error
    beyond its type (it may name hosts)."""
    checks = {}
    for name, check in CHECKS.items():
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:
            log.warning("healthz: %s failed: %s", name, exc)
            checks[name] = f"error: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if ok else "error", "checks": checks},
        status=200 if ok else 503,
    )


# --- /metrics ---------------------------------------------------------------------

# Approval-to-active latency: grants provisioned within this window.
LATENCY_WINDOW = timedelta(hours=24)
LATENCY_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

SYNCED = {
    "account": AwsAccount,
    "iam_user": IamUser,
    "role": OperationRole,
}


def _account_of(model) -> str:
    return "pk" if model is AwsAccount else "account_id"


class DatabaseCollector:
    """Gauges read from the database when Prometheus scrapes."""

    def __init__(self, now=None) -> None:
        self.now = now or timezone.now()

    def collect(self):
        names = dict(AwsAccount.objects.values_list("pk", "name"))
        yield from self._sync(names)
        yield self._latency()
        yield from self._accounts(names)
        yield from self._counters(names)

    def _sync(self, names: dict):
        behind = GaugeMetricFamily(
            "opsgate_sync_behind",
            "Objects whose applied version is behind the desired one (waiting "
            "for the worker or retrying), per account and kind.",
            labels=["account", "kind"],
        )
        errors = GaugeMetricFamily(
            "opsgate_sync_errors",
            "Objects stopped by a permanent error (a person must act).",
            labels=["account", "kind"],
        )
        oldest = GaugeMetricFamily(
            "opsgate_sync_oldest_pending_seconds",
            "Age of the oldest pending sync request, per account (0: none).",
            labels=["account"],
        )
        ages: dict[str, float] = {names[pk]: 0.0 for pk in names}
        for kind, model in SYNCED.items():
            key = _account_of(model)
            rows = (
                model.objects.values(key)
                .annotate(
                    behind=Count(
                        "pk",
                        filter=Q(applied_version__lt=F("desired_version"))
                        & Q(error_is_permanent=False),
                    ),
                    errors=Count("pk", filter=Q(error_is_permanent=True)),
                    oldest=Min(
                        "sync_requested_at",
                        filter=Q(applied_version__lt=F("desired_version"))
                        & Q(error_is_permanent=False),
                    ),
                )
                .order_by()
            )
            seen = set()
            for row in rows:
                account = names.get(row[key], str(row[key]))
                seen.add(account)
                behind.add_metric([account, kind], row["behind"])
                errors.add_metric([account, kind], row["errors"])
                if row["oldest"] is not None:
                    age = (self.now - row["oldest"]).total_seconds()
                    ages[account] = max(ages.get(account, 0.0), age)
            for account in set(names.values()) - seen:
                behind.add_metric([account, kind], 0)
                errors.add_metric([account, kind], 0)
        for account, age in sorted(ages.items()):
            oldest.add_metric([account], max(age, 0.0))
        yield behind
        yield errors
        yield oldest

    def _latency(self):
        """A gauge histogram: grants that became active in the last 24 hours,
        by the time from the (last) approval to the role's trust listing them."""
        rows = AccessRequest.objects.filter(
            provisioned_at__gte=self.now - LATENCY_WINDOW,
            decided_at__isnull=False,
            provisioned_at__isnull=False,
        ).values_list("decided_at", "provisioned_at")
        seconds = [max((p - d).total_seconds(), 0.0) for d, p in rows]
        buckets = [
            (str(b), sum(1 for s in seconds if s <= b)) for b in LATENCY_BUCKETS
        ] + [("+Inf", len(seconds))]
        family = GaugeHistogramMetricFamily(
            "opsgate_approval_to_active_seconds",
            "Approval to active (role trust updated) for grants provisioned in "
            "the last 24 hours.",
        )
        family.add_metric([], buckets, gsum_value=sum(seconds))
        return family

    def _accounts(self, names: dict):
        drift = GaugeMetricFamily(
            "opsgate_drift_open",
            "Open drift found by reconcile, per account.",
            labels=["account"],
        )
        open_rows = dict(
            Drift.objects.filter(resolved_at__isnull=True)
            .values("account_id")
            .annotate(n=Count("pk"))
            .values_list("account_id", "n")
        )
        last = GaugeMetricFamily(
            "opsgate_reconcile_last_timestamp_seconds",
            "When each account was last reconciled (Unix time; 0: never).",
            labels=["account"],
        )
        unreachable = GaugeMetricFamily(
            "opsgate_account_unreachable",
            "1 when the last attempt to reach the account failed.",
            labels=["account"],
        )
        for pk, name, at, error in AwsAccount.objects.values_list(
            "pk", "name", "last_reconciled_at", "reach_error"
        ):
            drift.add_metric([name], open_rows.get(pk, 0))
            last.add_metric([name], at.timestamp() if at else 0)
            unreachable.add_metric([name], 1 if error else 0)
        yield drift
        yield last
        yield unreachable

    def _counters(self, names: dict):
        wanted = [counters.SIGN_IN_FAILURES] + [
            reconcile_seconds_key(pk) for pk in names
        ]
        values = counters.values_read(wanted)
        failures = CounterMetricFamily(
            "opsgate_sign_in_failures",
            "Failed sign-ins (wrong password or unknown user), counted by every "
            "web worker in the shared cache (reset when the cache is emptied).",
            value=values.get(counters.SIGN_IN_FAILURES, 0),
        )
        duration = GaugeMetricFamily(
            "opsgate_reconcile_duration_seconds",
            "How long each account's last completed reconcile took.",
            labels=["account"],
        )
        for pk, name in names.items():
            key = reconcile_seconds_key(pk)
            if key in values:
                duration.add_metric([name], values[key])
        return [failures, duration]


def _authorized(request: HttpRequest) -> bool:
    token = settings.OPSGATE_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(
        given.encode(), f"Bearer {token}".encode()
    )


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, only with `Authorization: Bearer
    $OPSGATE_METRICS_TOKEN`; 404 while no token is set (off by default)."""
    if not settings.OPSGATE_METRICS_TOKEN:
        return HttpResponse("Not found.", status=404, content_type="text/plain")
    if not _authorized(request):
        response = HttpResponse("Unauthorized.", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="opsgate-metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class OpsEndpointsMiddleware:
    """Answers /healthz and /metrics first, before the Host check and the
    HTTPS redirect: compose's health check and Prometheus reach the container
    by its internal name over plain HTTP. Neither answer builds a URL from the
    Host header; /metrics has its own token."""

    ROUTES = {"/healthz": healthz, "/metrics": metrics}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = self.ROUTES.get(request.path_info)
        if view is not None:
            return view(request)
        return self.get_response(request)
