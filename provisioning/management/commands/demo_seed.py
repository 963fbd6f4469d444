"""Demo data for the embedded demo: people, projects, roles, requests and EC2
instances tagged per project in moto. Safe to run twice."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts_app.models import IamUser, OperationRole, Project
from accounts_app.services import access_requests, break_glass, people, rules
from accounts_app.services import projects as project_services
from accounts_app.services import roles as role_services
from provisioning import aws, direct
from provisioning.moto_ext import enable_virtual_mfa

PASSWORD = "opsgate-demo-password"
# The demo's admin and approver have TOTP with this known secret, so
# `manage.py demo_totp EMAIL` can print their current code. Demo only.
DEMO_TOTP_SECRET = "OPSGATEDEMOTOTPSECRETKEY234567AB"
DEMO_TOTP_USERS = ["admin", "bob"]
PEOPLE = [
    # username, e-mail, staff, first name
    ("admin", "admin@example.com", True, "Ada"),
    ("bob", "bob@example.com", False, "Bob"),
    ("carol", "carol@example.com", False, "Carol"),
    ("dave", "dave@example.com", False, "Dave"),
]
# What each demo person is for (the sign-in page and the terminal say it).
TRY = {
    "admin": "admin (staff): people, projects, AWS accounts, audit",
    "bob": "approver of every demo project (approves in the CLI walkthrough)",
    "carol": "requester (pending requests; a grant in the staging account, "
    "Not ready: no MFA device)",
    "dave": "requester (an active grant, Ready; may break glass on incident; "
    "use him for the CLI walkthrough)",
}
PROJECTS = {
    "payments": (["deploy", "readonly"], ["bob"]),
    "Data Platform": (["analyst"], ["bob"]),
    # Approval rules (issue 13): one project each (see RULES below).
    "ledger": (["deploy"], ["bob", "admin"]),
    "incident": (["oncall"], ["bob"]),
    "infrastructure": (["ops"], ["bob"]),
}
# ledger needs two approvals; dave may break glass on incident; infrastructure
# requires a ticket like OPS-123.
RULES = {
    "ledger": {"approvals_required": 2},
    "infrastructure": {
        "ticket_pattern": r"^OPS-[0-9]+$",
        "ticket_url_template": "https://tracker.example.com/browse/{ticket}",
    },
}
BREAK_GLASS = {"incident": ["dave"]}
# Hub and spoke (DESIGN §1.5): the default account holds the people (and the
# roles above); two workload accounts hold roles that trust its IAM users,
# reached through their provisioner roles (moto acts in any account id).
WORKLOADS = [("111111111111", "staging"), ("222222222222", "prod")]
# A project with a role in each workload account.
CROSS_ACCOUNT_PROJECT = ("checkout", "deploy", ["bob"])
# Readiness (issue 25): these projects let opsgate create the OS run-as user
# on their instances (SSM document opsgate-EnsureOsUser); dave's IAM user gets
# a virtual MFA device, carol's none. So dave's Data Platform grant becomes
# Ready (opsgate creates the OS user analyst on etl-1) and carol's checkout
# grant in staging is Not ready: "Your IAM user carol has no MFA device".
# The OS-user answers come from the run-command simulation installed by
# provisioning.moto_ext.install(); without it moto's SendCommand prints
# nothing and the instance rows say "no OS user".
CREATE_OS_USERS = ["Data Platform", "checkout"]
MFA_PEOPLE = ["dave"]


class Command(BaseCommand):
    help = "Seed demo data (idempotent) and tag demo EC2 instances in moto."

    def handle(self, *args, **options) -> None:
        account = direct.account_ensure_default()
        User = get_user_model()
        admin = User.objects.filter(username="admin").first()
        with transaction.atomic():
            for username, email, staff, first in PEOPLE:
                if IamUser.objects.filter(name=username).exists():
                    continue
                person = people.person_add(
                    actor=admin,
                    account=account,
                    iam_user_name=username,
                    email=email,
                    first_name=first,
                    is_staff=staff,
                )
                login = person.user
                login.set_password(PASSWORD)
                login.is_staff = login.is_superuser = staff
                login.save()
                admin = admin or (login if staff else None)
            by_name = {u.username: u for u in User.objects.all()}
            for name, (os_users, approvers) in PROJECTS.items():
                project = Project.objects.filter(account=account, name=name).first()
                if project is None:
                    project = project_services.project_create(
                        actor=admin,
                        name=name,
                        account=account,
                        approvers=[by_name[a] for a in approvers],
                    )
                    if name in RULES:
                        rules.project_rules_set(
                            actor=admin, project=project, **RULES[name]
                        )
                    if name in BREAK_GLASS:
                        break_glass.break_glass_set(
                            actor=admin,
                            project=project,
                            allow=True,
                            people=[by_name[p] for p in BREAK_GLASS[name]],
                        )
                for os_user in os_users:
                    if not OperationRole.objects.filter(
                        project=project, os_user=os_user
                    ).exists():
                        role_services.role_create(
                            actor=admin, project=project, os_user=os_user
                        )
        workloads = self._workloads(account, admin, by_name)
        self._totp(by_name)
        self._requests(by_name)
        self._instances()
        self._workload_instances(workloads)
        self._readiness(account, admin)
        self.stdout.write(self.style.SUCCESS("demo data ready"))

    def _workloads(self, hub, admin, by_name) -> list:
        """staging and prod, each with a checkout role trusting the hub's
        users; their permissions boundaries and the OS-user SSM documents
        deployed (the administrator's step, played by the demo)."""
        from accounts_app.models import AwsAccount
        from accounts_app.services import accounts
        from provisioning import boundaries, os_user_deploy

        # scripts/demo.sh ran the step before the hub's regions were known.
        os_user_deploy.apply(regions=hub.session_regions)

        name, os_user, approvers = CROSS_ACCOUNT_PROJECT
        found = []
        for account_id, label in WORKLOADS:
            workload = AwsAccount.objects.filter(account_id=account_id).first()
            if workload is None:
                workload = accounts.account_add(
                    actor=admin,
                    account_id=account_id,
                    name=label,
                    holds_people=False,
                    identity_account_id=hub.account_id,
                    assume_role_arn=(
                        f"arn:aws:iam::{account_id}:role/opsgate-provisioner"
                    ),
                    external_id=f"opsgate-demo-{label}",
                )
            boundaries.apply(account=workload)
            os_user_deploy.apply(account=workload, regions=workload.session_regions)
            found.append(workload)
        with transaction.atomic():
            project = Project.objects.filter(name=name).first()
            if project is None:
                project = project_services.project_create(
                    actor=admin,
                    name=name,
                    account=found[0],
                    approvers=[by_name[a] for a in approvers],
                )
            for workload in found:
                if not OperationRole.objects.filter(
                    project=project, account=workload, os_user=os_user
                ).exists():
                    role_services.role_create(
                        actor=admin, project=project, os_user=os_user, account=workload
                    )
        return found

    def _readiness(self, account, admin) -> None:
        """Projects that opted in to OS-user creation, and an MFA device for
        the people in MFA_PEOPLE (their IAM users converged first, as the
        worker would: idempotent)."""
        from provisioning import sync

        for project in Project.objects.filter(name__in=CREATE_OS_USERS):
            if not project.create_os_users:
                project_services.project_update(
                    actor=admin,
                    project=project,
                    approvers=list(project.approvers.all()),
                    description=project.description,
                    allowed_durations=project.durations,
                    allow_permanent=project.allow_permanent,
                    rejection_reason_optional=project.rejection_reason_optional,
                    create_os_users=True,
                )
        sync.account_baseline_sync(account_id=account.pk)
        iam = aws.client("iam")
        for person in IamUser.objects.filter(name__in=MFA_PEOPLE, account=account):
            sync.iam_user_sync(iam_user_id=person.pk)
            if iam.list_mfa_devices(UserName=person.name)["MFADevices"]:
                continue
            enable_virtual_mfa(iam, person.name)

    def _workload_instances(self, workloads) -> None:
        name = CROSS_ACCOUNT_PROJECT[0]
        for workload in workloads:
            self._run_instances(
                aws.client("ec2", workload), {name: [f"{name}-{workload.name}-1"]}
            )

    def _totp(self, by_name) -> None:
        from allauth.mfa.models import Authenticator
        from allauth.mfa.totp.internal.auth import TOTP

        for username in DEMO_TOTP_USERS:
            user = by_name[username]
            if not Authenticator.objects.filter(
                user=user, type=Authenticator.Type.TOTP
            ).exists():
                TOTP.activate(user, DEMO_TOTP_SECRET)

    def _requests(self, by_name) -> None:
        from accounts_app.models import AccessRequest

        if AccessRequest.objects.exists():
            return
        carol = IamUser.objects.get(name="carol")
        dave = IamUser.objects.get(name="dave")
        deploy = OperationRole.objects.get(project__name="payments", os_user="deploy")
        analyst = OperationRole.objects.get(
            project__name="Data Platform", os_user="analyst"
        )
        access_requests.access_request_create(
            requester=carol,
            role=deploy,
            reason="Deploy release 2.3 to staging",
            duration_hours=8,
            actor=carol.user,
        )
        grant = access_requests.access_request_create(
            requester=dave,
            role=analyst,
            reason="Investigate the nightly ETL failure",
            duration_hours=24,
            actor=dave.user,
        )
        access_requests.access_request_approve(
            access_request=grant, approver=by_name["bob"], comment="ok for today"
        )
        # ledger needs two approvals: the admin gave one, bob's is missing.
        ledger = access_requests.access_request_create(
            requester=carol,
            role=OperationRole.objects.get(project__name="ledger", os_user="deploy"),
            reason="Month-end close: rerun the ledger export",
            duration_hours=8,
            actor=carol.user,
        )
        access_requests.access_request_approve(
            access_request=ledger, approver=by_name["admin"]
        )
        # Across accounts: carol deploys checkout in staging; dave asks for prod.
        name, os_user, _ = CROSS_ACCOUNT_PROJECT
        checkout = {
            r.account.name: r
            for r in OperationRole.objects.filter(
                project__name=name, os_user=os_user
            ).select_related("account")
        }
        staging = access_requests.access_request_create(
            requester=carol,
            role=checkout["staging"],
            reason="Try the checkout release candidate in staging",
            duration_hours=8,
            actor=carol.user,
        )
        access_requests.access_request_approve(
            access_request=staging, approver=by_name["bob"]
        )
        access_requests.access_request_create(
            requester=dave,
            role=checkout["prod"],
            reason="Look at the checkout error rate in prod",
            duration_hours=1,
            actor=dave.user,
        )

    def _instances(self) -> None:
        self._run_instances(
            aws.client("ec2"),
            {
                "payments": ["pay-web-1", "pay-batch-1"],
                "Data Platform": ["etl-1"],
                "unrelated": ["someone-elses-box"],
            },
        )

    def _run_instances(self, ec2, by_project: dict[str, list[str]]) -> None:
        existing = ec2.describe_instances(
            Filters=[{"Name": "tag-key", "Values": ["Project"]}]
        )["Reservations"]
        if existing:
            return
        # One Amazon Linux 2 image, asked by name (moto lists its 1,355 images
        # with about a second of CPU).
        image = ec2.describe_images(
            Owners=["amazon"],
            Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*"]}],
        )["Images"][0]["ImageId"]
        for project, names in by_project.items():
            for name in names:
                ec2.run_instances(
                    ImageId=image,
                    MinCount=1,
                    MaxCount=1,
                    InstanceType="t3.micro",
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
