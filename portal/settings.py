"""opsgate settings, read from the environment (see docs/settings.md).

The defaults are the embedded demo: SQLite, a broker on the local filesystem and
whatever AWS endpoint boto3 finds (AWS_ENDPOINT_URL points it at moto).
Production sets OPSGATE_PRODUCTION=true, which makes the secret key and the
allowed hosts mandatory and turns on the secure cookie and HSTS settings.
"""

import ipaddress
from datetime import timedelta
from pathlib import Path

import dj_database_url

from portal import security_headers
from portal.env import envbool, envcache, envint, envlist, envstr
from portal.logging_config import logging_config
from portal.security_headers import content_security_policy

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("OPSGATE_VAR_DIR", str(BASE_DIR / "var")))

PRODUCTION = envbool("OPSGATE_PRODUCTION", False)
DEBUG = envbool("DJANGO_DEBUG", not PRODUCTION)
# The embedded demo (scripts/demo.sh): the sign-in page names the demo people,
# e-mails go to files shown at /demo/mail/, the request log stays quiet.
DEMO = envbool("OPSGATE_DEMO", False) and not PRODUCTION
SECRET_KEY = envstr(
    "DJANGO_SECRET_KEY",
    "insecure-demo-key-never-use-in-production",
    required=PRODUCTION,
)
ALLOWED_HOSTS = envlist(
    "DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("Set DJANGO_ALLOWED_HOSTS in production.")
CSRF_TRUSTED_ORIGINS = envlist("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "provisioning",
    "accounts_app",
    # Only for the API docs page's static files (swagger-ui, served locally).
    "ninja",
]

MIDDLEWARE = [
    # /healthz and /metrics, before the Host check and the HTTPS redirect.
    "portal.ops.OpsEndpointsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "portal.middleware.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.QueryStringGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "portal.middleware.RequireMfaMiddleware",
    # A view that needed the shared cache while it was down: 503, not 500.
    "portal.cache_down.CacheDownMiddleware",
]

# Content-Security-Policy (django-csp) and Permissions-Policy in every mode:
# what they allow is in portal/security_headers.py.
CONTENT_SECURITY_POLICY = content_security_policy(envstr("OPSGATE_OIDC_SERVER_URL", ""))
PERMISSIONS_POLICY_DENIED = security_headers.PERMISSIONS_POLICY_DENIED

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context.nav",
                "portal.context.demo",
            ],
            "builtins": ["portal.templatetags.opsgate"],
        },
    },
]

# Database: DATABASE_URL (postgres://user@host:5432/name) or SQLite under var/.
DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'opsgate.sqlite3'}"),
        # Persistent connections (checked before reuse): a new PostgreSQL
        # connection per request or task costs more than the work itself.
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock up front, so the web process
    # and the worker queue behind each other instead of failing on upgrade.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 30}
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing
STATICFILES_DIRS = [BASE_DIR / "portal" / "static"]
# Outside production (the demo, a developer's server, with or without DEBUG)
# whitenoise serves the files from where they are, without collectstatic;
# production serves the collected, hashed ones (STORAGES below).
WHITENOISE_USE_FINDERS = not PRODUCTION

LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"

# django-allauth: e-mail and password, no self sign-up (admins add people).
ACCOUNT_ADAPTER = "accounts_app.adapters.NoSignupAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}
# Optional single sign-on with OpenID Connect, configured only by environment
# variables. Only people an admin added can sign in (no sign-up); they are
# matched by the e-mail address the identity provider vouches for, and admins
# and approvers still enter their TOTP code after it.
OIDC_SERVER_URL = envstr("OPSGATE_OIDC_SERVER_URL", "")
SOCIALACCOUNT_PROVIDERS = {}
if OIDC_SERVER_URL:
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "APPS": [
            {
                "provider_id": "sso",
                "name": envstr("OPSGATE_OIDC_NAME", "single sign-on"),
                "client_id": envstr("OPSGATE_OIDC_CLIENT_ID", required=True),
                "secret": envstr("OPSGATE_OIDC_CLIENT_SECRET", required=True),
                "settings": {"server_url": OIDC_SERVER_URL},
            }
        ]
    }
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_LOGIN_ON_GET = False
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "opsgate"
MFA_FORMS = {
    "authenticate": "portal.mfa_forms.OpsgateAuthenticateForm",
    "reauthenticate": "portal.mfa_forms.OpsgateReauthenticateForm",
}

