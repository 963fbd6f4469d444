"""Notifications leave the request path (issue 24): a decision's mail and
chat posts are asked for by name once the change commits, published as one
Celery task and sent by the worker; inline only when the broker is down or
nothing listens. Elsewhere the suite runs that task in process
(`notifications_run` in conftest.py); these tests take the queued path."""

import json

import pytest
from celery.app.task import Task
from django.core import mail
from django.urls import reverse
from kombu.exceptions import OperationalError

from accounts_app import notifications
from accounts_app.models import AccessRequest, RequestStatus
from accounts_app.services import access_requests, tokens
from provisioning import notify
from tests.conftest import give_totp, totp_code
from tests.helpers import request
from tests.workers import Worker, reset_broker, wait_for

pytestmark = pytest.mark.notifications_queued

NOTIFY = "provisioning.notify.send_notification"


@pytest.fixture
def published(monkeypatch):
    """Every task published, in order, as (name, args); nothing reaches the
    broker."""
    calls: list = []

    def record(task, args=None, kwargs=None, **options):
        calls.append((task.name, args))

    monkeypatch.setattr(Task, "apply_async", record)
    return calls


@pytest.fixture
def rendered(monkeypatch):
    """The mails rendered and sent in this process."""
    calls: list = []
    render, send = notifications.render_to_string, notifications.send_mail

    def counting_render(*args, **kwargs):
        calls.append(("render", args[0]))
        return render(*args, **kwargs)

    def counting_send(*args, **kwargs):
        calls.append(("send", args[0]))
        return send(*args, **kwargs)

    monkeypatch.setattr(notifications, "render_to_string", counting_render)
    monkeypatch.setattr(notifications, "send_mail", counting_send)
    return calls


def _run(published_task) -> int:
    """What the worker does with a published notification."""
    name, args = published_task
    assert name == NOTIFY
    return notify.send_notification.apply(args=args, throw=True).get()


