"""E-mails to people, through Django's mail API (EMAIL_BACKEND decides how)."""

from django.core.mail import send_mail


def grant_expiry_reminder(access_request) -> bool:
    """Tell the requester their grant ends soon and how to extend it.
    Returns False when there is nobody to write to."""
    person = access_request.requester
    to = person.email or person.user.email
    if not to:
        return False
    role = access_request.role
    when = f"{access_request.expires_at:%Y-%m-%d %H:%M} UTC"
    send_mail(
        subject=f"[opsgate] Your access to {role.role_name} ends at {when}",
        message=(
            f"Hello {person.name},\n\n"
            f"your access to {role.role_name} (project {role.project.name}, "
            f"run as {role.os_user}) ends at {when}.\n"
            "To keep it, request the same role again in opsgate: an approver of "
            "the project approves the extension the same way as before.\n"
        ),
        from_email=None,
        recipient_list=[to],
    )
    return True
