"""`python manage.py runbot`: the bot by long polling (development, or a single-process deployment)."""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

log = logging.getLogger("botapp.runbot")


class Command(BaseCommand):
    help = "Run the Telegram bot by long polling (TELEGRAM_API_URL decides which Bot API server)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--drop-webhook",
            action="store_true",
            help="Delete a webhook registered for this token first (polling and a webhook exclude each other).",
        )
        parser.add_argument(
            "--skip-updates", action="store_true", help="Drop the updates that waited while the bot was down."
        )

    def handle(self, *args, **options) -> None:
        if not settings.BOT_TOKEN:
            raise CommandError("BOT_TOKEN is not set. Create a bot with @BotFather and put the token into .env.")
        try:
            asyncio.run(self._run(drop_webhook=options["drop_webhook"], skip_updates=options["skip_updates"]))
        except KeyboardInterrupt:
            pass

    async def _run(self, *, drop_webhook: bool, skip_updates: bool) -> None:
        from aiogram.exceptions import TelegramAPIError

        from botapp import bridge
        from botapp.bot import build_dispatcher, create_backends, create_bot, set_commands

        bot = create_bot()
        dp = build_dispatcher(create_backends(polling=True))
        try:
            me = await bot.get_me()
            info = await bot.get_webhook_info()
            if info.url and not drop_webhook:
                raise CommandError(
                    f"A webhook is set for @{me.username} ({info.url}): the bot gets its updates there. "
                    "Run with --drop-webhook to switch this token to polling."
                )
            if info.url or skip_updates:
                await bot.delete_webhook(drop_pending_updates=skip_updates)
            try:
                await set_commands(bot)
            except TelegramAPIError as exc:
                log.warning("could not set the command menu: %s", exc)
            self.stdout.write(f"@{me.username} is polling {settings.TELEGRAM_API_URL} (Ctrl+C to stop)")
            await dp.start_polling(bot, allowed_updates=dp.resolve_used_update_types(), close_bot_session=True)
        finally:
            await bridge.close_db()
            await bot.session.close()
