"""The deployment step creates opsgate's two SSM documents (issue 25) against
moto: `manage.py opsgate_boundaries --apply` in every region of the account's
sessions, idempotently, restoring an edited document; the CloudFormation
template does the same; opsgate's own credentials cannot."""

import json
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from django.core.management import CommandError, call_command
from moto.core.authorization import enable_iam_authentication

from provisioning import aws, os_user_deploy, os_user_documents
from provisioning.os_user_documents import CHECK, ENSURE
from tests import iam_sim
from tests.test_least_privilege import service_policy

pytestmark = pytest.mark.django_db
TEMPLATE = Path(__file__).resolve().parents[1] / os_user_documents.TEMPLATE
EVIL = {
    "schemaVersion": "2.2",
    "description": "edited by hand",
    "parameters": {"UserName": {"type": "String"}},
    "mainSteps": [
        {
            "action": "aws:runShellScript",
            "name": "ensureOsUser",
            "inputs": {"runCommand": ["useradd -G wheel '{{ UserName }}'"]},
        }
    ],
}


def ssm(region: str = "us-east-1"):
    return boto3.client("ssm", region_name=region)


def default_content(name: str, region: str = "us-east-1") -> dict:
    return json.loads(ssm(region).get_document(Name=name)["Content"])


def versions(name: str, region: str = "us-east-1") -> tuple[str, str]:
    found = ssm(region).describe_document(Name=name)["Document"]
    return found["DefaultVersion"], found["LatestVersion"]


def apply(capsys, *args: str) -> list[str]:
    capsys.readouterr()
    call_command("opsgate_boundaries", "--apply", *args)
    return [line for line in capsys.readouterr().out.splitlines() if "SSM" in line]


def test_apply_creates_both_documents_in_every_region_of_the_accounts_sessions(
    aws_env, account, capsys
):
    account.regions = ["eu-west-1", "us-east-1"]
    account.save()
    assert apply(capsys) == [
        f"created: SSM document {name} in {region} (default version 1)"
        for region in ("eu-west-1", "us-east-1")
        for name in (CHECK, ENSURE)
    ]
    for region in ("eu-west-1", "us-east-1"):
        for name, content in os_user_documents.documents().items():
            assert default_content(name, region) == content
            described = ssm(region).describe_document(Name=name)["Document"]
            assert described["DocumentType"] == "Command"
            assert described["Tags"] == [
                {"Key": "ManagedBy", "Value": "opsgate-deployment"}
            ]
    assert (
        ssm("eu-central-1").list_documents(
            Filters=[{"Key": "Owner", "Values": ["Self"]}]
        )["DocumentIdentifiers"]
        == []
    )


def test_apply_without_an_account_in_opsgate_uses_opsgates_region(aws_env, capsys):
    assert apply(capsys) == [
        f"created: SSM document {name} in us-east-1 (default version 1)"
        for name in (CHECK, ENSURE)
    ]


def test_apply_takes_the_regions_it_is_given(aws_env, account, capsys):
    lines = apply(capsys, "--region", "ap-south-1", "--region", "eu-north-1")
    assert [line.split(" in ")[1].split()[0] for line in lines] == [
        "ap-south-1",
        "ap-south-1",
        "eu-north-1",
        "eu-north-1",
    ]
    with pytest.raises(CommandError, match="'eu west' is not an AWS region"):
        call_command("opsgate_boundaries", "--apply", "--region", "eu west")


def test_apply_again_changes_nothing(aws_env, account, capsys):
    apply(capsys)
    assert apply(capsys) == [
        f"unchanged: SSM document {name} in us-east-1 (default version 1)"
        for name in (CHECK, ENSURE)
    ]
    assert versions(ENSURE) == ("1", "1")


def test_apply_restores_a_document_edited_by_hand(aws_env, account, capsys):
    apply(capsys)
    ssm().update_document(
        Name=ENSURE, Content=json.dumps(EVIL), DocumentVersion="$LATEST"
    )
    ssm().update_document_default_version(Name=ENSURE, DocumentVersion="2")
    assert apply(capsys)[1] == (
        f"updated: SSM document {ENSURE} in us-east-1 (default version 1)"
    )
    assert default_content(ENSURE) == os_user_documents.ensure_document()
    assert versions(ENSURE) == ("1", "2")


def test_apply_makes_a_new_version_of_an_old_document_the_default(
    aws_env, account, capsys
):
    ssm().create_document(Name=ENSURE, Content=json.dumps(EVIL), DocumentType="Command")
    assert apply(capsys)[1] == (
        f"updated: SSM document {ENSURE} in us-east-1 (default version 2)"
    )
    assert default_content(ENSURE) == os_user_documents.ensure_document()
    assert versions(ENSURE) == ("2", "2")


