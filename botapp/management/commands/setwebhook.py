"""`python manage.py setwebhook`: register the webhook (with WEBHOOK_SECRET) or delete it."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from botapp.bot import new_webhook_secret


def webhook_url(base: str) -> str:
    """WEBHOOK_URL as given when it has a path, else the site root + the webhook route."""
    if urlsplit(base).path.strip("/"):
        return base
    return base.rstrip("/") + reverse("telegram-webhook")


class Command(BaseCommand):
    help = "Register the Telegram webhook at WEBHOOK_URL with WEBHOOK_SECRET (or --delete it); sets the commands."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", help="Public HTTPS URL (default: WEBHOOK_URL).")
        parser.add_argument("--delete", action="store_true", help="Delete the webhook (back to polling).")
        parser.add_argument("--drop-pending", action="store_true", help="Drop the updates waiting at Telegram.")
        parser.add_argument("--info", action="store_true", help="Only show the current webhook.")

    def handle(self, *args, **options) -> None:
        if not settings.BOT_TOKEN:
            raise CommandError("BOT_TOKEN is not set.")
        asyncio.run(self._run(options))

    async def _run(self, options: dict) -> None:
        from botapp.bot import build_dispatcher, create_bot, set_commands

        bot = create_bot()
        try:
            if options["info"]:
                info = await bot.get_webhook_info()
                self.stdout.write(info.model_dump_json(indent=2, exclude_none=True))
                return
            if options["delete"]:
                await bot.delete_webhook(drop_pending_updates=options["drop_pending"])
                self.stdout.write(self.style.SUCCESS("Webhook deleted: run `manage.py runbot` to poll."))
                return
            base = options["url"] or settings.WEBHOOK_URL
            if not base:
                raise CommandError("Set WEBHOOK_URL (https://your.domain) or pass --url.")
            secret = settings.WEBHOOK_SECRET
            if not secret:
                raise CommandError(
                    "Set WEBHOOK_SECRET: the endpoint refuses requests without it. For example:\n"
                    f"WEBHOOK_SECRET={new_webhook_secret()}"
                )
            if len(secret) < settings.WEBHOOK_SECRET_MIN_LENGTH:
                raise CommandError(
                    f"WEBHOOK_SECRET is too short ({len(secret)} characters; at least "
                    f"{settings.WEBHOOK_SECRET_MIN_LENGTH}): anyone who guesses it can post updates. For example:\n"
                    f"WEBHOOK_SECRET={new_webhook_secret()}"
                )
            url = webhook_url(base)
            await bot.set_webhook(
                url=url,
                secret_token=secret,
                allowed_updates=build_dispatcher().resolve_used_update_types(),
                drop_pending_updates=options["drop_pending"],
            )
            await set_commands(bot)
            self.stdout.write(self.style.SUCCESS(f"Webhook set: {url}"))
        finally:
            await bot.session.close()
