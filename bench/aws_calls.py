"""AWS calls per operation, counted at the boto3 layer, against the minimum."""

from accounts_app.models import AwsAccount
from accounts_app.services import access_requests, people, projects, roles
from provisioning import aws, sync


def split(calls: list[str]) -> tuple[list[str], list[str]]:
    writes = [c for c in calls if aws.is_write(c)]
    return [c for c in calls if not aws.is_write(c)], writes


def measure() -> list[dict]:
    """One row per operation: reads, writes, the minimum writes, and the calls."""
    account = AwsAccount.objects.get(is_default=True)
    admin = people.person_add(actor=None, account=account, iam_user_name="bench-admin")
    approver = people.person_add(
        actor=None, account=account, iam_user_name="bench-appr"
    )
    first = people.person_add(actor=None, account=account, iam_user_name="bench-first")
    project = projects.project_create(
        actor=admin.user,
        name="bench project",
        account=account,
        approvers=[approver.user],
    )
    role = roles.role_create(actor=admin.user, project=project, os_user="ops")
    sync.account_baseline_sync(account_id=account.pk)
    for person in (admin, approver, first):
        sync.iam_user_sync(iam_user_id=person.pk)

    def grant(person):
        req = access_requests.access_request_create(
            requester=person,
            role=role,
            reason="bench",
            duration_hours=8,
            actor=person.user,
        )
        return access_requests.access_request_approve(
            access_request=req, approver=approver.user
        )

    grant(first)
    sync.role_sync(role_id=role.pk)  # the role now exists
    rows = []

    def row(name: str, minimum: int, action) -> None:
        with aws.observe_calls() as calls:
            action()
        reads, writes = split(calls)
        rows.append(
            {
                "operation": name,
                "reads": len(reads),
                "writes": len(writes),
                "minimum_writes": minimum,
                "calls": calls,
            }
        )

    newcomer = people.person_add(actor=None, account=account, iam_user_name="bench-new")
    row(
        "new person (CreateUser with tags, AddUserToGroup)",
        2,
        lambda: sync.iam_user_sync(iam_user_id=newcomer.pk),
    )
    second = grant(newcomer)
    row("grant on an existing role", 1, lambda: sync.role_sync(role_id=role.pk))
    row("nothing changed: role", 0, lambda: sync.role_sync(role_id=role.pk))

    def user_again():
        newcomer.bump()
        sync.iam_user_sync(iam_user_id=newcomer.pk)

    row("nothing changed: user", 0, user_again)
    access_requests.access_request_revoke(access_request=second, actor=approver.user)
    row(
        "revoke (trust + deny of the person's live sessions)",
        2,
        lambda: sync.role_sync(role_id=role.pk),
    )
    row(
        "nothing changed: role with a deny still in force",
        0,
        lambda: sync.role_sync(role_id=role.pk),
    )
    first_grant = role.requests.get(requester=first, status="approved")
    access_requests.access_request_revoke(
        access_request=first_grant, actor=approver.user
    )
    row(
        # Fail closed: the deny and a trust of nobody before the deletion.
        "revoke of the last grant (role deleted)",
        6,
        lambda: sync.role_sync(role_id=role.pk),
    )
    return rows
