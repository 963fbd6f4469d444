"""Import the CDK stack's parameter file (DESIGN §6) into the database.

Everything is validated first; if any entry is invalid nothing is written and
every error is returned with its place in the file. A second import of the same
file changes nothing."""

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts_app import trust, validation
from accounts_app.models import (
    AccessRequest,
    AwsAccount,
    IamUser,
    IamUserState,
    OperationRole,
    Project,
    RequestStatus,
)
from accounts_app.services import access_requests, people, projects, roles
from accounts_app.sync_requests import desired_changed


@dataclass
class ImportResult:
    errors: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    roles_to_sync: list[int] = field(default_factory=list)
    users_to_sync: list[int] = field(default_factory=list)


def _unwrap(data: Any) -> Any:
    if isinstance(data, dict) and "props" in data and "users" not in data:
        return data["props"]
    return data


def _check(errors: list[str], place: str, validator, value) -> bool:
    try:
        validator(value)
        return True
    except ValidationError as exc:
        errors.append(f"{place}: {validation.first_message(exc)}")
        return False


def _strings(errors: list[str], place: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append(f"{place}: expected a list of strings")
        return []
    return value


def validate(data: Any, account: AwsAccount, path: str) -> list[str]:
    errors: list[str] = []
    data = _unwrap(data)
    if not isinstance(data, dict):
        return ["top level: expected an object with users and roles"]
    users, roles = data.get("users", []), data.get("roles", [])
    if not isinstance(users, list) or not isinstance(roles, list):
        return ["top level: users and roles must be lists"]
    if not account.holds_roles:
        return [f"account {account}: holds no roles; import into an account that does"]
    known: dict[str, str] = {
        n.lower(): n
        for n in IamUser.objects.filter(
            account=account.identity, state=IamUserState.ACTIVE
        ).values_list("name", flat=True)
    }
    in_file: set[str] = set()
    for i, user in enumerate(users):
        place = f"users[{i}]"
        if not isinstance(user, dict):
            errors.append(f"{place}: expected an object")
            continue
        name = user.get("userName")
        if not isinstance(name, str):
            errors.append(f"{place}.userName: required")
            continue
        if _check(
            errors,
            f"{place}.userName ({name!r})",
            validation.validate_iam_user_name,
            name,
        ):
            if name.lower() in in_file:
                errors.append(
                    f"{place}.userName: {name} appears twice "
                    "(IAM names are unique regardless of case)"
                )
            elif name.lower() in known and known[name.lower()] != name:
                errors.append(
                    f"{place}.userName: clashes with existing user "
                    f"{known[name.lower()]} (names are unique regardless of case)"
                )
            in_file.add(name.lower())
        email = user.get("emailAddress")
        if email is not None and (
            not isinstance(email, str)
            or not _check(
                errors, f"{place}.emailAddress", validation.validate_email, email
            )
        ):
            if not isinstance(email, str):
                errors.append(f"{place}.emailAddress: expected a string")
    principals_known = in_file | set(known)
    pairs: set[tuple[str, str]] = set()
    names: set[str] = set()
    for j, role in enumerate(roles):
        place = f"roles[{j}]"
        if not isinstance(role, dict):
            errors.append(f"{place}: expected an object")
            continue
        project, os_user = role.get("projectName"), role.get("ssmSessionRunAs")
        ok = isinstance(project, str) and _check(
            errors, f"{place}.projectName", validation.validate_project_name, project
        )
        if not isinstance(project, str):
            errors.append(f"{place}.projectName: required")
        ok = (
            isinstance(os_user, str)
            and _check(
                errors, f"{place}.ssmSessionRunAs", validation.validate_os_user, os_user
            )
        ) and ok
        if not isinstance(os_user, str):
            errors.append(f"{place}.ssmSessionRunAs: required")
        if ok:
            if (project, os_user) in pairs:
                errors.append(f"{place}: {project} / {os_user} appears twice")
            pairs.add((project, os_user))
        role_name = role.get("roleName")
        if role_name is not None:
            if not isinstance(role_name, str):
                errors.append(f"{place}.roleName: expected a string")
            elif _check(
                errors,
                f"{place}.roleName",
                lambda v: validation.validate_iam_role_name(v, path=path),
                role_name,
            ):
                if role_name.lower() in names:
                    errors.append(f"{place}.roleName: {role_name} appears twice")
                names.add(role_name.lower())
        for k, name in enumerate(
            _strings(
                errors,
                f"{place}.rolePrincipalUserNames",
                role.get("rolePrincipalUserNames"),
            )
        ):
            if name.lower() not in principals_known:
                errors.append(
                    f"{place}.rolePrincipalUserNames[{k}]: {name} is not in "
                    "users and not known to opsgate"
                )
        for k, arn in enumerate(
            _strings(
                errors,
                f"{place}.rolePrincipalUserArns",
                role.get("rolePrincipalUserArns"),
            )
        ):
            _check(
                errors,
                f"{place}.rolePrincipalUserArns[{k}]",
                validation.validate_principal_arn,
                arn,
            )
    return errors


def _role_for(
    project: Project,
    os_user: str,
    role_name: str | None,
    result: ImportResult,
    account: AwsAccount,
) -> OperationRole:
    role = OperationRole.objects.filter(
        project=project, account=account, os_user=os_user
    ).first()
    if role is not None:
        if role_name and role.role_name != role_name:
            raise ValidationError(
                f"{project.name} / {os_user} already has the role {role.role_name}, "
                f"not {role_name}"
            )
        return role
    role = roles.role_create(
        actor="import",
        project=project,
        os_user=os_user,
        role_name=role_name or "",
        account=account,
    )
    result.created.append(f"role {role.role_name}")
    return role


def _trust_fits(role: OperationRole, *, place: str) -> None:
    """The role's trust with everyone it now holds (grants of this file and
    earlier ones, cross-account users) within AssumeRolePolicySizeQuota."""
    try:
        trust.trust_check(role, advice=trust.FULL_ON_IMPORT)
    except ValidationError as exc:
        raise ValidationError(f"{place}: {validation.first_message(exc)}") from None


def apply(data: Any, *, account: AwsAccount, path: str) -> ImportResult:
    """Validate, then write everything in one transaction (or nothing)."""
    result = ImportResult(errors=validate(data, account, path))
    if result.errors:
        return result
    data = _unwrap(data)
    try:
        with transaction.atomic():
            _apply(data, account, path, result)
    except ValidationError as exc:
        result.errors.extend(exc.messages)
        result.created.clear()
        result.roles_to_sync.clear()
        result.users_to_sync.clear()
    return result


def _apply(data: dict, account: AwsAccount, path: str, result: ImportResult) -> None:
    """The file's roles go into `account`, its users into the identity account
    that `account` trusts: the stacks of several accounts imported into one
    hub make each person one IAM user, whatever the number of files naming
    them."""
    identity = account.identity
    people_by_name: dict[str, IamUser] = {
        u.name.lower(): u
        for u in IamUser.objects.filter(account=identity, state=IamUserState.ACTIVE)
    }
    for user in data.get("users", []):
        name, email = user["userName"], user.get("emailAddress") or ""
        if name.lower() in people_by_name:
            continue
        person = people.person_add(
            actor="import", account=identity, iam_user_name=name, email=email
        )
        people_by_name[name.lower()] = person
        result.created.append(f"user {name}")
    now = timezone.now()
    for j, role_data in enumerate(data.get("roles", [])):
        # A project of that name in another account gets a role here too
        # (payments in prod and in staging is one project).
        named = Project.objects.filter(name=role_data["projectName"])
        project = named.filter(account=account).first() or named.order_by("pk").first()
        if project is None:
            project = projects.project_create(
                actor="import", account=account, name=role_data["projectName"]
            )
            result.created.append(f"project {project.name}")
        role = _role_for(
            project,
            role_data["ssmSessionRunAs"],
            role_data.get("roleName"),
            result,
            account,
        )
        changed = False
        extra = sorted(
            set(role.extra_principal_arns)
            | set(role_data.get("rolePrincipalUserArns") or [])
        )
        if extra != sorted(role.extra_principal_arns):
            role = roles.role_principals_set(
                role=role, extra_principal_arns=extra, actor="import", check=False
            )
            changed = True
        for name in role_data.get("rolePrincipalUserNames") or []:
            person = people_by_name[name.lower()]
            if AccessRequest.objects.filter(
                requester=person, role=role, status=RequestStatus.APPROVED
            ).exists():
                continue
            access_requests.grant_import(requester=person, role=role, now=now)
            result.created.append(f"grant {person.name} → {role.role_name}")
            changed = True
        if changed:
            # The whole role as this file leaves it (grants and cross-account
            # users) must fit its trust policy.
            _trust_fits(role, place=f"roles[{j}]")
            desired_changed(role)
            result.roles_to_sync.append(role.pk)
    result.users_to_sync = [
        p.pk for p in people_by_name.values() if p.applied_version < p.desired_version
    ]