EMAIL_BACKEND = envstr(
    "EMAIL_BACKEND",
    "django.core.mail.backends.filebased.EmailBackend"
    if DEMO
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_FILE_PATH = envstr("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "opsgate <opsgate@localhost>")

# One cache shared by every process (see portal/env.py): used TOTP codes and
# failed-login counts live there. CACHE_URL=redis://host:6379/1 in production;
# unset, a table in the database (manage.py createcachetable).
CACHES = {"default": envcache("CACHE_URL", production=PRODUCTION)}

# --- Celery -------------------------------------------------------------------
# Redis in production (CELERY_BROKER_URL=redis://…); the embedded default is
# kombu's filesystem transport, which needs no server.
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", "filesystem://localhost/")
_broker_dir = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("queue", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Fail fast when the broker is down: the approval is saved anyway and the
    # periodic sweep re-enqueues what could not be published. A frozen Redis
    # (connections accepted, nothing answered) costs up to three waits for an
    # answer (publish, ping of the new connection, publish again): 3 × 1 s.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": 2,
        "socket_timeout": 1,
        "max_retries": 1,
        "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 600),
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# The worker outlives its broker: it waits for Redis at start-up and after a
# lost connection, however long (Celery stops after 100 tries, about 47 min,
# by default), and a running task finishes meanwhile (its AWS and database
# work needs no broker; a redelivered copy converges to nothing new) instead
# of being killed to be redelivered by a Redis that may come back empty.
# tests/test_broker_restart.py restarts Redis under a running worker.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 0.5,
}
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
# Celery's Django fixup closes the database connection around every task
# unless this is set (it then closes it every that many tasks): tasks keep it
# as web requests do, by DATABASE_CONN_MAX_AGE and its health check instead
# (portal/celery.py).
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
# What the worker prints (the console e-mail backend's mails) is logged at
# INFO, not as WARNING lines.
CELERY_WORKER_REDIRECT_STDOUTS_LEVEL = "INFO"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "sweep": {
        "task": "provisioning.tasks.sweep",
        "schedule": timedelta(seconds=envint("OPSGATE_SWEEP_SECONDS", 60)),
    },
    "expire": {
        "task": "provisioning.tasks.expire_access",
        "schedule": timedelta(seconds=envint("OPSGATE_EXPIRE_SECONDS", 60)),
    },
    "reconcile": {
        "task": "provisioning.tasks.reconcile_accounts",
        "schedule": timedelta(seconds=envint("OPSGATE_RECONCILE_SECONDS", 3600)),
    },
}

# --- opsgate ------------------------------------------------------------------
OPSGATE = {
    # Everything opsgate creates lives under this IAM path and is tagged
    # ManagedBy=opsgate.
    "IAM_PATH": envstr("OPSGATE_IAM_PATH", "/opsgate/"),
    "GROUP_NAME": envstr("OPSGATE_GROUP_NAME", "opsgate-operators"),
    "POLICY_PREFIX": envstr("OPSGATE_POLICY_PREFIX", "opsgate-"),
    "MAX_SESSION_DURATION": envint("OPSGATE_MAX_SESSION_DURATION", 3600),
    # Every operation role and every IAM user gets one of these customer-managed
    # policies as its permissions boundary. The deployment creates them
    # (`manage.py opsgate_boundaries --apply` or the CloudFormation template in
    # deploy/); opsgate only checks they exist and may never change them.
    "ROLE_BOUNDARY_NAME": envstr(
        "OPSGATE_ROLE_BOUNDARY_NAME", "opsgate-OperationRoleBoundary"
    ),
    "USER_BOUNDARY_NAME": envstr(
        "OPSGATE_USER_BOUNDARY_NAME", "opsgate-OperatorBoundary"
    ),
    "SESSION_DOCUMENTS": envlist(
        "OPSGATE_SESSION_DOCUMENTS",
        ["SSM-SessionManagerRunShell", "AWS-StartPortForwardingSession"],
    ),
    # Used when GetAccountSummary cannot be read.
    "DEFAULT_TRUST_POLICY_QUOTA": envint("OPSGATE_DEFAULT_TRUST_POLICY_QUOTA", 2048),
    # "Invalid principal" this soon after CreateUser is IAM eventual consistency.
    "PRINCIPAL_PROPAGATION_SECONDS": envint(
        "OPSGATE_PRINCIPAL_PROPAGATION_SECONDS", 120
    ),
    # How long IAM may still honour a trust policy after opsgate rewrote it
    # (IAM is eventually consistent; changes usually show within seconds).
    # The session deny of an ended grant covers sessions issued until the
    # trust write plus this, and SSM sessions are terminated again after it.
    "IAM_PROPAGATION_SECONDS": envint("OPSGATE_IAM_PROPAGATION_SECONDS", 60),
    "AWS_MAX_ATTEMPTS": envint("OPSGATE_AWS_MAX_ATTEMPTS", 3),
    "TASK_MAX_RETRIES": envint("OPSGATE_TASK_MAX_RETRIES", 8),
    # A published sync task holds its object this long (a retry: its
    # countdown plus this); only then may the sweep publish it again, for a
    # message that was lost (a Redis that came back empty). A backlog longer
    # than this gets one duplicate per object, which finds it converged.
    "SWEEP_GRACE_SECONDS": envint("OPSGATE_SWEEP_GRACE_SECONDS", 300),
    "DEFAULT_ACCOUNT_NAME": envstr("OPSGATE_DEFAULT_ACCOUNT_NAME", "default"),
    # Pending requests nobody decided expire after this many hours.
    "PENDING_MAX_AGE_HOURS": envint("OPSGATE_PENDING_MAX_AGE_HOURS", 72),
    # Requesters are reminded this many hours before their grant expires.
    "EXPIRY_REMINDER_HOURS": envint("OPSGATE_EXPIRY_REMINDER_HOURS", 24),
    # Reconcile leaves alone objects synced or changed this recently (IAM reads
    # are eventually consistent).
    "RECONCILE_QUIET_SECONDS": envint("OPSGATE_RECONCILE_QUIET_SECONDS", 300),
    "RECONCILE_REPAIR": envbool("OPSGATE_RECONCILE_REPAIR", True),
    # Off only where AWS is emulated without these APIs (the moto demo).
    "TERMINATE_SSM_SESSIONS": envbool("OPSGATE_TERMINATE_SSM_SESSIONS", True),
    "DELETE_SERVICE_CREDENTIALS": envbool("OPSGATE_DELETE_SERVICE_CREDENTIALS", True),
    # Links in e-mails (invitations, notifications) start with this.
    "BASE_URL": envstr("OPSGATE_BASE_URL", "http://127.0.0.1:8000"),
    # How long My access shows a project's EC2 instances before reading again.
    "INSTANCE_CACHE_SECONDS": envint("OPSGATE_INSTANCE_CACHE_SECONDS", 20),
    "REGION": envstr("AWS_REGION", envstr("AWS_DEFAULT_REGION", "us-east-1")),
    # Readiness (issue 25, provisioning/readiness/): after a role converged
    # the worker reads back what AWS holds for each new grant (the person's
    # MFA device, the role, the project's instances and OS user). Checks that
    # fail only because IAM has not propagated yet are retried this long.
    "READINESS_CHECKS": envbool("OPSGATE_READINESS_CHECKS", True),
    "READINESS_PROPAGATION_SECONDS": envint(
        "OPSGATE_READINESS_PROPAGATION_SECONDS", 120
    ),
    # How long the check waits for the OS-user SSM command on the instances.
    "READINESS_COMMAND_SECONDS": envint("OPSGATE_READINESS_COMMAND_SECONDS", 30),
    # iam:SimulatePrincipalPolicy as the final answer (real AWS only: moto
    # lacks it).
    "READINESS_SIMULATE": envbool("OPSGATE_READINESS_SIMULATE", False),
    # API calls one token may make per minute (counted in the shared cache).
    "API_RATE_PER_MINUTE": envint("OPSGATE_API_RATE_PER_MINUTE", 300),
    # Reverse proxies (addresses or CIDRs) whose X-Forwarded-For is believed
    # for the client's address in rate limits (accounts_app/client_ip.py).
    "TRUSTED_PROXIES": envlist("OPSGATE_TRUSTED_PROXIES", []),
}
for _proxy in OPSGATE["TRUSTED_PROXIES"]:  # a typo stops start-up
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"OPSGATE_TRUSTED_PROXIES: {_proxy!r} is not an address or CIDR."
        ) from None

# --- Outbound webhooks and operations (issue 21) ---------------------------------
# Chat webhooks may only point at these hosts ("*.example.com": any name under
# example.com). The worker also refuses, when sending, any host that resolves to
# a loopback, private, link-local, multicast, reserved or metadata address.
OPSGATE_WEBHOOK_ALLOWED_HOSTS = envlist(
    "OPSGATE_WEBHOOK_ALLOWED_HOSTS", ["hooks.slack.com", "*.webhook.office.com"]
)
# /metrics answers only with `Authorization: Bearer <this>`; unset: /metrics is off.
OPSGATE_METRICS_TOKEN = envstr("OPSGATE_METRICS_TOKEN", "")

# One console handler; a refusal is one line; the demo's request log stays
# quiet (portal/logging_config.py).
LOGGING = logging_config(level=envstr("LOG_LEVEL", "INFO"), demo=DEMO)

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = envbool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = envint("DJANGO_SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    STORAGES = {
        "staticfiles": {
            "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        },
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
