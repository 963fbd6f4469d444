from django.contrib import admin
from django.urls import include, path

from portal import approver_views, demo_views, ops, staff_views, token_views, views
from portal.api.views import api

urlpatterns = [
    path("", views.home, name="home"),
    path("request/", views.request_access, name="request_access"),
    path(
        "request/break-glass",
        views.break_glass_activate,
        name="break_glass_activate",
    ),
    path("requests/status.json", views.request_status, name="request_status"),
    path("requests/<int:pk>/cancel", views.request_cancel, name="request_cancel"),
    path("requests/<int:pk>/done", views.request_done, name="request_done"),
    path("requests/<int:pk>/check", views.request_check, name="request_check"),
    path("approvals/", approver_views.approvals, name="approvals"),
    path("approvals/<int:pk>/decide", approver_views.decide, name="decide"),
    path("approvals/<int:pk>/revoke", approver_views.revoke, name="approver_revoke"),
    path(
        "approvals/reviews/", approver_views.access_reviews_page, name="access_reviews"
    ),
    path(
        "approvals/reviews/items/<int:pk>",
        approver_views.review_item_decide,
        name="review_item_decide",
    ),
    path("reviews/", staff_views.reviews, name="reviews"),
    path("reviews/<int:pk>/", staff_views.review_detail, name="review_detail"),
    path(
        "approvals/break-glass/<int:pk>/review",
        approver_views.break_glass_review,
        name="break_glass_review",
    ),
    path("dashboard/", staff_views.dashboard, name="dashboard"),
    path("demo/mail/", demo_views.demo_mail, name="demo_mail"),
    path("drift/", staff_views.drift, name="drift"),
    path("drift/reconcile", staff_views.reconcile_now, name="reconcile_now"),
    path(
        "aws-accounts/<int:pk>/retry", staff_views.account_retry, name="account_retry"
    ),
    path("people/", staff_views.people_list, name="people"),
    path("people/add", staff_views.person_add, name="person_add"),
    path("people/<int:pk>/", staff_views.person_detail, name="person_detail"),
    path("people/<int:pk>/retry", staff_views.person_retry, name="person_retry"),
    path("people/<int:pk>/invite", staff_views.person_invite, name="person_invite"),
    path(
        "people/<int:pk>/offboard",
        staff_views.person_offboard,
        name="person_offboard",
    ),
    path(
        "people/<int:pk>/console-password",
        staff_views.person_console_password,
        name="person_console_password",
    ),
    path("projects/", staff_views.projects, name="projects"),
    path("projects/<int:pk>/", staff_views.project_detail, name="project_detail"),
    path("projects/<int:pk>/edit", staff_views.project_edit, name="project_edit"),
    path("roles/<int:pk>/edit", staff_views.role_edit, name="role_edit"),
    path("roles/<int:pk>/retry", staff_views.role_retry, name="role_retry"),
    path("projects/<int:pk>/rules", staff_views.project_rules, name="project_rules"),
    path("roles/<int:pk>/rules", staff_views.role_rules, name="role_rules"),
    path(
        "projects/<int:pk>/webhooks",
        staff_views.project_webhooks,
        name="project_webhooks",
    ),
    path(
        "projects/<int:pk>/break-glass",
        staff_views.project_break_glass,
        name="project_break_glass",
    ),
    path("audit/", staff_views.audit, name="audit"),
    path("tokens/", token_views.token_list, name="tokens"),
    path("tokens/<int:pk>/revoke", token_views.token_revoke, name="token_revoke"),
    path("tokens/revoke-all", token_views.tokens_revoke_all, name="tokens_revoke_all"),
    path("device/", token_views.device, name="device"),
    path("api/v1/", api.urls),
    path("aws-accounts/", staff_views.aws_accounts, name="aws_accounts"),
    path(
        "aws-accounts/discover",
        staff_views.aws_accounts_discover,
        name="aws_accounts_discover",
    ),
    path(
        "aws-accounts/<int:pk>/edit",
        staff_views.aws_account_edit,
        name="aws_account_edit",
    ),
    path(
        "aws-accounts/<int:pk>/check",
        staff_views.aws_account_check,
        name="aws_account_check",
    ),
    path("healthz", ops.healthz, name="healthz"),
    path("metrics", ops.metrics, name="metrics"),
    path("accounts/", include("allauth.urls")),
    # The Django admin's own login form would skip allauth's TOTP step.
    path("admin/login/", views.admin_login, name="admin_login_redirect"),
    path("admin/", admin.site.urls),
]

handler404 = "portal.api.core.not_found"
handler500 = "portal.api.core.server_error"
