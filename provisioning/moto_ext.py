"""What moto (the demo's and the tests' AWS) lacks and opsgate relies on:
permissions boundaries on IAM users, and (provisioning.moto_ext_run_command)
Run Command for opsgate's two OS-user SSM documents.

moto 5 ignores `PermissionsBoundary` in CreateUser, returns none in GetUser and
GetAccountAuthorizationDetails, and does not implement
PutUserPermissionsBoundary or DeleteUserPermissionsBoundary. `install()` adds
them the way IAM behaves: the boundary must name an existing managed policy
(NoSuchEntity otherwise), and GetUser, CreateUser and the authorization details
show it. opsgate itself never imports this module: the demo's moto server
(`python -m provisioning.moto_ext`), the tests and the benchmarks do.
"""

import sys
from typing import Any


def install() -> None:
    """Teach moto's IAM user permissions boundaries (idempotent)."""
    from moto.core.responses import EmptyResult
    from moto.core.serialize import never_return
    from moto.iam import models, responses

    from provisioning import moto_ext_run_command

    moto_ext_run_command.install()  # opsgate's two SSM documents (issue 25)
    if getattr(models.User, "permissions_boundary_arn", "absent") != "absent":
        return

    def permissions_boundary(user: Any) -> dict[str, str] | None:
        if not user.permissions_boundary_arn:
            return None
        return {
            "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
            "PermissionsBoundaryArn": user.permissions_boundary_arn,
        }

    models.User.permissions_boundary_arn = None
    models.User.permissions_boundary = property(permissions_boundary)

    def _existing_boundary(response: Any) -> str | None:
        arn = response._get_param("PermissionsBoundary")
        if arn:
            response.backend.get_policy(arn)  # NoSuchEntity, as IAM answers
        return arn

    create_user = responses.IamResponse.create_user

    def create_user_with_boundary(self: Any) -> Any:
        arn = _existing_boundary(self)
        result = create_user(self)
        self.backend.get_user(
            self._get_param("UserName")
        ).permissions_boundary_arn = arn
        return result

    def put_user_permissions_boundary(self: Any) -> Any:
        arn = _existing_boundary(self)
        self.backend.get_user(
            self._get_param("UserName")
        ).permissions_boundary_arn = arn
        return EmptyResult()

    def delete_user_permissions_boundary(self: Any) -> Any:
        self.backend.get_user(
            self._get_param("UserName")
        ).permissions_boundary_arn = None
        return EmptyResult()

    # As in IAM, ListUsers leaves the boundary out (GetUser shows it).
    responses.IamResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER[
        "ListUsersResponse.Users.User.PermissionsBoundary"
    ] = never_return
    responses.IamResponse.create_user = create_user_with_boundary
    responses.IamResponse.put_user_permissions_boundary = put_user_permissions_boundary
    responses.IamResponse.delete_user_permissions_boundary = (
        delete_user_permissions_boundary
    )


def main(argv: list[str] | None = None) -> None:
    """`moto_server` with user permissions boundaries (same arguments)."""
    from moto.server import main as moto_main

    install()
    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
