import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _connections_as_for_a_request(sender=None, **kwargs) -> None:
    """Around each task, what Django does around each web request: a database
    connection past DATABASE_CONN_MAX_AGE, or broken, is closed, and the next
    query checks the kept one before using it. (Celery's own Django fixup
    would close it around every task, and a new PostgreSQL backend costs 10-20
    ms with its cold caches; settings.CELERY_DB_REUSE_MAX turns that off.) A
    task run inline (tests) is inside the caller's request or transaction."""
    if sender is not None and not getattr(sender.request, "is_eager", False):
        from django.db import close_old_connections

        close_old_connections()
