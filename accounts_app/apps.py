from django.apps import AppConfig


class AccountsAppConfig(AppConfig):
    name = "accounts_app"
    verbose_name = "AWS access"

    def ready(self) -> None:
        from accounts_app import login_events

        login_events.connect()
        from accounts_app import counters  # noqa: F401  (connects its receiver)
