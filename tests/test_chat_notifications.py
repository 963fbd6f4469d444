"""Issue 13: e-mail on revoke and expiry; per-project Slack and Teams
webhooks, posted by a Celery task with retries, never blocking a decision."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts_app import chat
from accounts_app.models import AccessRequest, AuditEvent, RequestStatus
from accounts_app.services import access_requests, lifecycle, rules
from provisioning import chat as chat_tasks
from tests.helpers import grant, request

pytestmark = pytest.mark.django_db

SLACK = "https://hooks.slack.com/services/T000/B000/XXXX"
TEAMS = "https://example.webhook.office.com/webhookb2/abc"


@pytest.fixture
def posted(monkeypatch):
    """Chat posts run at once (no broker) and are recorded, not sent."""
    calls: list = []

    def fake_post(url, body):
        calls.append((url, body["text"]))

    monkeypatch.setattr(chat_tasks, "http_post", fake_post)
    monkeypatch.setattr(
        chat_tasks.post_chat,
        "apply_async",
        lambda args: chat_tasks.post_chat.apply(args=args),
    )
    return calls


@pytest.fixture
def hooked(payments, alice):
    return rules.project_webhooks_set(
        actor=alice.user,
        project=payments,
        slack_webhook_url=SLACK,
        teams_webhook_url=TEAMS,
    )


def test_a_new_request_is_posted_to_both_webhooks(
    hooked, carol, deploy_role, posted, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request(carol, deploy_role)
    assert sorted(url for url, _ in posted) == sorted([SLACK, TEAMS])
    assert all("carol asks for payments as deploy" in text for _, text in posted)
    assert all("/approvals/" in text for _, text in posted)


def test_a_project_without_webhooks_posts_nothing(
    carol, deploy_role, posted, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request(carol, deploy_role)
    assert posted == []


def test_a_failing_webhook_is_retried_and_the_decision_stands(
    hooked, carol, bob, deploy_role, monkeypatch, django_capture_on_commit_callbacks
):
    attempts: list = []

    def flaky(url, body):
        attempts.append(url)
        if len(attempts) < 3:
            raise OSError("connection refused")

    monkeypatch.setattr(chat_tasks, "http_post", flaky)
    monkeypatch.setattr(chat_tasks.random, "uniform", lambda a, b: 0)
    rules.project_webhooks_set(
        actor=None, project=deploy_role.project, remove_teams=True
    )
    req = request(carol, deploy_role)
    result = chat_tasks.post_chat.apply(args=[deploy_role.project_id, "slack", "hi"])
    assert result.get() is True
    assert attempts == [SLACK] * 3
    # A failing webhook never undoes or blocks a decision.
    monkeypatch.setattr(
        chat_tasks.post_chat,
        "apply_async",
        lambda args: (_ for _ in ()).throw(OSError("broker down")),
    )
    with django_capture_on_commit_callbacks(execute=True):
        access_requests.access_request_approve(access_request=req, approver=bob.user)
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.APPROVED


def test_a_webhook_that_never_answers_gives_up_after_the_retries(hooked, monkeypatch):
    monkeypatch.setattr(
        chat_tasks, "http_post", lambda url, body: (_ for _ in ()).throw(OSError())
    )
    monkeypatch.setattr(chat_tasks.random, "uniform", lambda a, b: 0)
    result = chat_tasks.post_chat.apply(args=[hooked.pk, "slack", "hi"])
    assert result.get() is False


def test_webhook_urls_are_write_only_in_the_audit(hooked, alice):
    event = AuditEvent.objects.get(action="project.webhooks")
    assert event.after == {"slack": "set", "teams": "set"}
    assert SLACK not in str(event.before) + str(event.after)
    # An empty field keeps the current URL.
    rules.project_webhooks_set(actor=alice.user, project=hooked)
    hooked.refresh_from_db()
    assert (hooked.slack_webhook_url, hooked.teams_webhook_url) == (SLACK, TEAMS)


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.slack.com/services/T/B/X",
        "hooks.slack.com/services/T/B/X",
        "https://hooks.slack.com/services/T B/X",
        "https://user:pw@hooks.slack.com/services/T/B/X",
        "javascript:alert(1)",
        "https://" + "a" * 500,
    ],
)
def test_an_invalid_webhook_url_is_refused_and_writes_nothing(payments, alice, url):
    with pytest.raises(ValidationError) as info:
        rules.project_webhooks_set(
            actor=alice.user, project=payments, slack_webhook_url=url
        )
    assert "slack_webhook_url" in info.value.message_dict
    payments.refresh_from_db()
    assert payments.slack_webhook_url == ""
    assert not AuditEvent.objects.filter(action="project.webhooks").exists()


def test_validate_webhook_url_accepts_slack_and_teams():
    chat.validate_webhook_url(SLACK)
    chat.validate_webhook_url(TEAMS)


# --- E-mail on revoke and expiry -----------------------------------------------


def test_a_revoked_grant_mails_the_requester(
    carol, bob, deploy_role, django_capture_on_commit_callbacks
):
    g = grant(carol, deploy_role, bob)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        access_requests.access_request_revoke(
            access_request=g, actor=bob.user, comment="incident over"
        )
    assert [m.to for m in mail.outbox] == [["carol@example.com"]]
    assert "revoked" in mail.outbox[0].subject
    assert "incident over" in mail.outbox[0].body


def test_an_expired_grant_mails_the_requester(
    carol, bob, deploy_role, django_capture_on_commit_callbacks
):
    g = grant(carol, deploy_role, bob, hours=1)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.access_requests_expire(now=g.expires_at + timedelta(seconds=1))
    assert [m.to for m in mail.outbox] == [["carol@example.com"]]
    assert "expired" in mail.outbox[0].subject


def test_ending_your_own_grant_sends_no_mail(
    carol, bob, deploy_role, django_capture_on_commit_callbacks
):
    g = grant(carol, deploy_role, bob)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        access_requests.access_request_revoke(access_request=g, actor=carol.user)
    assert mail.outbox == []


def test_an_overdue_break_glass_review_is_announced_once(
    hooked, alice, carol, deploy_role, posted, django_capture_on_commit_callbacks
):
    from accounts_app.services import break_glass

    break_glass.break_glass_set(
        actor=alice.user, project=hooked, allow=True, people=[carol.user]
    )
    req = break_glass.break_glass_activate(
        requester=carol, role=deploy_role, reason="down", actor=carol.user
    )
    later = timezone.now() + timedelta(hours=25)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.break_glass_overdue_notify(now=later) == 1
    assert lifecycle.break_glass_overdue_notify(now=later) == 0
    assert any("overdue" in m.subject for m in mail.outbox)
    assert any("review overdue" in text for _, text in posted)
    assert req.pk


def test_the_worker_knows_the_chat_task():
    """The worker loads provisioning.tasks (autodiscovery), which registers it."""
    import provisioning.tasks  # noqa: F401
    from portal.celery import app

    assert "provisioning.chat.post_chat" in app.tasks
