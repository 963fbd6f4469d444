"""What opsgate logs and where (settings.py sets LOGGING from it): one console
handler, on the root logger, whose filter prints a refusal in one line
(portal.log_filters.RefusalsInOneLine)."""


def logging_config(*, level: str, demo: bool) -> dict:
    """Django's LOGGING: the root at `level` (LOG_LEVEL); in the demo
    (`demo`), runserver's request lines are off."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"refusals": {"()": "portal.log_filters.RefusalsInOneLine"}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "filters": ["refusals"]}
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "botocore": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
            # Django's own console handler (DEBUG only) would print every
            # record of the `django` loggers a second time, a refusal with its
            # traceback.
            "django": {"handlers": []},
            # runserver's line per request floods the demo's terminal, and its
            # line per 4xx repeats django.request's (a refusal is one line).
            **({"django.server": {"level": "ERROR"}} if demo else {}),
        },
    }
