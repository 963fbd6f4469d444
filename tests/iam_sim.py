"""A small, strict IAM evaluator for opsgate's own policy and its operators.

moto can switch on access checks, but it only compares actions (every IAM
resource is "*" to it), ignores conditions and knows no permissions boundaries
on users. This evaluator covers the rest, for one account and identity-based
policies: the resource ARN each call acts on; Action/NotAction and
Resource/NotResource with wildcards and policy variables (${aws:username});
the condition operators opsgate's documents use, with IAM's rules for absent
keys (a negated operator, ...IfExists and ForAllValues hold; the others do
not); explicit denies in any policy, the boundary included; and a permissions
boundary, which must allow an action as well as an identity policy.
"""

import fnmatch
import re
from dataclasses import dataclass, field

ATTACH = {
    "AttachGroupPolicy",
    "DetachGroupPolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "AttachUserPolicy",
    "DetachUserPolicy",
}
BOUNDARY_OF_REQUEST = {
    "CreateUser",
    "PutUserPermissionsBoundary",
    "CreateRole",
    "PutRolePermissionsBoundary",
}


@dataclass
class Request:
    action: str  # "service:Operation"
    resource: str
    context: dict = field(default_factory=dict)  # key -> str or list of str


# --- Matching -------------------------------------------------------------------


def _as_list(value) -> list:
    return [value] if isinstance(value, str) else list(value)


_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _substitute(pattern: str, ctx: dict) -> str:
    """Policy variables take their value from the request; a variable the
    request does not have matches nothing (IAM makes the statement not apply)."""

    def value(match: re.Match) -> str:
        found = ctx.get(match.group(1))
        return found if isinstance(found, str) else "\0no-such-variable\0"

    return _VARIABLE.sub(value, pattern)


