from django.contrib import admin
from django.urls import include, path

from portal import ops
from portal.api.views import api
from portal.views import (
    accounts,
    approvals,
    audit,
    dashboard,
    demo,
    people,
    project_settings,
    projects,
    requests,
    reviews,
    tokens,
)

urlpatterns = [
    path("", requests.home, name="home"),
    path("request/", requests.request_access, name="request_access"),
    path(
        "request/break-glass",
        requests.break_glass_activate,
        name="break_glass_activate",
    ),
    path("requests/status.json", requests.request_status, name="request_status"),
    path("requests/<int:pk>/cancel", requests.request_cancel, name="request_cancel"),
    path("requests/<int:pk>/done", requests.request_done, name="request_done"),
    path("requests/<int:pk>/check", requests.request_check, name="request_check"),
    path("approvals/", approvals.approvals, name="approvals"),
    path("approvals/decided/", approvals.decided, name="approvals_decided"),
    path("approvals/<int:pk>/decide", approvals.decide, name="decide"),
    path("approvals/<int:pk>/revoke", approvals.revoke, name="approver_revoke"),
    path(
        "approvals/reviews/", approvals.access_reviews_page, name="access_reviews"
    ),
    path(
        "approvals/reviews/items/<int:pk>",
        approvals.review_item_decide,
        name="review_item_decide",
    ),
    path("reviews/", reviews.reviews, name="reviews"),
    path("reviews/<int:pk>/", reviews.review_detail, name="review_detail"),
    path(
        "approvals/break-glass/<int:pk>/review",
        approvals.break_glass_review,
        name="break_glass_review",
    ),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("demo/mail/", demo.demo_mail, name="demo_mail"),
    path("drift/", dashboard.drift, name="drift"),
    path("drift/reconcile", dashboard.reconcile_now, name="reconcile_now"),
    path(
        "aws-accounts/<int:pk>/retry", accounts.account_retry, name="account_retry"
    ),
    path("people/", people.people_list, name="people"),
    path("people/add", people.person_add, name="person_add"),
    path("people/<int:pk>/", people.person_detail, name="person_detail"),
    path("people/<int:pk>/retry", people.person_retry, name="person_retry"),
    path("people/<int:pk>/invite", people.person_invite, name="person_invite"),
    path(
        "people/<int:pk>/offboard",
        people.person_offboard,
        name="person_offboard",
    ),
    path(
        "people/<int:pk>/console-password",
        people.person_console_password,
        name="person_console_password",
    ),
    path("projects/", projects.projects, name="projects"),
    path("projects/<int:pk>/", projects.project_detail, name="project_detail"),
    path("projects/<int:pk>/edit", projects.project_edit, name="project_edit"),
    path("roles/<int:pk>/edit", projects.role_edit, name="role_edit"),
    path("roles/<int:pk>/retry", projects.role_retry, name="role_retry"),
    path(
        "projects/<int:pk>/settings",
        project_settings.project_settings,
        name="project_settings",
    ),
    path(
        "projects/<int:pk>/rules",
        project_settings.project_rules,
        name="project_rules",
    ),
    path("roles/<int:pk>/rules", projects.role_rules, name="role_rules"),
    path(
        "projects/<int:pk>/webhooks",
        project_settings.project_webhooks,
        name="project_webhooks",
    ),
    path(
        "projects/<int:pk>/break-glass",
        project_settings.project_break_glass,
        name="project_break_glass",
    ),
    path("audit/", audit.audit, name="audit"),
    path("tokens/", tokens.token_list, name="tokens"),
    path("tokens/<int:pk>/revoke", tokens.token_revoke, name="token_revoke"),
    path("tokens/revoke-all", tokens.tokens_revoke_all, name="tokens_revoke_all"),
    path("device/", tokens.device, name="device"),
    path("api/v1/", api.urls),
    path("aws-accounts/", accounts.aws_accounts, name="aws_accounts"),
    path(
        "aws-accounts/discover",
        accounts.aws_accounts_discover,
        name="aws_accounts_discover",
    ),
    path(
        "aws-accounts/<int:pk>/edit",
        accounts.aws_account_edit,
        name="aws_account_edit",
    ),
    path(
        "aws-accounts/<int:pk>/check",
        accounts.aws_account_check,
        name="aws_account_check",
    ),
    path("healthz", ops.healthz, name="healthz"),
    path("metrics", ops.metrics, name="metrics"),
    path("accounts/", include("allauth.urls")),
    # The Django admin's own login form would skip allauth's TOTP step.
    path("admin/login/", requests.admin_login, name="admin_login_redirect"),
    path("admin/", admin.site.urls),
]

handler404 = "portal.api.core.not_found"
handler500 = "portal.api.core.server_error"
