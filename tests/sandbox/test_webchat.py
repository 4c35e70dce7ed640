"""The web chat's JSON API and event stream, over real HTTP against a running emulator."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sandbox.telegram import BotAPIEmulator, sample_image
from sandbox.telegram.webchat import PRESET_USERS

ROOT = Path(__file__).resolve().parents[2]
ANNA, BEN = 100001, 100002


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator(bot_username="sandbox_bot", pre_checkout_timeout=3.0) as emulator:
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Chat:
    """The page's side (``/chat/api``) and the bot's side (the Bot API) of one emulator."""

    def __init__(self, emu: BotAPIEmulator, http: aiohttp.ClientSession) -> None:
        self.emu, self.http = emu, http
        self.api = emu.base_url + "/chat/api/"

    async def get(self, path: str, status: int = 200) -> Any:
        async with self.http.get(self.api + path) as resp:
            body = await resp.json()
            assert resp.status == status, body
            return body

    async def post(self, path: str, payload: Any, status: int = 200) -> Any:
        async with self.http.post(self.api + path, json=payload) as resp:
            body = await resp.json()
            assert resp.status == status, body
            return body

    async def upload(
        self, user_id: Any, files: list[tuple[str, bytes, str]], caption: str = "", status: int = 200
    ) -> Any:
        form = aiohttp.FormData()
        form.add_field("user_id", str(user_id))
        form.add_field("caption", caption)
        for name, data, mime in files:
            form.add_field("file", data, filename=name, content_type=mime)
        async with self.http.post(self.api + "upload", data=form) as resp:
            body = await resp.json()
            assert resp.status == status, body
            return body

    async def bot(self, method: str, **params: Any) -> Any:
        async with self.http.post(f"{self.emu.base_url}/bot{self.emu.token}/{method}", json=params) as resp:
            body = await resp.json()
            assert body["ok"], body
            return body["result"]

    async def updates(self, kind: str) -> list[dict[str, Any]]:
        found = await self.bot("getUpdates", timeout=0)
        return [u[kind] for u in found if kind in u]


@pytest.fixture
async def chat(emu: BotAPIEmulator, http: aiohttp.ClientSession) -> Chat:
    assert emu.webchat is not None
    emu.webchat.ensure_presets()  # what the page's first request (or the standalone process) does
    return Chat(emu, http)


# ---------------------------------------------------------------- users


async def test_preset_users_have_fixed_ids_and_languages(chat: Chat) -> None:
    users = (await chat.get("users"))["users"]
    assert [(u["id"], u["first_name"], u["language_code"]) for u in users[:3]] == [
        (p["id"], p["first_name"], p["language_code"]) for p in PRESET_USERS
    ]
    assert all(u["preset"] for u in users[:3])


async def test_added_user_keeps_its_id_across_restarts(http: aiohttp.ClientSession) -> None:
    ids = []
    for _ in range(2):  # two sandbox runs: state is in memory, the id must not change
        async with BotAPIEmulator() as emu:
            chat = Chat(emu, http)
            created = await chat.post("users", {"first_name": "Dora", "language_code": "de"}, status=201)
            assert created["created"] is True
            again = await chat.post("users", {"first_name": "Dora", "language_code": "de"})
            assert again["created"] is False and again["user"]["id"] == created["user"]["id"]
            other = await chat.post("users", {"first_name": "Dora", "language_code": "en"}, status=201)
            assert other["user"]["id"] != created["user"]["id"]
            listed = {u["id"]: u for u in (await chat.get("users"))["users"]}
            assert listed[created["user"]["id"]]["language_code"] == "de"
            ids.append(created["user"]["id"])
    assert ids[0] == ids[1]


# ---------------------------------------------------------------- acting as a user


async def test_sent_text_is_an_update_the_bot_receives(chat: Chat) -> None:
    sent = await chat.post("send", {"user_id": ANNA, "text": "/start ref_42"})
    assert sent["message"]["text"] == "/start ref_42"
    messages = await chat.updates("message")
    assert len(messages) == 1
    message = messages[0]
    assert message["text"] == "/start ref_42"
    assert message["from"]["id"] == ANNA and message["from"]["language_code"] == "ru"
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert message["chat"] == {"id": ANNA, "type": "private", "first_name": "Anna"}


async def test_pressing_a_callback_button_sends_a_callback_query(chat: Chat) -> None:
    markup = {
        "inline_keyboard": [
            [{"text": "Go", "callback_data": "go:1"}, {"text": "Site", "url": "https://example.com"}],
        ]
    }
    sent = await chat.bot("sendMessage", chat_id=ANNA, text="choose", reply_markup=markup)
    pressed = await chat.post("press", {"user_id": ANNA, "message_id": sent["message_id"], "row": 0, "column": 0})
    queries = await chat.updates("callback_query")
    assert [q["data"] for q in queries] == ["go:1"]
    assert queries[0]["id"] == pressed["callback_query_id"]
    assert queries[0]["from"]["id"] == ANNA and queries[0]["message"]["message_id"] == sent["message_id"]

    bad = {"user_id": ANNA, "message_id": sent["message_id"]}
    assert "not a callback" in (await chat.post("press", {**bad, "row": 0, "column": 1}, status=400))["error"]
    await chat.post("press", {**bad, "row": 1, "column": 0}, status=404)
    await chat.post("press", {**bad, "user_id": BEN, "row": 0, "column": 0}, status=404)  # another user's chat
    await chat.post("press", {**bad, "message_id": 999, "row": 0, "column": 0}, status=404)


async def test_uploads_become_photo_messages_and_albums(chat: Chat) -> None:
    one = await chat.upload(ANNA, [("a.png", sample_image(800, 600), "image/png")], caption="make it blue")
    (photo,) = one["messages"]
    assert photo["caption"] == "make it blue" and "media_group_id" not in photo
    assert photo["photo"][-1]["width"] == 800 and all(s["file_id"] for s in photo["photo"])

    images = [(f"{i}.png", sample_image(300 + i, 200), "image/png") for i in range(3)]
    album = (await chat.upload(ANNA, images, caption="three"))["messages"]
    assert len(album) == 3 and len({m["media_group_id"] for m in album}) == 1
    assert [m.get("caption") for m in album] == ["three", None, None]

    huge = (await chat.upload(ANNA, [("big.png", sample_image(4000, 1000), "image/png")]))["messages"][0]
    assert (huge["photo"][-1]["width"], huge["photo"][-1]["height"]) == (2560, 640)  # as clients send them

    document = (await chat.upload(ANNA, [("notes.txt", b"hello", "text/plain")]))["messages"][0]
    assert document["document"]["file_name"] == "notes.txt"

    messages = await chat.updates("message")
    assert len(messages) == 6
    stored = chat.emu.file_bytes(messages[0]["photo"][-1]["file_id"])
    assert stored[:8] == b"\x89PNG\r\n\x1a\n"


async def test_upload_limits(http: aiohttp.ClientSession) -> None:
    async with BotAPIEmulator(max_upload_bytes=100_000) as emu:
        chat = Chat(emu, http)
        await chat.get("users")
        too_big = [("big.bin", b"x" * 100_001, "application/octet-stream")]
        assert "larger" in (await chat.upload(ANNA, too_big, status=413))["error"]
        eleven = [(f"{i}.png", sample_image(10, 10), "image/png") for i in range(11)]
        await chat.upload(ANNA, eleven, status=400)
        await chat.upload(ANNA, [("e.png", b"", "image/png")], status=400)
        await chat.upload(424242, [("a.png", sample_image(10, 10), "image/png")], status=404)
        await chat.upload(ANNA, [("a.png", sample_image(10, 10), "image/png")], caption="c" * 1025, status=400)
        form = aiohttp.FormData()
        form.add_field("user_id", str(ANNA))
        form.add_field("caption", "c" * 70_000)  # a text field, not a file: capped too
        form.add_field("file", sample_image(10, 10), filename="a.png", content_type="image/png")
        async with http.post(chat.api + "upload", data=form) as resp:
            assert resp.status == 413
        async with http.post(chat.api + "upload", json={"user_id": ANNA}) as resp:
            assert resp.status == 415
        async with http.post(
            chat.api + "upload", data=b"--x\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=x"}
        ) as resp:
            assert resp.status == 400 and (await resp.json())["ok"] is False
        assert emu.updates("message") == []


async def _answer_pre_checkout(chat: Chat, ok: bool, error: str | None = None) -> dict[str, Any]:
    """Play the bot: answer the pre_checkout_query and confirm that update (only that one)."""
    for _ in range(200):
        found = [u for u in await chat.bot("getUpdates", timeout=0) if "pre_checkout_query" in u]
        if found:
            query = found[-1]["pre_checkout_query"]
            params = {"pre_checkout_query_id": query["id"], "ok": ok}
            if error:
                params["error_message"] = error
            await chat.bot("answerPreCheckoutQuery", **params)
            await chat.bot("getUpdates", offset=found[-1]["update_id"] + 1, timeout=0)
            return query
        await asyncio.sleep(0.02)
    raise AssertionError("no pre_checkout_query")


async def _invoice(chat: Chat, payload: str) -> dict[str, Any]:
    return await chat.bot(
        "sendInvoice",
        chat_id=ANNA,
        title="Tokens",
        description="100 tokens",
        payload=payload,
        currency="XTR",
        prices=[{"label": "100 tokens", "amount": 50}],
    )


async def test_pay_runs_pre_checkout_then_a_successful_payment(chat: Chat) -> None:
    await chat.get("users")
    invoice = await _invoice(chat, "pack:1")
    info = (await chat.get(f"invoice?user_id={ANNA}&message_id={invoice['message_id']}"))["invoice"]
    assert (info["title"], info["currency"], info["total_amount"], info["paid"]) == ("Tokens", "XTR", 50, False)

    paying = asyncio.create_task(chat.post("pay", {"user_id": ANNA, "message_id": invoice["message_id"]}))
    query = await _answer_pre_checkout(chat, ok=True)
    result = await paying
    assert query["invoice_payload"] == "pack:1" and query["total_amount"] == 50 and query["from"]["id"] == ANNA
    assert result["paid"] is True and result["error_message"] is None
    payment = result["message"]["successful_payment"]
    assert payment["total_amount"] == 50 and payment["telegram_payment_charge_id"] == result["charge_id"]
    assert [p.invoice_payload for p in chat.emu.payments()] == ["pack:1"]
    assert (await chat.updates("message"))[0]["successful_payment"]["invoice_payload"] == "pack:1"

    history = (await chat.get(f"history?user_id={ANNA}"))["messages"]
    assert [m.get("paid", False) for m in history if "invoice" in m["message"]] == [True]
    again = await chat.post("pay", {"user_id": ANNA, "message_id": invoice["message_id"]}, status=409)
    assert "already paid" in again["error"]


async def test_pay_shows_the_bots_refusal_and_a_timeout(chat: Chat) -> None:
    await chat.get("users")
    invoice = await _invoice(chat, "refuse")
    paying = asyncio.create_task(chat.post("pay", {"user_id": ANNA, "message_id": invoice["message_id"]}))
    await _answer_pre_checkout(chat, ok=False, error="Sorry, sold out")
    refused = await paying
    assert refused["paid"] is False and refused["error_message"] == "Sorry, sold out"
    assert chat.emu.payments() == [] and await chat.updates("message") == []

    chat.emu.pre_checkout_timeout = 0.2
    silent = await chat.post("pay", {"user_id": ANNA, "message_id": invoice["message_id"]})
    assert silent["paid"] is False and "not answered" in silent["error_message"]

    link = await chat.bot(
        "createInvoiceLink",
        title="Link",
        description="d",
        payload="l",
        currency="XTR",
        prices=[{"label": "x", "amount": 5}],
    )
    assert (await chat.get(f"invoice?user_id={ANNA}&link={link}"))["invoice"]["total_amount"] == 5
    await chat.post("pay", {"user_id": ANNA, "invoice_link": "https://t.me/$nope"}, status=404)
    text = await chat.bot("sendMessage", chat_id=ANNA, text="not an invoice")
    await chat.post("pay", {"user_id": ANNA, "message_id": text["message_id"]}, status=404)


# ---------------------------------------------------------------- reading


async def test_history_commands_and_keyboard_per_user(chat: Chat) -> None:
    await chat.bot("setMyCommands", commands=[{"command": "start", "description": "Start"}])
    await chat.bot("setMyCommands", commands=[{"command": "start", "description": "Начать"}], language_code="ru")
    await chat.bot("setMyDescription", description="Я рисую картинки", language_code="ru")
    await chat.post("send", {"user_id": ANNA, "text": "hi"})
    keyboard = {"keyboard": [["Ping"]], "resize_keyboard": True}
    await chat.bot("sendMessage", chat_id=ANNA, text="<b>bold</b>", parse_mode="HTML", reply_markup=keyboard)

    anna = await chat.get(f"history?user_id={ANNA}")
    assert [(m["from_bot"], m["message"].get("text")) for m in anna["messages"]] == [(False, "hi"), (True, "bold")]
    assert anna["messages"][1]["message"]["entities"] == [{"type": "bold", "offset": 0, "length": 4}]
    assert anna["messages"][1]["keyboard"] == keyboard and anna["reply_keyboard"] == keyboard
    assert anna["commands"] == [{"command": "start", "description": "Начать"}]
    assert anna["bot"]["description"] == "Я рисую картинки" and anna["bot"]["username"] == "sandbox_bot"
    ben = await chat.get(f"history?user_id={BEN}")
    assert ben["messages"] == [] and ben["reply_keyboard"] is None
    assert ben["commands"] == [{"command": "start", "description": "Start"}] and ben["bot"]["description"] == ""
    assert (await chat.get(f"history?user_id={ANNA}&limit=1"))["messages"][0]["message"]["text"] == "bold"


async def test_event_stream_delivers_bot_messages_live_and_resumes(chat: Chat) -> None:
    start = (await chat.get(f"history?user_id={ANNA}"))["seq"]
    async with chat.http.get(chat.api + f"events?since={start}") as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        frames = _frames(stream)
        hello = await asyncio.wait_for(anext(frames), 5)
        assert hello["event"] == "hello" and hello["data"]["resync"] is False
        await chat.bot("sendChatAction", chat_id=ANNA, action="typing")
        await chat.bot("sendMessage", chat_id=ANNA, text="<i>live</i>", parse_mode="HTML")
        action = await asyncio.wait_for(anext(frames), 5)
        message = await asyncio.wait_for(anext(frames), 5)
    assert action["data"]["kind"] == "chat_action" and action["data"]["data"] == {"action": "typing"}
    assert message["data"]["kind"] == "bot_message" and message["data"]["chat_id"] == ANNA
    assert message["data"]["data"]["text"] == "live" and message["data"]["data"]["entities"][0]["type"] == "italic"

    await chat.bot("editMessageText", chat_id=ANNA, message_id=message["data"]["message_id"], text="edited")
    headers = {"Last-Event-ID": message["id"]}  # what EventSource sends when it reconnects
    async with chat.http.get(chat.api + "events?since=0", headers=headers) as stream:
        frames = _frames(stream)
        await asyncio.wait_for(anext(frames), 5)
        edit = await asyncio.wait_for(anext(frames), 5)
    assert edit["data"]["kind"] == "bot_edit" and edit["data"]["data"]["text"] == "edited"

    async with chat.http.get(chat.api + "events?since=999999") as stream:  # a seq from an earlier run
        hello = await asyncio.wait_for(anext(_frames(stream)), 5)
    assert hello["data"]["resync"] is True


async def _frames(stream: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    frame: dict[str, Any] = {}
    async for raw in stream.content:
        line = raw.decode().rstrip("\n")
        if not line:
            if "data" in frame:
                yield frame
            frame = {}
        elif line.startswith("data: "):
            frame["data"] = json.loads(line[6:])
        elif line.startswith(("id: ", "event: ")):
            key, _, value = line.partition(": ")
            frame[key] = value


async def test_files_are_served_safely(chat: Chat) -> None:
    await chat.get("users")
    form = aiohttp.FormData()
    form.add_field("chat_id", str(ANNA))
    form.add_field("document", b"<script>alert(1)</script>", filename="page.html", content_type="text/html")
    async with chat.http.post(f"{chat.emu.base_url}/bot{chat.emu.token}/sendDocument", data=form) as resp:
        document = (await resp.json())["result"]["document"]
    async with chat.http.get(chat.api + "files/" + document["file_id"]) as resp:
        assert resp.status == 200 and await resp.read() == b"<script>alert(1)</script>"
        assert resp.headers["Content-Type"] == "application/octet-stream"
        assert resp.headers["Content-Disposition"].startswith("attachment;")
        assert "sandbox" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    photo = (await chat.upload(ANNA, [("a.png", sample_image(50, 50), "image/png")]))["messages"][0]["photo"]
    async with chat.http.get(chat.api + "files/" + photo[-1]["file_id"]) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("image/")
        assert "Content-Disposition" not in resp.headers
    await chat.get("files/unknown", status=404)


# ---------------------------------------------------------------- bad input


DEEP = "[" * 20_000 + "]" * 20_000  # under the size cap, over any recursion limit


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "send", {"user_id": 424242, "text": "hi"}, 404),
        ("POST", "send", {"user_id": True, "text": "hi"}, 400),
        ("POST", "send", {"user_id": "abc", "text": "hi"}, 400),
        ("POST", "send", {"user_id": 10**30, "text": "hi"}, 400),
        ("POST", "send", {"user_id": ANNA, "text": "   "}, 400),
        ("POST", "send", {"user_id": ANNA, "text": 5}, 400),
        ("POST", "send", {"user_id": ANNA, "text": "x" * 4097}, 400),
        ("POST", "send", {"user_id": ANNA, "text": "😀" * 2049}, 400),  # 4098 UTF-16 units
        ("POST", "send", [1, 2], 400),
        ("POST", "send", "not json{", 400),
        ("POST", "send", DEEP, 400),
        ("POST", "send", {"user_id": ANNA, "text": "x" * 70_000}, 413),
        ("POST", "press", {"user_id": ANNA, "message_id": "x", "row": 0, "column": 0}, 400),
        ("POST", "press", {"user_id": ANNA, "message_id": 1, "row": None, "column": 0}, 400),
        ("POST", "users", {"first_name": "", "language_code": "en"}, 400),
        ("POST", "users", {"first_name": "X" * 65, "language_code": "en"}, 400),
        ("POST", "users", {"first_name": "Eve", "language_code": "english!"}, 400),
        ("POST", "users", {"first_name": "Eve", "username": "a b"}, 400),
        ("POST", "block", {"user_id": ANNA, "blocked": "yes"}, 400),
        ("POST", "pay", {"user_id": ANNA}, 400),
        ("POST", "pay", {"user_id": ANNA, "invoice_link": 5}, 400),
        ("GET", "history?user_id=", None, 400),
        ("GET", "history?user_id=424242", None, 404),
        ("GET", f"history?user_id={ANNA}&limit=0", None, 400),
        ("GET", "commands", None, 400),
        ("GET", "events?since=abc", None, 400),
        ("GET", f"invoice?user_id={ANNA}&message_id=77", None, 404),
        ("GET", "nowhere", None, 404),
        ("DELETE", "users", None, 404),
    ],
)
async def test_bad_input_gets_a_json_4xx(chat: Chat, method: str, path: str, body: Any, status: int) -> None:
    await chat.get("users")
    data = body if isinstance(body, str) else json.dumps(body) if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    async with chat.http.request(method, chat.api + path, data=data, headers=headers) as resp:
        assert resp.status == status
        answer = await resp.json()
        assert answer["ok"] is False and answer["error"]
    assert chat.emu.updates() == []


async def test_a_non_json_body_is_refused(chat: Chat) -> None:
    async with chat.http.post(chat.api + "send", data="user_id=1&text=hi") as resp:
        assert resp.status == 415 and (await resp.json())["ok"] is False


# ---------------------------------------------------------------- the page and the process


async def test_page_health_and_index(chat: Chat) -> None:
    base = chat.emu.base_url
    async with chat.http.get(base + "/health") as resp:
        assert resp.status == 200 and (await resp.json())["ok"] is True
    async with chat.http.get(base + "/", headers={"Accept": "text/html"}, allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/chat/"
    async with chat.http.get(base + "/") as resp:  # API clients keep the JSON index
        assert (await resp.json())["bot"] == "sandbox_bot"
    async with chat.http.get(base + "/chat/") as resp:
        page = await resp.text()
        assert resp.status == 200 and "script-src 'self'" in resp.headers["Content-Security-Policy"]
        assert 'data-testid="message-input"' in page and "<script src=" in page
    for name in ("app.js", "style.css"):
        async with chat.http.get(base + "/chat/static/" + name) as resp:
            assert resp.status == 200
    async with chat.http.get(base + "/chat/static/../app.py") as resp:
        assert resp.status in (403, 404)
    assert chat.emu.webchat_url == f"{base}/chat/"


def test_standalone_process_prints_the_web_chat_and_answers_health() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.telegram", "--port", "0", "--token", "123:TEST", "--username", "demo_bot"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(4)]
        match = re.fullmatch(r"Web chat: http://127\.0\.0\.1:(\d+)/chat/", lines[3])
        assert match, lines
        port = match.group(1)
        assert lines[0] == f"Bot API emulator: http://127.0.0.1:{port}"

        async def probe() -> tuple[int, int, list[int]]:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/health") as health:
                    health_status = health.status
                async with session.get(f"http://127.0.0.1:{port}/chat/") as page:
                    page_status = page.status
                async with session.get(f"http://127.0.0.1:{port}/chat/api/users") as users:
                    ids = [u["id"] for u in (await users.json())["users"]]
                return health_status, page_status, ids

        assert asyncio.run(probe()) == (200, 200, [p["id"] for p in PRESET_USERS])
    finally:
        proc.terminate()
        proc.wait(5)


# --- only this machine (issue "Hardening II", item 8) ---------------------------------------------------------
async def test_the_web_chat_refuses_another_host_and_another_sites_posts():
    """DNS rebinding (a page whose host name now points at 127.0.0.1) and a page of another site posting
    as a sandbox user are refused; the page itself (same origin) and tools without Origin still work."""
    import aiohttp

    emu = BotAPIEmulator(webchat=True)
    await emu.start()
    try:
        api = emu.base_url + "/chat/api/"
        async with aiohttp.ClientSession() as http:
            async with http.get(api + "users", headers={"Host": "evil.example"}) as rebound:
                assert rebound.status == 403
            async with http.get(api + "users", headers={"Host": f"localhost:{emu.port}"}) as local:
                assert local.status == 200
            body = {"first_name": "Mallory"}
            async with http.post(api + "users", json=body, headers={"Origin": "https://evil.example"}) as forged:
                assert forged.status == 403 and "cross-site" in (await forged.json())["error"]
            own = f"http://127.0.0.1:{emu.port}"
            async with http.post(api + "users", json=body, headers={"Origin": own}) as page:
                assert page.status == 201
            async with http.post(api + "users", json={"first_name": "Script"}) as tool:  # no Origin: not a browser
                assert tool.status == 201
    finally:
        await emu.stop()
