from django.apps import AppConfig


class BotappConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "botapp"
    verbose_name = "Bot"

    def ready(self) -> None:
        from django.contrib import admin

        from botapp.redaction import install_log_redaction

        # The admin's landing page is the operator's dashboard (botapp/admin/dashboard.py, UNFOLD's
        # DASHBOARD_CALLBACK). A template of its own name: "unfold" comes before this app in
        # INSTALLED_APPS, so an admin/index.html here would never be found.
        admin.site.index_template = "admin/dashboard.html"

        # LOGGING's handlers have the filter already; this adds it to handlers configured before
        # Django (uvicorn's) or outside LOGGING.
        install_log_redaction()
