"""API: the caller's grants (how to use them) and ending one."""

from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from accounts_app import selectors
from accounts_app.models import AccessRequest
from accounts_app.services import access_requests
from portal.api import schemas as s
from portal.api.app import PK, _my_requests, _r, api
from portal.api.core import require_scope
from provisioning import direct


@api.get("/grants", response=_r({200: list[s.GrantOut]}), tags=["grants"])
def grants(request: HttpRequest):
    """My active grants with what it takes to connect: role ARN, the
    ~/.aws/config profile (the My access page's own), and the EC2 instances
    of the project in the role's account."""
    require_scope(request, "read")
    rows = list(
        AccessRequest.active_grants()
        .filter(requester__user=request.user)
        .select_related("role__project__account", "role__account", "requester__account")
        .order_by("expires_at", "pk")
    )
    roles = sorted({g.role for g in rows}, key=lambda r: r.pk)
    instances = direct.instances_by_role(roles) if roles else {}
    return [_grant(g, *instances[g.role_id]) for g in rows]


def _grant(grant: AccessRequest, found, error: str) -> dict:
    running = [i for i in found if i.state == "running"]
    target = (running or found or [None])[0]
    conn = selectors.grant_connection(
        grant, instance_id=target.instance_id if target else ""
    )
    return {
        **s.RequestOut.of(grant),
        "role_arn": conn.role_arn,
        "profile_name": conn.profile_name,
        "mfa_serial": conn.mfa_serial,
        "source_profile": conn.source_profile,
        "role_session_name": conn.role_session_name,
        "region": conn.region,
        "switch_role_url": conn.switch_role_url,
        "aws_config": conn.aws_config,
        "ssm_command": conn.ssm_command,
        "instances": [
            {"instance_id": i.instance_id, "name": i.name, "state": i.state}
            for i in found
        ],
        "instances_error": error,
    }


@api.post("/grants/{pk}/end", response=_r({200: s.RequestOut}), tags=["grants"])
def grant_end(request: HttpRequest, pk: PK):
    """ "I'm done": end my own grant now."""
    require_scope(request, "request")
    req = get_object_or_404(_my_requests(request), pk=pk)
    access_requests.access_request_revoke(
        access_request=req, actor=request.user, comment="Done (by the requester)."
    )
    return s.RequestOut.of(_my_requests(request).get(pk=pk))
