from django.apps import AppConfig


class AccountsAppConfig(AppConfig):
    name = "accounts_app"
    verbose_name = "AWS access"

    def ready(self) -> None:
        from accounts_app import login_events

        login_events.connect()