def _like(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    if ignore_case:
        return fnmatch.fnmatchcase(value.lower(), pattern.lower())
    return fnmatch.fnmatchcase(value, pattern)


def _matches(patterns, value: str, *, ignore_case: bool = False) -> bool:
    return any(_like(p, value, ignore_case=ignore_case) for p in _as_list(patterns))


# --- Conditions -----------------------------------------------------------------

_OPERATORS = {
    "StringEquals": (lambda e, a: a == e, False),
    "StringNotEquals": (lambda e, a: a == e, True),
    "StringEqualsIgnoreCase": (lambda e, a: a.lower() == e.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda e, a: a.lower() == e.lower(), True),
    "StringLike": (lambda e, a: _like(e, a), False),
    "StringNotLike": (lambda e, a: _like(e, a), True),
    "ArnEquals": (lambda e, a: a == e, False),
    "ArnNotEquals": (lambda e, a: a == e, True),
    "ArnLike": (lambda e, a: _like(e, a), False),
    "ArnNotLike": (lambda e, a: _like(e, a), True),
    "Bool": (lambda e, a: a.lower() == e.lower(), False),
}


def _operator_holds(operator: str, key: str, expected, ctx: dict) -> bool:
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _OPERATORS or qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise AssertionError(f"evaluator does not know {operator}")
    compare, negated = _OPERATORS[base]
    expected = [_substitute(e, ctx) for e in _as_list(expected)]
    if key not in ctx:
        if if_exists or qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        return negated

    def one(actual: str) -> bool:
        hit = any(compare(e, actual) for e in expected)
        return not hit if negated else hit

    values = _as_list(ctx[key])
    if qualifier == "ForAnyValue":
        return any(one(v) for v in values)
    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    return one(values[0])


def _condition_holds(condition: dict, ctx: dict) -> bool:
    return all(
        _operator_holds(operator, key, expected, ctx)
        for operator, pairs in condition.items()
        for key, expected in pairs.items()
    )


# --- Policies -------------------------------------------------------------------


def _applies(statement: dict, request: Request) -> bool:
    ctx = request.context
    if "Action" in statement:
        if not _matches(statement["Action"], request.action, ignore_case=True):
            return False
    elif _matches(statement["NotAction"], request.action, ignore_case=True):
        return False
    if "Resource" in statement:
        patterns = [_substitute(p, ctx) for p in _as_list(statement["Resource"])]
        if not _matches(patterns, request.resource):
            return False
    else:
        patterns = [_substitute(p, ctx) for p in _as_list(statement["NotResource"])]
        if _matches(patterns, request.resource):
            return False
    return _condition_holds(statement.get("Condition", {}), ctx)


def _statements(policy: dict, effect: str) -> list[dict]:
    return [s for s in policy["Statement"] if s["Effect"] == effect]


def evaluate(request: Request, *, identity: list[dict], boundary: dict | None) -> bool:
    """IAM's order for one account: an explicit deny anywhere wins; then an
    identity policy must allow, and so must the boundary when there is one."""
    everything = [*identity, *([boundary] if boundary else [])]
    if any(_applies(s, request) for p in everything for s in _statements(p, "Deny")):
        return False
    allowed = any(
        _applies(s, request) for p in identity for s in _statements(p, "Allow")
    )
    if boundary is not None:
        allowed = allowed and any(
            _applies(s, request) for s in _statements(boundary, "Allow")
        )
    return allowed


# --- opsgate's own calls (boto3 parameters) ---------------------------------------


def _document_arn(name: str, account_id: str, region: str = "us-east-1") -> str:
    if name.startswith("arn:"):
        return name
    owner = "" if name.startswith("AWS-") else account_id  # AWS's own documents
    return f"arn:aws:ssm:{region}:{owner}:document/{name}"


def send_command_resources(
    params: dict,
    *,
    account_id: str,
    region: str = "us-east-1",
    instance_tags: dict | None = None,
) -> list[tuple[str, dict]]:
    """(resource, condition keys) of each authorization ssm:SendCommand asks
    for: the document, each instance (its tags as ssm:resourceTag/<key>;
    `instance_tags`: instance id -> tags), and the output bucket if any. A
    tag target (Key tag:K) stands for the instances with that tag."""
    tags_of = instance_tags or {}
    found = [(_document_arn(params["DocumentName"], account_id, region), {})]

    def instance(instance_id: str, tags: dict) -> tuple[str, dict]:
        kind = "ssm" if instance_id.startswith("mi-") else "ec2"
        name = "managed-instance" if kind == "ssm" else "instance"
        arn = f"arn:aws:{kind}:{region}:{account_id}:{name}/{instance_id}"
        return arn, {f"ssm:resourceTag/{k}": v for k, v in tags.items()}

    for instance_id in params.get("InstanceIds", []):
        found.append(instance(instance_id, tags_of.get(instance_id, {})))
    for target in params.get("Targets", []):
        if target["Key"] == "InstanceIds":
            found += [instance(i, tags_of.get(i, {})) for i in target["Values"]]
        elif target["Key"].startswith("tag:"):
            key = target["Key"].removeprefix("tag:")
            found += [instance("*", {key: value}) for value in target["Values"]]
        else:
            found.append(instance("*", {}))
    if params.get("OutputS3BucketName"):
        found.append((f"arn:aws:s3:::{params['OutputS3BucketName']}", {}))
    return found


def resource_for(
    service: str, op: str, params: dict, account_id: str, path: str
) -> str:
    iam = f"arn:aws:iam::{account_id}"
    if service != "iam":
        if op == "TerminateSession":
            return f"arn:aws:ssm:us-east-1:{account_id}:session/{params['SessionId']}"
        if service == "ssm" and "Document" in op and "Name" in params:
            return _document_arn(params["Name"], account_id)
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


def _context(op: str, params: dict, resource: str, path: str, boundary: str) -> dict:
    ctx: dict = {}
    tags = params.get("Tags", [])
    for tag in tags:
        ctx[f"aws:RequestTag/{tag['Key']}"] = tag["Value"]
    keys = [t["Key"] for t in tags] + list(params.get("TagKeys", []))
    if keys:
        ctx["aws:TagKeys"] = keys
    owned = path in resource and (":role/" in resource or ":user/" in resource)
    if op in BOUNDARY_OF_REQUEST:
        # The boundary the call sets; absent when it sets none.
        if "PermissionsBoundary" in params:
            ctx["iam:PermissionsBoundary"] = params["PermissionsBoundary"]
    elif ":role/" in resource:
        # The boundary of the role the call changes: every role opsgate
        # creates carries the role boundary (asserted by the callers).
        ctx["iam:PermissionsBoundary"] = boundary
    if "PolicyArn" in params and op in ATTACH:
        ctx["iam:PolicyARN"] = params["PolicyArn"]
    if owned:
        # opsgate creates its users and roles tagged ManagedBy=opsgate and
        # refuses to touch others (test_aws_faults pins that).
        ctx["aws:ResourceTag/ManagedBy"] = "opsgate"
    return ctx


def decide(
    policy: dict,
    service: str,
    op: str,
    params: dict,
    *,
    account_id: str,
    path: str,
    boundary: str,
    instance_tags: dict | None = None,
) -> tuple[bool, str]:
    """(allowed, resource) of one boto3 call signed with `policy` alone. For
    ssm:SendCommand every resource must be allowed; the resource returned is
    the first refused one (`instance_tags`: see send_command_resources)."""
    if (service, op) == ("ssm", "SendCommand"):
        resources = send_command_resources(
            params, account_id=account_id, instance_tags=instance_tags
        )
        for resource, ctx in resources:
            request = Request("ssm:SendCommand", resource, ctx)
            if not evaluate(request, identity=[policy], boundary=None):
                return False, resource
        return True, resources[0][0]
    resource = resource_for(service, op, params, account_id, path)
    request = Request(
        f"{service}:{op}", resource, _context(op, params, resource, path, boundary)
    )
    return evaluate(request, identity=[policy], boundary=None), resource


def moto_projection(policy: dict) -> dict:
    """What moto can enforce: the allowed actions (on "*", without conditions)."""
    statements = [
        {"Effect": "Allow", "Action": s["Action"], "Resource": "*"}
        for s in policy["Statement"]
        if s["Effect"] == "Allow"
    ]
    return {"Version": "2012-10-17", "Statement": statements}
