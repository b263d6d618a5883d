from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "webapp.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_save

        from webapp.accounts.names import username_guard

        pre_save.connect(username_guard, sender=get_user_model(), dispatch_uid="kiln-username-guard")
