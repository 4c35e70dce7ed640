from django.urls import path

from botapp import api

urlpatterns = [
    path("health/", api.health, name="health"),
    path("telegram/webhook/", api.telegram_webhook, name="telegram-webhook"),
]
