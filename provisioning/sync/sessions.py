"""Step 3 of an ending (provisioning.sync.ending): the SSM sessions of the
people the trust no longer lists are terminated, once more after the
propagation margin; and what the steps record for removed cross-account
users (OperationRole.ended_principals)."""

from datetime import datetime, timedelta

from django.utils import timezone

from accounts_app.models import AccessRequest, OperationRole
from provisioning import aws, policies, ssm
from provisioning.aws import RetryLater
from provisioning.sync.outcomes import _conf, _iso, _margin, _when, _window


class StepWaits(RetryLater):
    """An ending step that must run again after a delay (`countdown`)."""

    def __init__(self, message: str, *, countdown: float) -> None:
        super().__init__(message, action="ssm:TerminateSession", code="Propagation")
        self.countdown = countdown


def _ssm_step(role: OperationRole) -> None:
    """Step 3: terminate the SSM sessions of every ending whose trust is
    rewritten. The step is done by a run that starts once the propagation
    margin after the trust write has passed; until then it waits."""
    started = timezone.now()
    # Without termination (an emulated AWS) there is nothing to run again.
    margin = _margin() if _conf("TERMINATE_SSM_SESSIONS") else timedelta(0)
    grants = list(
        AccessRequest.objects.filter(
            role=role, trust_removed_at__isnull=False, sessions_ended_at__isnull=True
        )
        .select_related("requester")
        .only("trust_removed_at", "requester__name")
    )
    entries = [
        e
        for e in role.ended_principals or []
        if e.get("trust") and not e.get("sessions")
    ]
    if not grants and not entries:
        return
    names = {g.requester.name for g in grants} | {e["name"] for e in entries}
    if _conf("TERMINATE_SSM_SESSIONS"):
        # In every region where the role's account runs sessions.
        for region in role.account.session_regions:
            ssm_client = aws.client("ssm", role.account, region=region)
            for name in sorted(names):
                owner = policies.assumed_role_session_arn(
                    account_id=role.account.account_id,
                    role_name=role.role_name,
                    session_name=name,
                    partition=role.account.partition,
                )
                ssm.terminate_sessions(ssm_client, owner=owner)
    AccessRequest.objects.filter(
        pk__in=[g.pk for g in grants if g.trust_removed_at + margin <= started]
    ).update(sessions_ended_at=started)
    _principals_mark(
        role, "sessions", started, lambda e: _when(e["trust"]) + margin <= started
    )
    waits = [g.trust_removed_at + margin for g in grants]
    waits += [_when(e["trust"]) + margin for e in entries]
    later = max(waits)
    if later > started:
        raise StepWaits(
            "Ending access: the SSM sessions of "
            f"{', '.join(sorted(names))} are terminated once more when IAM has "
            f"propagated the trust ({int(margin.total_seconds())} s).",
            countdown=(later - started).total_seconds(),
        )


def _principals_mark(role: OperationRole, step: str, at: datetime, ready) -> None:
    """Record `step` done at `at` for the removed cross-account users whose
    ending is `ready` for it; endings done with and past the session window
    are forgotten."""
    if not role.ended_principals:
        return  # nothing recorded, nothing to write
    prior = {"deny": "cutoff", "sessions": "trust"}[step]
    since = at - _window()
    kept = []
    for entry in role.ended_principals or []:
        if entry.get(prior) and not entry.get(step) and ready(entry):
            entry[step] = _iso(at)
        done = all(entry.get(k) for k in ("deny", "trust", "sessions"))
        cutoff = _when(entry.get("cutoff"))
        if not (done and cutoff and cutoff <= since):
            kept.append(entry)
    role.ended_principals = kept
    role.save(update_fields=["ended_principals"])
