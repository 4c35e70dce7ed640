"""End-to-end fixtures: the Bot API emulator (its own thread) and the real aiogram dispatcher of
`botapp.bot` polling it over HTTP (another thread with its own event loop), exactly as
`manage.py runbot` runs against Telegram.

Tests are plain sync functions that act as Telegram users (`user.send_text`, `user.press`, ...)
and wait for the bot's answers with the emulator's wait helpers; the database is checked with the
ORM directly. The bot reaches the database from its own thread, so every test here is a
transactional one (`django_db(transaction=True)`, with the seed data restored after each test).
With REDIS_URL set, the FSM storage, the dedupe and the throttle run on Redis under a per-run key
prefix that is deleted afterwards; the events isolation is in-process, as runbot's (one polling
consumer; the webhook's, shared through Redis, is tested in test_webhook.py and test_throttle.py).
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from sandbox.telegram import BotAPIEmulator, EmulatedUser, button_texts, inline_buttons

JSON = dict[str, Any]
WAIT = 8.0  # seconds: generous for slow CI machines; waits return as soon as the reply arrives


class BotRunner:
    """Our dispatcher polling the emulator from a background thread with its own event loop."""

    def __init__(self, emu: BotAPIEmulator, *, redis_url: str, prefix: str) -> None:
        self.emu = emu
        self.redis_url = redis_url
        self.prefix = prefix
        self.loop: asyncio.AbstractEventLoop | None = None
        self.dispatcher: Any = None
        self.bot: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> BotRunner:
        self._thread = threading.Thread(target=self._run, name="bot-under-test", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the bot did not start polling in time")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced by start() or stop()
            self._error = exc
            self._ready.set()
        finally:
            leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in leftovers:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        from botapp import bridge
        from botapp.bot import build_dispatcher, create_backends, create_bot

        self.bot = create_bot(self.emu.token, api_url=self.emu.base_url)
        self.dispatcher = build_dispatcher(create_backends(redis_url=self.redis_url, prefix=self.prefix, polling=True))

        async def ready() -> None:
            self._ready.set()

        self.dispatcher.startup.register(ready)
        try:
            await self.dispatcher.start_polling(
                self.bot,
                handle_signals=False,
                polling_timeout=5,
                allowed_updates=self.dispatcher.resolve_used_update_types(),
            )
        finally:
            await bridge.close_db()

    def call(self, coro_factory: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run a coroutine in the bot's loop (e.g. to inspect the FSM storage)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro_factory(), self.loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self.loop is not None and self.loop.is_running() and self.dispatcher is not None:
            asyncio.run_coroutine_threadsafe(self.dispatcher.stop_polling(), self.loop).result(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
        if self._error is not None and not isinstance(self._error, asyncio.CancelledError):
            raise self._error


def _redis_cleanup(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def pytest_configure(config):
    config.addinivalue_line("markers", "throttle(rate): run the bot with this THROTTLE_RATE (default: off)")


@pytest.fixture(autouse=True)
def _bot_settings(request, settings):
    """Fast, deterministic settings for the bot under test (read when the dispatcher is built)."""
    marker = request.node.get_closest_marker("throttle")
    settings.THROTTLE_RATE = marker.args[0] if marker else 0
    settings.BOT_USERNAME = ""
    settings.MAX_INPUT_IMAGE_BYTES = 10 * 1024 * 1024
    from botapp import bridge

    bridge.clear_caches()
    yield
    bridge.clear_caches()


@pytest.fixture
def emu() -> Iterator[BotAPIEmulator]:
    with BotAPIEmulator.run_in_thread(bot_username="genstudio_test_bot") as emulator:
        yield emulator


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    prefix = f"test-bot-{uuid.uuid4().hex[:12]}"
    yield prefix
    url = os.environ.get("REDIS_URL", "")
    if url:
        _redis_cleanup(url, prefix)


@pytest.fixture
def bot(emu: BotAPIEmulator, redis_prefix: str, transactional_db) -> Iterator[BotRunner]:
    runner = BotRunner(emu, redis_url=os.environ.get("REDIS_URL", ""), prefix=redis_prefix).start()
    yield runner
    runner.stop()


# --- helpers for walking as a user -------------------------------------------------------------------
class Chat:
    """An emulated user plus the waiting helpers the tests need."""

    def __init__(self, emu: BotAPIEmulator, user: EmulatedUser) -> None:
        self.emu = emu
        self.user = user

    @property
    def id(self) -> int:
        return self.user.id

    def mark(self) -> int:
        return self.emu.mark()

    def wait(
        self,
        predicate: Callable[[JSON], bool] | None = None,
        *,
        since: int | None = None,
        timeout: float = WAIT,
        edits: bool = True,
    ) -> JSON:
        """The first bot message (or edit, with `edits`) after the user's last action (or `since`)."""
        return self.emu.wait_for_message(self.id, predicate, timeout, since=since, include_edits=edits)

    def send(self, text: str, predicate: Callable[[JSON], bool] | None = None) -> JSON:
        """Send a text and wait for the bot's new message (edits of older cards are skipped)."""
        self.user.send_text(text)
        return self.wait(predicate, edits=False)

    def press(self, message: JSON, button: str, predicate: Callable[[JSON], bool] | None = None) -> JSON:
        """Press a button (by a part of its text) and wait for the bot's message or edit."""
        self.user.press(message, button)
        return self.wait(predicate)

    def press_expect_answer(self, message: JSON, button: str | None = None, *, data: str | None = None) -> JSON:
        """Press (a button, or raw callback data) and wait for the answer to that query (a toast or an alert)."""
        if data is not None and button is None:
            query = self.user.press_raw(message["message_id"], data)
        else:
            query = self.user.press(message, button)
        return self.emu.wait_for_callback_answer(self.id, query_id=query["id"], since=0, timeout=WAIT)

    def current(self, message: JSON) -> JSON:
        """The message as it is now (after edits)."""
        found = self.emu.message(self.id, message["message_id"])
        assert found is not None
        return found

    def silence(self, seconds: float = 0.4, *, since: int | None = None) -> list[JSON]:
        """The bot's messages/edits in this chat within `seconds` (to assert nothing else came)."""
        start = self.mark() if since is None else since
        import time

        time.sleep(seconds)
        return [e.data for e in self.emu.events(chat_id=self.id, since=start) if e.kind in ("bot_message", "bot_edit")]


