"""The webhook endpoint (served by the ASGI web process): the secret token, malformed bodies, and an
update delivered twice being handled once. The bot's answers go to the emulator (TELEGRAM_API_URL)."""

from __future__ import annotations

import itertools
import json
import time

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from botapp.emulator import BotAPIEmulator

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

URL = "/telegram/webhook/"
SECRET = "test-secret_0123456789"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
_update_ids = itertools.count(500_000)


@pytest.fixture
async def webhook(emu: BotAPIEmulator, settings, redis_prefix):
    from botapp.bot import reset_runtime

    settings.BOT_TOKEN = emu.token
    settings.TELEGRAM_API_URL = emu.base_url
    settings.WEBHOOK_SECRET = SECRET
    settings.BOT_REDIS_PREFIX = redis_prefix
    settings.THROTTLE_RATE = 0
    await reset_runtime()
    yield AsyncClient()
    await reset_runtime()


def start_update(user: dict, text: str = "/start", update_id: int | None = None) -> dict:
    command = text.split()[0]
    return {
        "update_id": update_id or next(_update_ids),
        "message": {
            "message_id": next(_update_ids),
            "date": int(time.time()),
            "chat": {"id": user["id"], "type": "private", "first_name": user["first_name"]},
            "from": user,
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}],
        },
    }


async def post(client: AsyncClient, payload: dict | str, secret: str | None = SECRET):
    body = payload if isinstance(payload, str) else json.dumps(payload)
    headers = {HEADER: secret} if secret is not None else {}
    return await client.post(URL, data=body, content_type="application/json", headers=headers)


async def test_without_or_with_a_wrong_secret_is_401(webhook, emu):
    user = emu.user(first_name="Web").info
    assert (await post(webhook, start_update(user), secret=None)).status_code == 401
    assert (await post(webhook, start_update(user), secret="wrong")).status_code == 401
    assert (await post(webhook, start_update(user), secret="")).status_code == 401
    assert emu.call_count("sendMessage") == 0


async def test_no_secret_configured_refuses_everything(webhook, emu, settings):
    settings.WEBHOOK_SECRET = ""
    user = emu.user(first_name="Web").info
    assert (await post(webhook, start_update(user), secret="")).status_code == 401


async def test_only_post(webhook):
    response = await webhook.get(URL, headers={HEADER: SECRET})
    assert response.status_code == 405


async def test_malformed_update_is_400(webhook):
    assert (await post(webhook, "{not json")).status_code == 400
    assert (await post(webhook, {"no": "update_id"})).status_code == 400


async def test_update_is_handled_and_answered(webhook, emu):
    from botapp.models import TgUser

    user = emu.user(first_name="Webster", language_code="en").info
    response = await post(webhook, start_update(user))
    assert response.status_code == 200 and response.json() == {"ok": True}
    reply = await emu.await_message(user["id"], lambda m: "Main menu" in m.get("text", ""))
    assert "Hi, Webster" in reply["text"]
    assert await sync_to_async(TgUser.objects.filter(telegram_id=user["id"]).exists)()


async def test_duplicate_update_id_is_handled_once(webhook, emu):
    user = emu.user(first_name="Twice").info
    update = start_update(user, update_id=987_654)
    first = await post(webhook, update)
    second = await post(webhook, update)
    assert first.status_code == second.status_code == 200
    await emu.await_message(user["id"], lambda m: "Главное меню" in m.get("text", ""))
    assert emu.call_count("sendMessage", user["id"]) == 1
    other = start_update(user, update_id=987_655)
    assert (await post(webhook, other)).status_code == 200
    assert emu.call_count("sendMessage", user["id"]) == 2


async def test_a_failing_handler_still_answers_200(webhook, emu):
    user = emu.user(first_name="Unlucky").info
    emu.fail_next("sendMessage", 500, times=2, chat_id=user["id"])
    response = await post(webhook, start_update(user))
    assert response.status_code == 200, "Telegram must not redeliver a poison update forever"
