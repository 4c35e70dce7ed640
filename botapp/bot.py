"""Building the bot: the Bot (with a configurable Bot API server), the Dispatcher (FSM storage,
events isolation, middlewares, routers) and the command menus.

The same objects serve long polling (`manage.py runbot`) and the webhook (`botapp.api`), and the
end-to-end tests drive exactly this code against the Bot API emulator.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, DefaultKeyBuilder
from aiogram.fsm.storage.memory import MemoryStorage, SimpleEventIsolation
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from django.conf import settings

from botapp.fsm import FSMMiddleware, RedisFSMStorage
from botapp.handlers import build_router, generation
from botapp.i18n import LANGUAGES, t
from botapp.middlewares import (
    DedupeMiddleware,
    InFlightMiddleware,
    MemoryOnceStore,
    MemoryThrottleStore,
    OnceStore,
    RedisOnceStore,
    RedisThrottleStore,
    TextGuardMiddleware,
    ThrottleStore,
    ThrottlingMiddleware,
    UserMiddleware,
)

log = logging.getLogger(__name__)

COMMANDS = ("start", "menu", "help", "balance", "paysupport", "terms", "cancel")
FSM_STATE_TTL = 7 * 24 * 3600  # an abandoned flow expires after a week (Redis storage)
SHUTDOWN_GRACE = 10.0  # seconds a stopping bot waits for the updates it is handling


def create_bot(token: str | None = None, *, api_url: str | None = None) -> Bot:
    """A Bot talking to `TELEGRAM_API_URL` (Telegram, a local Bot API server or the emulator)."""
    token = token or settings.BOT_TOKEN
    if not token:
        raise RuntimeError("BOT_TOKEN is not set: get a token from @BotFather and put it into .env")
    base = (api_url or getattr(settings, "TELEGRAM_API_URL", "") or "https://api.telegram.org").rstrip("/")
    session = AiohttpSession(api=TelegramAPIServer.from_base(base))
    return Bot(token=token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


@dataclass
class Backends:
    storage: BaseStorage
    isolation: BaseEventIsolation
    once: OnceStore
    throttle: ThrottleStore = field(default_factory=MemoryThrottleStore)


def create_backends(*, redis_url: str | None = None, prefix: str | None = None, polling: bool = False) -> Backends:
    """Redis FSM storage, event isolation, dedupe and throttling when REDIS_URL is set; memory otherwise.

    `prefix` namespaces the Redis keys (one per deployment; tests use a random one). With `polling`
    (`manage.py runbot`) this process is the only one that gets updates (Telegram serves getUpdates to
    one consumer and never while a webhook is set), so the per-user lock of the events isolation is
    an in-process one (the same order of a user's updates without two Redis round trips per update),
    and the FSM storage keeps a write-through copy of what it holds in memory (botapp/fsm.py). The FSM
    data, dedupe and throttling stay in Redis (they must outlive a restart)."""
    redis_url = settings.REDIS_URL if redis_url is None else redis_url
    prefix = prefix or getattr(settings, "BOT_REDIS_PREFIX", "bot")
    if redis_url:
        from aiogram.fsm.storage.redis import RedisEventIsolation
        from redis.asyncio import Redis

        redis = Redis.from_url(redis_url)
        key_builder = DefaultKeyBuilder(prefix=f"{prefix}:fsm", with_bot_id=True)
        storage = RedisFSMStorage(
            redis, key_builder=key_builder, state_ttl=FSM_STATE_TTL, data_ttl=FSM_STATE_TTL, cache=polling
        )
        isolation: BaseEventIsolation = (
            SimpleEventIsolation()
            if polling
            else RedisEventIsolation(redis, key_builder=key_builder, lock_kwargs={"timeout": 60, "sleep": 0.02})
        )
        return Backends(
            storage=storage,
            isolation=isolation,
            once=RedisOnceStore(redis, prefix=f"{prefix}:once", owns_client=False),
            throttle=RedisThrottleStore(redis, prefix=f"{prefix}:throttle", owns_client=False),
        )
    return Backends(
        storage=MemoryStorage(),
        isolation=SimpleEventIsolation(),
        once=MemoryOnceStore(),
        throttle=MemoryThrottleStore(),
    )


_pinned_response_models: list[type] = []


def pin_response_models() -> None:
    """Keep aiogram's `Response[<return type>]` models alive.

    aiogram validates every Bot API answer with `Response[method.__returning__]`; pydantic caches
    parametrized generics only weakly, so without a strong reference the model (with the whole
    Update/Message schema) is rebuilt on most calls: ~1 ms of CPU per request, the largest cost of an
    update in the benchmark. One model per distinct return type (~40) is built once here.
    """
    if _pinned_response_models:
        return
    import inspect

    from aiogram import methods
    from aiogram.methods.base import Response, TelegramMethod

    returning: dict[str, Any] = {}
    for value in vars(methods).values():
        if inspect.isclass(value) and issubclass(value, TelegramMethod) and value is not TelegramMethod:
            returning.setdefault(repr(value.__returning__), value.__returning__)
    _pinned_response_models.extend(Response[kind] for kind in returning.values())


def build_dispatcher(backends: Backends | None = None, **workflow_data: Any) -> Dispatcher:
    """The Dispatcher with every router and middleware. `workflow_data` reaches handlers as kwargs.

    Outer middlewares on `update`, in order: aiogram's errors and user context, the in-flight
    tracker (graceful stop), dedupe and throttling (before the FSM lock, so a flood or a redelivery
    never queues on it), the text guard (text the database cannot store is refused before anything
    is written), then the FSM context with its per-user events isolation, then the user upsert (+ ban
    check, language).
    """
    pin_response_models()
    backends = backends or create_backends()
    dp = Dispatcher(storage=backends.storage, events_isolation=backends.isolation, disable_fsm=True, **workflow_data)
    throttle_rate = float(getattr(settings, "THROTTLE_RATE", 0.5))
    in_flight = InFlightMiddleware()
    dp.update.outer_middleware(in_flight)
    dp.update.outer_middleware(DedupeMiddleware(backends.once))
    dp.update.outer_middleware(ThrottlingMiddleware(rate=throttle_rate, store=backends.throttle))
    dp.update.outer_middleware(TextGuardMiddleware())
    # aiogram's FSM middleware with a one-call clear() (botapp/fsm.py), registered here instead of by
    # aiogram, to come after the ones above; aiogram's shutdown closes the same storage and isolation.
    dp.fsm = FSMMiddleware(storage=backends.storage, events_isolation=backends.isolation, strategy=dp.fsm.strategy)
    dp.update.outer_middleware(dp.fsm)
    dp.update.outer_middleware(UserMiddleware(backends.once))
    dp.include_router(build_router())

    async def graceful_stop() -> None:
        """Let the updates in progress (and album answers) finish, then close our store; the FSM
        storage and isolation are closed by aiogram itself, the bot session after this."""
        await in_flight.drain(SHUTDOWN_GRACE)
        await generation.drain_album_replies(SHUTDOWN_GRACE)
        await backends.once.close()
        await backends.throttle.close()

    dp.shutdown.register(graceful_stop)
    # First of the shutdown handlers: aiogram's own (closing the FSM storage) must wait for the drain.
    dp.shutdown.handlers.insert(0, dp.shutdown.handlers.pop())
    return dp


def commands(lang: str) -> list[BotCommand]:
    return [BotCommand(command=name, description=t(f"commands.{name}", lang)) for name in COMMANDS]


async def set_commands(bot: Bot) -> None:
    """The command menu in both languages (Russian is also the default for other clients)."""
    await bot.set_my_commands(commands("ru"), scope=BotCommandScopeDefault())
    for lang in LANGUAGES:
        await bot.set_my_commands(commands(lang), scope=BotCommandScopeDefault(), language_code=lang)


async def set_chat_commands(bot: Bot, chat_id: int, lang: str) -> None:
    """After a language change in the settings: the chat's command menu follows the bot's language."""
    await bot.set_my_commands(commands(lang), scope=BotCommandScopeChat(chat_id=chat_id))


# --- the web process's runtime (the webhook) ---------------------------------------------------------
@dataclass
class Runtime:
    bot: Bot
    dispatcher: Dispatcher
    loop: asyncio.AbstractEventLoop


_runtime: Runtime | None = None
_runtime_locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}


async def get_runtime() -> Runtime:
    """The process-wide bot and dispatcher for the webhook, built on first use in the running loop
    (aiohttp sessions belong to one loop: a new loop, as in tests, gets a new runtime)."""
    global _runtime
    loop = asyncio.get_running_loop()
    if _runtime is not None and _runtime.loop is loop:
        return _runtime
    lock = _runtime_locks.setdefault(loop, asyncio.Lock())
    async with lock:
        if _runtime is None or _runtime.loop is not loop:
            bot = create_bot()
            dp = build_dispatcher()
            await dp.emit_startup(bot=bot)
            _runtime = Runtime(bot=bot, dispatcher=dp, loop=loop)
    for other in [known for known in _runtime_locks if known is not loop and known.is_closed()]:
        del _runtime_locks[other]
    return _runtime


async def reset_runtime() -> None:
    """Close the webhook runtime (tests; a graceful shutdown)."""
    global _runtime
    runtime, _runtime = _runtime, None
    if runtime is not None:
        from botapp import bridge

        await runtime.dispatcher.emit_shutdown(bot=runtime.bot)
        await runtime.bot.session.close()
        await bridge.close_db()


def new_webhook_secret() -> str:
    """A value for WEBHOOK_SECRET (1-256 characters of A-Z, a-z, 0-9, _ and -)."""
    return secrets.token_urlsafe(32)
