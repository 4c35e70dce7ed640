from django.apps import AppConfig


class BotappConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "botapp"
    verbose_name = "Bot"

    def ready(self) -> None:
        from botapp.redaction import install_log_redaction

        # LOGGING's handlers have the filter already; this adds it to handlers configured before
        # Django (uvicorn's) or outside LOGGING.
        install_log_redaction()
