"""The workers' side of a bot test, in-process: Celery tasks run eagerly (where the bot queues them) and
the one Telegram sender talks to the Bot API emulator. Used by the tests of /paysupport (the operators'
copies) and of the referral notices."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sandbox.telegram import BotAPIEmulator


@contextmanager
def eager_workers(emu: BotAPIEmulator, settings: Any) -> Iterator[BotAPIEmulator]:
    from botapp.telegram.sender import close_sender
    from config.celery import app

    close_sender()
    settings.BOT_TOKEN, settings.TELEGRAM_API_URL = emu.token, emu.base_url
    settings.TELEGRAM_GLOBAL_RATE = settings.TELEGRAM_CHAT_RATE = settings.TELEGRAM_AUX_RATE = 1000
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield emu
    finally:
        app.conf.task_always_eager = eager
        close_sender()
