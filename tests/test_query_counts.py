"""Every list page runs the same number of queries with 10 and with 1,000 rows
(issue 6 item 4), and the EC2 reads of "My access" do not grow with grants.

The rows are bulk-created: N people, N projects (bob approves each) with one
role each, a grant for carol on every role, a pending request on every role,
N audit events and N drift rows; N IAM users and roles are out of sync."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    IamUser,
    OperationRole,
    Project,
    RequestStatus,
)
from provisioning import aws
from provisioning.models import Drift, DriftKind
from tests.helpers import amazon_linux_image

pytestmark = pytest.mark.django_db

SIZES = [10, 1000]


def bulk_world(n, *, account, bob, carol):
    now = timezone.now()
    User = get_user_model()
    users = User.objects.bulk_create(
        User(username=f"u{i:04}", email=f"u{i:04}@example.com") for i in range(n)
    )
    people = IamUser.objects.bulk_create(
        IamUser(user=u, account=account, name=u.username) for u in users
    )
    projects = Project.objects.bulk_create(
        Project(name=f"p{i:04}", account=account) for i in range(n)
    )
    Project.approvers.through.objects.bulk_create(
        Project.approvers.through(project=p, user=bob.user) for p in projects
    )
    roles = OperationRole.objects.bulk_create(
        OperationRole(
            project=p,
            account=account,
            os_user="deploy",
            role_name=f"{p.name}-deploy",
            desired_version=2,
            applied_version=1,
        )
        for p in projects
    )
    AccessRequest.objects.bulk_create(
        [
            AccessRequest(
                requester=carol,
                role=r,
                reason="grant",
                duration_hours=8,
                status=RequestStatus.APPROVED,
                decided_by=bob.user,
                decided_at=now,
                expires_at=now + timedelta(hours=8),
                provisioned_at=now,
                # What only some rows show: a column a page did not read
                # would cost a query a row.
                ticket="CHG-1",
                break_glass=True,
            )
            for r in roles
        ]
        + [
            AccessRequest(
                requester=p,
                role=r,
                reason="please",
                duration_hours=8,
                ticket="CHG-2",
                approvals_required=2,
                starts_at=now + timedelta(hours=1),
            )
            for p, r in zip(people, roles, strict=True)
        ]
    )
    # The first project also holds N roles, each granted to one person.
    extra = OperationRole.objects.bulk_create(
        OperationRole(
            project=projects[0],
            account=account,
            os_user=f"os{i:04}",
            role_name=f"{projects[0].name}-os{i:04}",
            extra_principal_arns=["arn:aws:iam::111122223333:user/zed"],
        )
        for i in range(n)
    )
    AccessRequest.objects.bulk_create(
        AccessRequest(
            requester=p,
            role=r,
            reason="grant",
            status=RequestStatus.APPROVED,
            decided_by=bob.user,
            decided_at=now,
        )
        for p, r in zip(people, extra, strict=True)
    )
    AuditEvent.objects.bulk_create(
        AuditEvent(
            actor_repr="alice",
            action="project.add",
            object_type="accounts_app.project",
            object_id=str(p.pk),
            object_repr=p.name,
            project=p,
        )
        for p in projects
    )
    Drift.objects.bulk_create(
        Drift(
            account=account,
            object_type="role",
            name=r.role_name,
            kind=DriftKind.TAG_CHANGED,
            expected={"Project": r.project.name},
            actual={},
            first_seen=now,
            last_seen=now,
        )
        for r in roles
    )
    return {"project": projects[0]}


# page, who, bound (queries, whatever the number of rows), a row it must show
PAGES = [
    # Who decided the grants: one query after them (request_details_load);
    # whether the user has an authenticator app: the MFA middleware's.
    ("home", "carol", 6, "p{last}"),
    # Two lists: the waiting one with its length (COUNT(*) OVER ()), the
    # grants with their own COUNT; + the user's projects, their roles (with
    # their accounts, for the filter, and whether the user decides each), the
    # people who hold each role (the trust capacity) and the approvals given
    # (requests that need two).
    ("approvals", "bob", 10, "u0000"),
    # The user's decisions with their length; + their projects and roles.
    ("approvals_decided", "bob", 6, "u{last}"),
    ("people", "alice", 6, "u0000"),
    # Paged (25 a page, by name): the first row is on the first page.
    ("projects", "alice", 8, "p0000"),
    # + each role's own approvers, its grants and their holders (the trust
    # capacity); the settings forms are on their own page.
    ("project_detail", "alice", 11, "os0000"),
    # No COUNT over the whole log: Previous/Next pages.
    ("audit", "alice", 6, "p{last}"),
    # Every total in one statement (break-glass uses to review, grants ended
    # that AWS may still honour, …); a list is read only when its total is
    # not 0.
    ("dashboard", "alice", 10, "u0000"),
    ("drift", "alice", 8, "p0000-deploy"),
]
# The only AWS reads a page may make, once per account. The trust capacity
# shown on approvals and project detail reads the quota stored on the account.
READS = {
    "home": ["ec2:DescribeInstances"],
}


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("page, who, bound, marker", PAGES, ids=[p[0] for p in PAGES])
def test_list_page_queries_do_not_grow_with_rows(
    login,
    account,
    alice,
    bob,
    carol,
    django_assert_max_num_queries,
    page,
    who,
    bound,
    marker,
    n,
):
    world = bulk_world(n, account=account, bob=bob, carol=carol)
    persona = {"alice": alice, "bob": bob, "carol": carol}[who]
    client = login(persona)
    client.get(reverse("people" if who == "alice" else "request_access"))
    args = [world["project"].pk] if page == "project_detail" else []
    with aws.observe_calls() as calls, django_assert_max_num_queries(bound):
        response = client.get(reverse(page, args=args))
    assert response.status_code == 200
    assert marker.format(last=f"{n - 1:04}") in response.content.decode()
    assert calls == READS.get(page, [])


def test_instances_of_many_projects_come_from_one_ec2_read(aws_env, account):
    import boto3

    from provisioning import direct

    ec2 = boto3.client("ec2", region_name="us-east-1")
    image = amazon_linux_image(ec2)
    for project, name in [("p1", "web-1"), ("p1", "web-2"), ("p2", "db"), ("x", "no")]:
        ec2.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [
                        {"Key": "Project", "Value": project},
                        {"Key": "Name", "Value": name},
                    ],
                }
            ],
        )
    projects = Project.objects.bulk_create(
        Project(name=name, account=account) for name in ["p1", "p2", "p3"]
    )
    with aws.observe_calls() as calls:
        found = direct.instances_by_project(projects)
    assert calls == ["ec2:DescribeInstances"]
    names = {pk: [i.name for i in rows] for pk, (rows, error) in found.items()}
    assert names == {
        projects[0].pk: ["web-1", "web-2"],
        projects[1].pk: ["db"],
        projects[2].pk: [],
    }