@pytest.fixture
def chat_factory(emu: BotAPIEmulator, bot: BotRunner) -> Callable[..., Chat]:
    def make(first_name: str = "Anna", language_code: str | None = "ru", **kwargs: Any) -> Chat:
        return Chat(emu, emu.user(first_name=first_name, language_code=language_code, **kwargs))

    return make


@pytest.fixture
def chat(chat_factory) -> Chat:
    return chat_factory()


def started(chat: Chat, payload: str = "") -> JSON:
    """/start (with an optional deep-link payload) -> the main menu message."""
    return chat.send(f"/start {payload}".strip(), lambda m: bool(inline_buttons(m)))


def fund(telegram_id: int, amount: Decimal | str | int, *, bucket: str = "main") -> None:
    """Give a user tokens through the ledger (as an operator would)."""
    from botapp.models import TgUser
    from botapp.services.balance import BalanceService

    user = TgUser.objects.get(telegram_id=telegram_id)
    BalanceService.admin_adjust(
        user_id=user.pk,
        amount=Decimal(amount),
        reason="test funds",
        key=f"test:{uuid.uuid4().hex}",
        bucket=bucket,
        notify=False,
    )


def text_of(message: JSON) -> str:
    return str(message.get("text") or message.get("caption") or "")


def has_buttons(*parts: str) -> Callable[[JSON], bool]:
    """A predicate: the message has buttons containing every one of `parts`."""

    def check(message: JSON) -> bool:
        texts = button_texts(message)
        return all(any(part in text for text in texts) for part in parts)

    return check


def text_has(*parts: str) -> Callable[[JSON], bool]:
    def check(message: JSON) -> bool:
        text = text_of(message)
        return all(part in text for part in parts)

    return check


def eventually(check: Callable[[], Any], timeout: float = WAIT, interval: float = 0.02) -> Any:
    """Poll `check` until it returns something truthy (for effects with no message to wait for)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


# --- the workers' side with Google: the fake Google (one per module) and the worker's steps inline -----------
@pytest.fixture(scope="module")
def google():
    from sandbox.google import FakeGoogleServer

    server = FakeGoogleServer(expected_api_key="test-key").start_in_thread()
    yield server
    server.stop_thread()


@pytest.fixture
def worker(settings, emu, google, tmp_path):
    """The worker's steps inline (tests.generation.conftest.inline_worker), pointed at this chat's emulator and
    the fake Google; yields the fake Google (what it received)."""
    from tests.generation.conftest import inline_worker

    with inline_worker(settings, emu, google, tmp_path):
        yield google


def latest_request(telegram_id: int):
    """The user's newest generation request, with its model."""
    from botapp.models import GenRequest

    return GenRequest.objects.filter(user__telegram_id=telegram_id).select_related("ai_model").latest("pk")
