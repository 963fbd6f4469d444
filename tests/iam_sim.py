"""A small, strict IAM evaluator for opsgate's own policy.

moto can switch on access checks, but it only compares actions (every IAM
resource is "*" to it) and ignores conditions. This evaluator covers the rest
for the calls opsgate makes: the resource ARN each call acts on, Allow/Deny
with wildcards, and the condition keys opsgate's policy uses, read from the
call's parameters.
"""

import fnmatch

ATTACH = {
    "AttachGroupPolicy",
    "DetachGroupPolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "AttachUserPolicy",
    "DetachUserPolicy",
}


def resource_for(
    service: str, op: str, params: dict, account_id: str, path: str
) -> str:
    iam = f"arn:aws:iam::{account_id}"
    if service != "iam":
        if op == "TerminateSession":
            return f"arn:aws:ssm:us-east-1:{account_id}:session/{params['SessionId']}"
        return "*"
    if op == "CreatePolicy":
        return f"{iam}:policy{params.get('Path', '/')}{params['PolicyName']}"
    if "PolicyArn" in params and op not in ATTACH:
        return params["PolicyArn"]
    if "GroupName" in params:
        return f"{iam}:group{path}{params['GroupName']}"
    if "RoleName" in params:
        return f"{iam}:role{params.get('Path', path)}{params['RoleName']}"
    if "UserName" in params:
        return f"{iam}:user{params.get('Path', path)}{params['UserName']}"
    if "SerialNumber" in params:
        return params["SerialNumber"]
    return "*"


def _matches(patterns, value: str, *, ignore_case: bool = False) -> bool:
    patterns = [patterns] if isinstance(patterns, str) else patterns
    if ignore_case:
        return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in patterns)
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _context(op: str, params: dict, resource: str, path: str, boundary: str) -> dict:
    ctx = {}
    for tag in params.get("Tags", []):
        ctx[f"aws:RequestTag/{tag['Key']}"] = tag["Value"]
    owned = path in resource and (":role/" in resource or ":user/" in resource)
    if ":role/" in resource:
        # The boundary of the role the call creates or changes; opsgate gives
        # every role it creates the boundary (asserted by the caller).
        ctx["iam:PermissionsBoundary"] = params.get(
            "PermissionsBoundary", boundary if op != "CreateRole" else ""
        )
    if "PolicyArn" in params and op in ATTACH:
        ctx["iam:PolicyARN"] = params["PolicyArn"]
    if owned:
        # opsgate creates its users and roles tagged ManagedBy=opsgate and
        # refuses to touch others (test_aws_faults pins that).
        ctx["aws:ResourceTag/ManagedBy"] = "opsgate"
    return ctx


def _condition_holds(condition: dict, ctx: dict) -> bool:
    for operator, pairs in condition.items():
        for key, expected in pairs.items():
            if key not in ctx:
                return False
            actual = ctx[key]
            expected = [expected] if isinstance(expected, str) else expected
            if operator in ("StringEquals", "ArnEquals") and actual not in expected:
                return False
            elif operator == "ArnLike" and not _matches(expected, actual):
                return False
            elif operator not in ("StringEquals", "ArnEquals", "ArnLike"):
                raise AssertionError(f"evaluator does not know {operator}")
    return True


def decide(
    policy: dict,
    service: str,
    op: str,
    params: dict,
    *,
    account_id: str,
    path: str,
    boundary: str,
) -> tuple[bool, str]:
    """(allowed, resource): explicit deny wins; otherwise some Allow must match."""
    action = f"{service}:{op}"
    resource = resource_for(service, op, params, account_id, path)
    ctx = _context(op, params, resource, path, boundary)
    allowed = False
    for statement in policy["Statement"]:
        if not _matches(statement["Action"], action, ignore_case=True):
            continue
        if not _matches(statement["Resource"], resource):
            continue
        condition = statement.get("Condition", {})
        holds = _condition_holds(condition, ctx)
        if statement["Effect"] == "Deny" and holds:
            return False, resource
        if statement["Effect"] == "Allow" and holds:
            allowed = True
    return allowed, resource


def moto_projection(policy: dict) -> dict:
    """What moto can enforce: the allowed actions (on "*", without conditions)."""
    statements = [
        {"Effect": "Allow", "Action": s["Action"], "Resource": "*"}
        for s in policy["Statement"]
        if s["Effect"] == "Allow"
    ]
    return {"Version": "2012-10-17", "Statement": statements}
