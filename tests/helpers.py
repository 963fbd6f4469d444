"""One way to set up requests and grants in tests: through the services, as
the pages do, so every test starts from states the portal can reach."""

from provisioning import services


def request(person, role, hours=8, *, reason="deploy"):
    """A pending request of `person` (an IamUser) for `role`."""
    return services.access_request_create(
        requester=person,
        role=role,
        reason=reason,
        duration_hours=hours,
        actor=person.user,
    )


def grant(person, role, approver, hours=8):
    """An approved request: `approver` (an IamUser) approves it."""
    req = request(person, role, hours)
    return services.access_request_approve(access_request=req, approver=approver.user)
