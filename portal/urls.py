from django.contrib import admin
from django.urls import include, path

from portal import approver_views, staff_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("request/", views.request_access, name="request_access"),
    path("requests/status.json", views.request_status, name="request_status"),
    path("requests/<int:pk>/cancel", views.request_cancel, name="request_cancel"),
    path("requests/<int:pk>/done", views.request_done, name="request_done"),
    path("approvals/", approver_views.approvals, name="approvals"),
    path("approvals/<int:pk>/decide", approver_views.decide, name="decide"),
    path("approvals/<int:pk>/revoke", approver_views.revoke, name="approver_revoke"),
    path("dashboard/", staff_views.dashboard, name="dashboard"),
    path("drift/", staff_views.drift, name="drift"),
    path("drift/reconcile", staff_views.reconcile_now, name="reconcile_now"),
    path(
        "aws-accounts/<int:pk>/retry", staff_views.account_retry, name="account_retry"
    ),
    path("people/", staff_views.people_list, name="people"),
    path("people/add", staff_views.person_add, name="person_add"),
    path("people/<int:pk>/", staff_views.person_detail, name="person_detail"),
    path("people/<int:pk>/retry", staff_views.person_retry, name="person_retry"),
    path(
        "people/<int:pk>/console-password",
        staff_views.person_console_password,
        name="person_console_password",
    ),
    path("projects/", staff_views.projects, name="projects"),
    path("projects/<int:pk>/", staff_views.project_detail, name="project_detail"),
    path("roles/<int:pk>/retry", staff_views.role_retry, name="role_retry"),
    path("audit/", staff_views.audit, name="audit"),
    path("aws-accounts/", staff_views.aws_accounts, name="aws_accounts"),
    path(
        "aws-accounts/discover",
        staff_views.aws_accounts_discover,
        name="aws_accounts_discover",
    ),
    path(
        "aws-accounts/<int:pk>/check",
        staff_views.aws_account_check,
        name="aws_account_check",
    ),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    # The Django admin's own login form would skip allauth's TOTP step.
    path("admin/login/", views.admin_login, name="admin_login_redirect"),
    path("admin/", admin.site.urls),
]
