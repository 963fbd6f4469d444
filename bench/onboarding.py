"""Bulk onboarding: import N users and M roles, then wait for the workers."""

import io
import json
import tempfile
import time
from pathlib import Path

from django.core.management import call_command

from accounts_app.models import IamUser, OperationRole


def parameter_file(users: int, roles: int, principals_per_role: int = 5) -> dict:
    names = [f"user{i:05d}" for i in range(users)]
    return {
        "users": [{"userName": n, "emailAddress": f"{n}@example.com"} for n in names],
        "roles": [
            {
                "projectName": f"Project {j // 4}",
                "ssmSessionRunAs": f"os{j % 4}",
                "rolePrincipalUserNames": [
                    names[(j * principals_per_role + k) % users]
                    for k in range(principals_per_role)
                ],
            }
            for j in range(roles)
        ],
    }


def all_in_sync() -> bool:
    behind = IamUser.behind().count() + OperationRole.behind().count()
    return behind == 0


def measure(users: int, roles: int, timeout: float = 300) -> dict:
    """Import (enqueueing the work) and time until every user and role is in
    sync. The caller runs the workers."""
    path = Path(tempfile.mkdtemp()) / "operation-users.json"
    path.write_text(json.dumps(parameter_file(users, roles)))
    started = time.monotonic()
    call_command("import_operation_users", str(path), stdout=io.StringIO())
    imported = time.monotonic() - started
    while not all_in_sync():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not in sync after {timeout}s")
        time.sleep(0.2)
    return {
        "users": users,
        "roles": roles,
        "import_s": round(imported, 2),
        "total_s": round(time.monotonic() - started, 2),
    }