@pytest.mark.django_db
def test_an_api_approval_publishes_the_mail_after_the_sync_and_renders_nothing(
    carol, bob, deploy_role, published, rendered, django_capture_on_commit_callbacks
):
    req = request(carol, deploy_role)
    published.clear()
    give_totp(bob.user)
    _, secret = tokens.token_create(
        owner=bob.user, name="t", scopes=["approve"], days=1, actor=bob.user
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = bob_client(secret).post(
            f"/api/v1/approvals/{req.pk}/approve",
            json.dumps({"totp": totp_code()}),
            content_type="application/json",
        )
    assert response.status_code == 200, response.content
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.APPROVED
    # The request rendered and sent no mail; it published the role's sync
    # first (a worker with one slot converges before it mails), then the mail.
    assert rendered == [] and mail.outbox == []
    assert published == [
        ("provisioning.tasks.sync_role", [deploy_role.pk]),
        (NOTIFY, ["request_decided", [req.pk]]),
    ]
    # The worker's task sends it, as the request used to.
    assert _run(published[1]) == 1
    assert [m.to for m in mail.outbox] == [["carol@example.com"]]
    assert "was approved" in mail.outbox[0].subject
    assert ("render", "email/request_decided.txt") in rendered


def bob_client(secret):
    from django.test import Client

    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.mark.django_db
def test_the_web_request_and_decision_publish_their_mails_and_render_none(
    login, carol, bob, deploy_role, published, rendered,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    url = reverse("request_access") + f"?project={deploy_role.project_id}"
    with django_capture_on_commit_callbacks(execute=True):
        created = login(carol).post(
            url, {"role": deploy_role.pk, "reason": "r", "duration": "8"}
        )
    assert created.status_code == 302
    req = AccessRequest.objects.get(requester=carol)
    assert published == [(NOTIFY, ["request_created", [req.pk]])]
    assert rendered == [] and mail.outbox == []
    assert _run(published[0]) == 1  # the worker, while the request waits
    rendered.clear()
    with django_capture_on_commit_callbacks(execute=True):
        login(bob).post(
            reverse("decide", args=[req.pk]), {"decision": "reject", "comment": "no"}
        )
    assert published[1:] == [(NOTIFY, ["request_decided", [req.pk]])]
    assert rendered == [] and len(mail.outbox) == 1
    assert _run(published[1]) == 1
    assert [m.to for m in mail.outbox] == [["bob@example.com"], ["carol@example.com"]]
    assert "was rejected" in mail.outbox[1].subject


@pytest.mark.django_db
def test_with_the_broker_down_the_mail_is_sent_inline_and_the_decision_stands(
    carol, bob, deploy_role, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    req = request(carol, deploy_role)
    tried: list = []

    def down(task, *args, **kwargs):
        tried.append(task.name)
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379")

    monkeypatch.setattr(Task, "apply_async", down)
    with django_capture_on_commit_callbacks(execute=True):
        access_requests.access_request_approve(access_request=req, approver=bob.user)
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.APPROVED
    assert [m.to for m in mail.outbox] == [["carol@example.com"]]
    # The broker's fail-fast wait is paid once, by the sync's publish: the
    # mail's is not tried (a frozen Redis costs seconds a try).
    assert tried == ["provisioning.tasks.sync_role"]
    assert "broker down a moment ago: sending notification request_decided" in (
        caplog.text
    )


@pytest.mark.django_db
def test_a_notification_alone_tries_the_broker_and_goes_inline(
    carol, deploy_role, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    def down(task, *args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379")

    monkeypatch.setattr(Task, "apply_async", down)
    with django_capture_on_commit_callbacks(execute=True):
        request(carol, deploy_role)
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]
    assert "could not enqueue notification request_created" in caplog.text


@pytest.mark.django_db
def test_without_a_receiver_the_mail_is_sent_inline(
    carol, bob, deploy_role, published, django_capture_on_commit_callbacks
):
    """A process without provisioning's receiver (none connected) loses
    nothing; neither when the receiver fails."""
    from provisioning import receivers

    req = request(carol, deploy_role)
    published.clear()
    notifications.notification_requested.disconnect(dispatch_uid="opsgate-notification")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            access_requests.access_request_approve(
                access_request=req, approver=bob.user
            )
    finally:
        receivers.connect()
    assert [m.to for m in mail.outbox] == [["carol@example.com"]]
    assert NOTIFY not in [name for name, _ in published]


@pytest.mark.django_db
def test_a_failing_receiver_means_inline(
    carol, bob, deploy_role, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(name, args):
        raise RuntimeError("bug")

    monkeypatch.setattr(notify, "publish", broken)
    with django_capture_on_commit_callbacks(execute=True):
        request(carol, deploy_role)
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["grant_expiry_reminder", "_send", "send", "on_commit", "log", "x"]
)
def test_the_task_refuses_a_name_outside_the_allow_list(
    name, carol, deploy_role, monkeypatch, caplog
):
    req = request(carol, deploy_role)
    mail.outbox.clear()
    called = []
    monkeypatch.setattr(notifications, "send_mail", lambda *a, **k: called.append(a))
    assert notify.send_notification.apply(args=[name, [req.pk]]).get() == 0
    assert called == [] and mail.outbox == []
    assert f"refused notification {name!r}" in caplog.text
    with pytest.raises(ValueError):
        notifications.send(name, [req.pk])


def test_only_notifications_may_be_asked_for():
    with pytest.raises(ValueError):
        notifications.on_commit(notifications.grant_expiry_reminder, 1)
    assert notifications.DELIVERABLE <= set(vars(notifications))


@pytest.mark.django_db
def test_a_notification_of_a_deleted_request_sends_nothing(carol, deploy_role):
    req = request(carol, deploy_role)
    mail.outbox.clear()
    AccessRequest.objects.filter(pk=req.pk).delete()
    result = notify.send_notification.apply(args=["request_decided", [req.pk]])
    assert result.get() == 0 and mail.outbox == []


def _mails(folder) -> str:
    return (
        "".join(p.read_text() for p in sorted(folder.glob("*")))
        if folder.exists()
        else ""
    )


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_the_decision_and_the_active_mail(
    aws_env, carol, bob, deploy_role, tmp_path
):
    folder = tmp_path / "mail"
    reset_broker()
    worker = Worker(
        "notify",
        concurrency=1,
        env={
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(folder),
        },
    ).wait_ready()
    try:
        req = request(carol, deploy_role)
        # To bob while the request waits (decided first, it would ask nobody).
        assert wait_for(lambda: "asks for payments as deploy" in _mails(folder)), (
            worker.log()
        )
        access_requests.access_request_approve(access_request=req, approver=bob.user)
        assert wait_for(lambda: "Active: payments as deploy" in _mails(folder)), (
            worker.log()
        )
        text = _mails(folder)
    finally:
        worker.stop()
    assert mail.outbox == []  # none from this process
    assert "Your request for payments as deploy was approved" in text
    assert "To: carol@example.com" in text
    assert f"{NOTIFY}[" in worker.log()


def test_a_sync_queued_after_an_email_is_taken_before_it():
    """On the broker, a role's sync published after a decision's e-mail (the
    next decision's) is what a worker takes first: people wait on the sync."""
    from provisioning import tasks
    from tests.test_beat import first_message

    reset_broker()
    assert notify.publish("request_decided", [1])
    tasks.sync_role.apply_async(args=[2])
    taken = [first_message("celery", timeout=5) for _ in range(2)]
    assert [m.headers["task"] for m in taken] == [
        "provisioning.tasks.sync_role",
        NOTIFY,
    ]
    assert json.loads(taken[1].body)[0] == ["request_decided", [1]]


@pytest.mark.django_db
@pytest.mark.parametrize("ended_by", ["carol", "bob"])
def test_a_decision_mail_sent_after_the_grant_ended_tells_the_decision(
    ended_by, carol, bob, deploy_role, published, django_capture_on_commit_callbacks
):
    """The worker takes the syncs before the mails: an approval's mail may go
    out after the grant ended. It tells what bob decided (approved), never
    that bob revoked it."""
    req = request(carol, deploy_role)
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        access_requests.access_request_approve(access_request=req, approver=bob.user)
    decided = [p for p in published if p == (NOTIFY, ["request_decided", [req.pk]])]
    ender = {"carol": carol, "bob": bob}[ended_by]
    access_requests.access_request_revoke(access_request=req, actor=ender.user)
    assert _run(decided[0]) == 1
    sent = mail.outbox[-1]
    assert sent.to == ["carol@example.com"]
    assert "was approved" in sent.subject
    assert sent.body.startswith("bob approved your request")
    assert "revoked" not in sent.body


def _published_mail(published, name: str):
    return next(p for p in published if p[0] == NOTIFY and p[1][0] == name)


@pytest.mark.django_db
@pytest.mark.parametrize("meanwhile", ["cancelled", "approved", "none"])
def test_a_new_request_mail_is_not_sent_once_it_was_decided_or_cancelled(
    meanwhile, carol, bob, deploy_role, published, django_capture_on_commit_callbacks
):
    """The worker sends mails after the syncs: by then the request may be
    decided or cancelled, and nobody is asked to decide it any more."""
    with django_capture_on_commit_callbacks(execute=True):
        req = request(carol, deploy_role)
    created = _published_mail(published, "request_created")
    if meanwhile == "cancelled":
        access_requests.access_request_cancel(access_request=req, actor=carol.user)
    elif meanwhile == "approved":
        access_requests.access_request_approve(access_request=req, approver=bob.user)
    mail.outbox.clear()
    sent = _run(created)
    assert sent == (1 if meanwhile == "none" else 0)
    assert [m.to for m in mail.outbox] == ([["bob@example.com"]] if sent else [])


@pytest.mark.django_db
@pytest.mark.parametrize("meanwhile", ["approved", "none"])
def test_a_partial_approval_mail_is_not_sent_once_the_request_is_decided(
    meanwhile,
    carol,
    bob,
    dave,
    payments,
    deploy_role,
    published,
    django_capture_on_commit_callbacks,
):
    payments.approvers.add(dave.user)
    payments.approvals_required = 2
    payments.save()
    req = request(carol, deploy_role)
    with django_capture_on_commit_callbacks(execute=True):
        access_requests.access_request_approve(access_request=req, approver=bob.user)
    partial = _published_mail(published, "approval_partial")
    if meanwhile == "approved":
        access_requests.access_request_approve(access_request=req, approver=dave.user)
    mail.outbox.clear()
    assert _run(partial) == (1 if meanwhile == "none" else 0)
    assert bool(mail.outbox) == (meanwhile == "none")


@pytest.mark.django_db
@pytest.mark.parametrize("meanwhile", ["done", "revoked", "none"])
def test_an_active_mail_is_not_sent_for_a_grant_that_ended_before_it(
    meanwhile, carol, bob, deploy_role
):
    req = request(carol, deploy_role)
    access_requests.access_request_approve(access_request=req, approver=bob.user)
    AccessRequest.objects.filter(pk=req.pk).update(provisioned_at=req.decided_at)
    ender = {"done": carol, "revoked": bob}.get(meanwhile)
    if ender:
        access_requests.access_request_revoke(access_request=req, actor=ender.user)
    mail.outbox.clear()
    sent = notify.send_notification.apply(args=["grants_active", [[req.pk]]]).get()
    assert sent == (0 if ender else 1)
    assert [m.to for m in mail.outbox] == ([] if ender else [["carol@example.com"]])
