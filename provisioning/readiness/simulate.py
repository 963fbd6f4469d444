"""iam:SimulatePrincipalPolicy as the final answer (real AWS only, behind
OPSGATE_READINESS_SIMULATE)."""

from typing import Any

from accounts_app.models import AccessRequest
from provisioning import aws, policies
from provisioning.aws import AwsError, aws_action
from provisioning.readiness.checks import READY, Check, conf, failed_call, person_arn


def _decisions(iam: Any, **kwargs: Any) -> list[dict]:
    results = []
    while True:
        with aws_action("iam:SimulatePrincipalPolicy"):
            page = iam.simulate_principal_policy(**kwargs)
        results += page.get("EvaluationResults", [])
        if not page.get("IsTruncated"):
            return results
        kwargs["Marker"] = page["Marker"]


def simulate_check(grant: AccessRequest, instance_rows_: list[dict]) -> Check:
    """The person's user may sts:AssumeRole the role with MFA; the role may
    ssm:StartSession on each ready instance with its Project tag."""
    role = grant.role
    title = "IAM policy simulation"
    role_arn = role.arn or policies.role_arn(
        account_id=role.account.account_id,
        path=conf("IAM_PATH"),
        name=role.role_name,
        partition=role.account.partition,
    )
    denied = []
    try:
        assume = _decisions(
            aws.client("iam", grant.requester.account),
            PolicySourceArn=person_arn(grant),
            ActionNames=["sts:AssumeRole"],
            ResourceArns=[role_arn],
            ContextEntries=[
                {
                    "ContextKeyName": "aws:MultiFactorAuthPresent",
                    "ContextKeyValues": ["true"],
                    "ContextKeyType": "boolean",
                }
            ],
        )
        denied += [
            f"sts:AssumeRole on {role.role_name} ({r['EvalDecision']})"
            for r in assume
            if r.get("EvalDecision") != "allowed"
        ]
        targets = [
            instance_arn(role.account, row["region"], row["instance_id"])
            for row in instance_rows_
            if row["state"] == READY
        ]
        if targets:
            sessions = _decisions(
                aws.client("iam", role.account),
                PolicySourceArn=role_arn,
                ActionNames=["ssm:StartSession"],
                ResourceArns=targets,
                ContextEntries=[
                    {
                        "ContextKeyName": key,
                        "ContextKeyValues": [role.project.name],
                        "ContextKeyType": "string",
                    }
                    for key in ("aws:ResourceTag/Project", "aws:PrincipalTag/Project")
                ],
            )
            denied += [
                f"ssm:StartSession on {_last(r.get('EvalResourceName', ''))}"
                f" ({r['EvalDecision']})"
                for r in sessions
                if r.get("EvalDecision") != "allowed"
            ]
    except AwsError as exc:
        return failed_call("simulate", title, exc)
    if denied:
        return Check(
            "simulate",
            title,
            False,
            f"IAM's policy simulator denies: {'; '.join(denied)}.",
            fix="An admin compares the role and the operators group with the "
            "Drift page; a permission boundary or an SCP may deny it.",
            propagating=True,
        )
    return Check("simulate", title, True, "IAM's policy simulator allows the way in.")


def _last(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def instance_arn(account: Any, region: str, instance_id: str) -> str:
    return (
        f"arn:{account.partition}:ec2:{region}:{account.account_id}:"
        f"instance/{instance_id}"
    )
