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
        self._totp(by_name)
        self._requests(by_name)
        self._instances()
        self.stdout.write(self.style.SUCCESS("demo data ready"))

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

    def _instances(self) -> None:
        ec2 = aws.client("ec2")
        existing = ec2.describe_instances(
            Filters=[{"Name": "tag-key", "Values": ["Project"]}]
        )["Reservations"]
        if existing:
            return
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        for project, names in {
            "payments": ["pay-web-1", "pay-batch-1"],
            "Data Platform": ["etl-1"],
            "unrelated": ["someone-elses-box"],
        }.items():
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
