from django.urls import path

from botapp import api, health, webhooks_yookassa

urlpatterns = [
    # The health check: the database, the cache and the Celery broker (503 names the failing part).
    path("healthz", health.health, name="healthz"),
    path("health/", health.health, name="health"),  # the older address, the same check
    path("telegram/webhook/", api.telegram_webhook, name="telegram-webhook"),
    # YooKassa's notifications about card payments (botapp/webhooks_yookassa.py).
    path("yookassa/webhook/", webhooks_yookassa.yookassa_webhook, name="yookassa-webhook"),
]