def test_apply_finishes_what_a_stopped_run_began(aws_env, account, capsys):
    """A version already holds the content but is not the default: SSM would
    refuse the same content again (DuplicateDocumentContent)."""
    ssm().create_document(Name=ENSURE, Content=json.dumps(EVIL), DocumentType="Command")
    ssm().update_document(
        Name=ENSURE,
        Content=os_user_deploy.text(os_user_documents.ensure_document()),
        DocumentVersion="$LATEST",
    )
    assert apply(capsys)[1] == (
        f"updated: SSM document {ENSURE} in us-east-1 (default version 2)"
    )
    assert versions(ENSURE) == ("2", "2")


def test_apply_refuses_a_document_of_another_type_with_the_same_name(
    aws_env, account, capsys
):
    automation = {"schemaVersion": "0.3", "mainSteps": []}
    ssm().create_document(
        Name=CHECK, Content=json.dumps(automation), DocumentType="Automation"
    )
    with pytest.raises(CommandError, match="is a Automation document, not a Command"):
        call_command("opsgate_boundaries", "--apply")
    assert default_content(CHECK) == automation


def test_opsgates_own_credentials_cannot_create_the_documents(
    aws_env, iam, monkeypatch
):
    """moto checks actions only; tests/test_least_privilege.py asks the same
    of the full policy, resources and conditions included."""
    iam.create_user(UserName="opsgate-service")
    iam.put_user_policy(
        UserName="opsgate-service",
        PolicyName="opsgate",
        PolicyDocument=json.dumps(iam_sim.moto_projection(service_policy())),
    )
    key = iam.create_access_key(UserName="opsgate-service")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    aws.reset_clients()
    content = os_user_deploy.text(os_user_documents.ensure_document())
    with enable_iam_authentication():
        with pytest.raises(aws.PermanentError, match="AccessDenied"):
            os_user_deploy.apply(regions=["us-east-1"])
        as_opsgate = boto3.Session(
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        ).client("ssm", region_name="us-east-1")
        with pytest.raises(ClientError, match="ssm:CreateDocument"):
            as_opsgate.create_document(
                Name=ENSURE, Content=content, DocumentType="Command"
            )
    aws.reset_clients()
    monkeypatch.undo()
    assert (
        ssm().list_documents(Filters=[{"Key": "Owner", "Values": ["Self"]}])[
            "DocumentIdentifiers"
        ]
        == []
    )


def test_the_command_prints_the_documents_and_their_template(aws_env, capsys):
    call_command("opsgate_boundaries", "--ssm-documents")
    assert json.loads(capsys.readouterr().out) == os_user_documents.documents()
    call_command("opsgate_boundaries", "--ssm-cloudformation")
    assert json.loads(capsys.readouterr().out) == json.loads(TEMPLATE.read_text())


def test_the_cloudformation_template_creates_both_documents(aws_env):
    boto3.client("cloudformation", region_name="eu-west-1").create_stack(
        StackName="opsgate-os-user-documents", TemplateBody=TEMPLATE.read_text()
    )
    for name, content in os_user_documents.documents().items():
        assert default_content(name, "eu-west-1") == content
    # What the stack made is what the command keeps.
    done = os_user_deploy.apply(
        regions=["eu-west-1"], client=lambda region: ssm(region)
    )
    assert [outcome for _, _, outcome, _ in done] == ["unchanged", "unchanged"]


def test_before_migrate_the_step_uses_opsgates_region(monkeypatch, settings):
    """scripts/demo.sh runs the step before `migrate`: no accounts table."""
    from django.db import OperationalError

    from accounts_app.models import AwsAccount

    def no_table(**kwargs):
        raise OperationalError("no such table: accounts_app_awsaccount")

    monkeypatch.setattr(AwsAccount.objects, "filter", no_table)
    settings.OPSGATE = {**settings.OPSGATE, "REGION": "eu-south-2"}
    assert os_user_deploy.regions_of("123456789012") == ["eu-south-2"]


def test_the_demo_deploys_the_documents_in_each_of_its_accounts(aws_env):
    from accounts_app.models import AwsAccount

    call_command("demo_seed")
    accounts = list(AwsAccount.objects.all())
    assert len(accounts) == 3  # the hub, staging and prod
    for account in accounts:
        for region in account.session_regions:
            client = aws.client("ssm", account, region=region)
            for name, content in os_user_documents.documents().items():
                found = client.get_document(Name=name)
                assert json.loads(found["Content"]) == content
