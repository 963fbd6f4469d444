from django.conf import settings

from accounts_app import approval_rules


def nav(request) -> dict:
    """What the top bar shows: the approvals link only for approvers."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    known = getattr(request, "opsgate_is_approver", None)  # the MFA middleware's
    return {
        "nav_is_approver": approval_rules.is_approver(user) if known is None else known
    }


def demo(request) -> dict:
    """In the demo only: who to sign in as (the sign-in page shows it)."""
    if not settings.DEMO:
        return {}
    from portal.views import demo as demo_views

    return {"demo": demo_views.sign_in_help()}
