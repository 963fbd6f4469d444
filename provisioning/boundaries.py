"""The two permissions boundaries: created by the deployment, never by opsgate.

Every operation role carries the role boundary and every IAM user the user
boundary; opsgate's own policy may not write either, so it cannot widen the
ceiling of anything it creates. They are created (and, when a release changes
them, updated) once per account by a person with administrator rights:
`manage.py opsgate_boundaries --apply`, or the CloudFormation template that
`manage.py opsgate_boundaries --cloudformation` prints
(deploy/cloudformation/opsgate-boundaries.json). opsgate's sync only checks that
they exist (provisioning.sync.accounts._require_boundaries).
"""

from typing import Any

from django.conf import settings

from provisioning import aws, iam, policies

ROLE_DESCRIPTION = (
    "Permissions boundary of every opsgate operation role. Created by the "
    "deployment; opsgate may not change it."
)
USER_DESCRIPTION = (
    "Permissions boundary of every IAM user opsgate creates (operators). "
    "Created by the deployment; opsgate may not change it."
)
COMMAND = "manage.py opsgate_boundaries --apply"
TEMPLATE = "deploy/cloudformation/opsgate-boundaries.json"


def documents(*, account_id: str, partition: str = "aws") -> dict[str, dict]:
    """Both boundary documents, by policy name (from the settings)."""
    conf = settings.OPSGATE
    return {
        conf["ROLE_BOUNDARY_NAME"]: policies.role_boundary_policy(),
        conf["USER_BOUNDARY_NAME"]: policies.user_boundary_policy(
            account_id=account_id, path=conf["IAM_PATH"], partition=partition
        ),
    }


def caller(account: Any = None) -> tuple[str, str]:
    """(account id, partition) of the credentials in use (through `account`'s
    provisioner role when given)."""
    with aws.aws_action("sts:GetCallerIdentity"):
        identity = aws.client("sts", account).get_caller_identity()
    return identity["Account"], identity["Arn"].split(":")[1]


def apply(client: Any = None, *, account: Any = None) -> dict[str, str]:
    """Create or update both boundaries in the caller's account with the
    caller's credentials (an administrator's, never opsgate's). Idempotent.
    Returns what happened to each, by ARN: created, updated or unchanged.
    `account`: reach it the way opsgate does (tests and the demo only: a
    real provisioner role may not write the boundaries)."""
    account_id, partition = caller(account)
    client = client or aws.client("iam", account)
    path = settings.OPSGATE["IAM_PATH"]
    descriptions = [ROLE_DESCRIPTION, USER_DESCRIPTION]
    outcome = {}
    docs = documents(account_id=account_id, partition=partition)
    for (name, document), description in zip(docs.items(), descriptions, strict=True):
        arn = policies.policy_arn(
            account_id=account_id, path=path, name=name, partition=partition
        )
        existed = iam.policy_exists(client, arn=arn)
        wrote = iam.ensure_managed_policy(
            client,
            arn=arn,
            name=name,
            path=path,
            document=document,
            description=description,
            tags=[],
        )
        outcome[arn] = ("updated" if existed else "created") if wrote else "unchanged"
    return outcome


# --- CloudFormation -----------------------------------------------------------


def _sub(value: Any) -> Any:
    """Strings naming a template parameter or pseudo parameter become Fn::Sub;
    IAM's own variables in them (${aws:username}) are escaped as ${!…}."""
    if isinstance(value, dict):
        return {k: _sub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_sub(v) for v in value]
    if isinstance(value, str) and ("${AWS::" in value or "${IamPath}" in value):
        return {"Fn::Sub": value.replace("${aws:", "${!aws:")}
    return value


def _managed_policy(name_parameter: str, description: str, document: dict) -> dict:
    return {
        "Type": "AWS::IAM::ManagedPolicy",
        # A boundary in use cannot be deleted, and must not go with a stack.
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "ManagedPolicyName": {"Ref": name_parameter},
            "Path": {"Ref": "IamPath"},
            "Description": description,
            "PolicyDocument": _sub(document),
        },
    }


def cloudformation_template(
    *, path: str, role_boundary_name: str, user_boundary_name: str
) -> dict:
    """The template that creates both boundaries in one account (deploy it in
    every account opsgate manages, or as a StackSet). Pure: the defaults are
    the arguments."""
    user_document = policies.user_boundary_policy(
        account_id="${AWS::AccountId}", path="${IamPath}", partition="${AWS::Partition}"
    )
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": (
            "opsgate's permissions boundaries: the most any operation role and any "
            "operator's IAM user can ever do. Generated by "
            "`manage.py opsgate_boundaries --cloudformation`."
        ),
        "Parameters": {
            "IamPath": {
                "Type": "String",
                "Default": path,
                "AllowedPattern": "^/(.+/)?$",
                "Description": "OPSGATE_IAM_PATH",
            },
            "OperationRoleBoundaryName": {
                "Type": "String",
                "Default": role_boundary_name,
                "Description": "OPSGATE_ROLE_BOUNDARY_NAME",
            },
            "OperatorBoundaryName": {
                "Type": "String",
                "Default": user_boundary_name,
                "Description": "OPSGATE_USER_BOUNDARY_NAME",
            },
        },
        "Resources": {
            "OperationRoleBoundary": _managed_policy(
                "OperationRoleBoundaryName",
                ROLE_DESCRIPTION,
                policies.role_boundary_policy(),
            ),
            "OperatorBoundary": _managed_policy(
                "OperatorBoundaryName", USER_DESCRIPTION, user_document
            ),
        },
        "Outputs": {
            "OperationRoleBoundaryArn": {"Value": {"Ref": "OperationRoleBoundary"}},
            "OperatorBoundaryArn": {"Value": {"Ref": "OperatorBoundary"}},
        },
    }
