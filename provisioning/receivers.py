"""How the desired state reaches the Celery tasks: receivers of
accounts_app.sync_requests, .chat and .notifications (and of
provisioning.recovery), connected in ProvisioningConfig.ready.
provisioning.tasks is imported when the first request arrives, not while a web
worker starts (so a worker answers as soon as Django is loaded, as before)."""

from accounts_app import chat, notifications, sync_requests
from accounts_app.services import readiness
from provisioning import recovery


def _sync_requested(sender, pk: int, **kwargs) -> None:
    from provisioning import tasks

    tasks.on_sync_requested(sender, pk, claimed=kwargs.get("claimed", False))


def _reconcile_requested(sender, **kwargs) -> None:
    from provisioning import tasks

    tasks.on_reconcile_requested()


def _reconcile_needed(sender, account_id: int, **kwargs) -> None:
    from provisioning import tasks

    tasks.enqueue_reconcile(account_id)


def _chat_requested(sender, **kwargs) -> None:
    from provisioning import chat as chat_tasks

    chat_tasks.on_chat_requested(sender, **kwargs)


def _notification_requested(sender, name: str, args: list, **kwargs) -> bool:
    from provisioning import notify

    return notify.on_notification_requested(sender, name, args)


def _readiness_requested(sender, grant_ids: list[int], **kwargs) -> None:
    from provisioning import tasks

    tasks.on_readiness_requested(grant_ids)


def connect() -> None:
    readiness.readiness_requested.connect(
        _readiness_requested, dispatch_uid="opsgate-readiness"
    )
    chat.chat_requested.connect(_chat_requested, dispatch_uid="opsgate-chat")
    notifications.notification_requested.connect(
        _notification_requested, dispatch_uid="opsgate-notification"
    )
    sync_requests.sync_requested.connect(_sync_requested, dispatch_uid="opsgate-sync")
    sync_requests.reconcile_requested.connect(
        _reconcile_requested, dispatch_uid="opsgate-reconcile"
    )
    recovery.reconcile_needed.connect(
        _reconcile_needed, dispatch_uid="opsgate-reconcile-needed"
    )
