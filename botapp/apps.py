from django.apps import AppConfig


class BotappConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "botapp"
    verbose_name = "Bot"
