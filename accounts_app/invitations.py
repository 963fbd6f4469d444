"""Invitations: an e-mail with a link to set the portal password, built on
allauth's password-reset-from-key flow (same token, same expiry)."""

import logging
from typing import Any

from allauth.account.forms import default_token_generator
from allauth.account.utils import user_pk_to_url_str
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from accounts_app.audit import audit_record
from accounts_app.models import IamUser

log = logging.getLogger(__name__)


def invitation_url(user: Any, *, base_url: str) -> str:
    path = reverse(
        "account_reset_password_from_key",
        kwargs={
            "uidb36": user_pk_to_url_str(user),
            "key": default_token_generator.make_token(user),
        },
    )
    return base_url.rstrip("/") + path


def invitation_send(*, person: IamUser, actor: Any, base_url: str) -> bool:
    """Send the invitation to the person's portal e-mail. False (and logged)
    when there is no address or the mail could not be sent."""
    user = person.user
    if not user.email:
        return False
    context = {
        "person": person,
        "url": invitation_url(user, base_url=base_url),
        "days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
        "login_url": base_url.rstrip("/") + reverse("account_login"),
    }
    try:
        send_mail(
            render_to_string("email/invitation_subject.txt", context).strip(),
            render_to_string("email/invitation.txt", context),
            None,
            [user.email],
        )
    except Exception:
        log.exception("could not send the invitation to %s", person.name)
        return False
    with transaction.atomic():
        audit_record(
            actor=actor, action="person.invite", obj=person, after={"to": user.email}
        )
    return True
