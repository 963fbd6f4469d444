from allauth.account.adapter import DefaultAccountAdapter


class NoSignupAccountAdapter(DefaultAccountAdapter):
    """People are added by an admin; nobody signs themselves up."""

    def is_open_for_signup(self, request) -> bool:
        return False
