from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "AWS sync"

    def ready(self) -> None:
        from provisioning import receivers

        receivers.connect()
