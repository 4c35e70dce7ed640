"""The webhook endpoint (served by the ASGI web process): the secret token, malformed bodies, and an
update delivered twice being handled once. The bot's answers go to the emulator (TELEGRAM_API_URL)."""

from __future__ import annotations

import itertools
import json
import logging
import time

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from sandbox.telegram import BotAPIEmulator

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


# --- bodies that are not updates: always a 4xx, never a 500 or a traceback ----------------------------
DEEP = 100_000


def _valid_start(**changes) -> dict:
    update = start_update({"id": 777_001, "is_bot": False, "first_name": "Shape"})
    update.update(changes)
    return update


def _huge_chat_id() -> dict:
    update = _valid_start()
    update["message"]["chat"]["id"] = update["message"]["from"]["id"] = 2**80
    return update


MALFORMED_BODIES: dict[str, bytes] = {
    "nested arrays": b"[" * DEEP + b"]" * DEEP,
    "nested objects": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "deep nesting inside an update": b'{"update_id": 1, "x": ' + b"[" * DEEP + b"]" * DEEP + b"}",
    "nesting no update has": b'{"update_id": 1, "x": ' + b"[" * 500 + b"]" * 500 + b"}",
    "not json": b"{not json",
    "invalid utf-8": b'{"update_id": 1, "message": "\xff\xfe\xfd"}',
    "a json array": b"[]",
    "an array holding an update": json.dumps([_valid_start()]).encode(),
    "a json number": b"42",
    "a json string": b'"update"',
    "json null": b"null",
    "json true": b"true",
    "an object without update_id": b'{"no": "update_id"}',
    "update_id a string": json.dumps(_valid_start(update_id="12")).encode(),
    "update_id a boolean": json.dumps(_valid_start(update_id=True)).encode(),
    "update_id a fraction": json.dumps(_valid_start(update_id=1.5)).encode(),
    "update_id null": json.dumps(_valid_start(update_id=None)).encode(),
    "update_id an object": json.dumps(_valid_start(update_id={"id": 1})).encode(),
    "update_id huge": json.dumps(_valid_start(update_id=2**70)).encode(),
    "a huge chat id": json.dumps(_huge_chat_id()).encode(),
    "an integer of 5000 digits": b'{"update_id": ' + b"7" * 5000 + b"}",
    "an infinite number": b'{"update_id": 1, "x": 1e999}',
    "NaN": b'{"update_id": NaN}',
    "a NUL byte after the object": json.dumps(_valid_start()).encode() + b"\x00",
    "a raw NUL byte in a string": b'{"update_id": 1, "message": {"text": "a\x00b"}}',
    "a NUL byte alone": b"\x00",
    "an empty body": b"",
    "over the size limit (more than Django reads)": b" " * (3 * 1024 * 1024) + b"{}",
}
NOT_JSON_TYPES = ("text/plain", "application/x-www-form-urlencoded", "application/xml")


async def test_bodies_that_are_no_updates_get_a_4xx_without_a_traceback(webhook, emu, caplog):
    """Every malformed shape (one test: a list of what went wrong): a 4xx, no ERROR, no traceback."""
    client = AsyncClient(raise_request_exception=False)  # as in production: an exception would be a 500
    cases = [(name, body, "application/json") for name, body in MALFORMED_BODIES.items()]
    cases += [(f"content type {kind}", json.dumps(_valid_start()).encode(), kind) for kind in NOT_JSON_TYPES]
    wrong = []
    for name, body, content_type in cases:
        caplog.clear()
        response = await client.post(URL, data=body, content_type=content_type, headers={HEADER: SECRET})
        errors = [r.getMessage()[:120] for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        if not 400 <= response.status_code < 500 or errors:
            wrong.append((name, response.status_code, errors))
    assert wrong == []
    assert emu.call_count("sendMessage") == 0, "none of them was handled"


async def test_an_escaped_nul_in_a_valid_update_is_refused_politely(webhook, emu, caplog):
    from botapp.models import PromocodeActivation, TgUser

    user = emu.user(first_name="Nul", language_code="en").info
    response = await post(webhook, start_update(user, "/start promo_FIRST\u000050"))
    assert response.status_code == 200, "a valid update: Telegram must not redeliver it"
    reply = await emu.await_message(user["id"])
    assert "characters I can't accept" in reply["text"]
    assert not await sync_to_async(TgUser.objects.filter(telegram_id=user["id"]).exists)()
    assert not await sync_to_async(PromocodeActivation.objects.exists)()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
