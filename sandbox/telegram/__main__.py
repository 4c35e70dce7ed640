"""``python -m sandbox.telegram [--host H] [--port 8081] [--token T] [--username U] [--user ID:NAME[:LANG]]``.

Runs the emulator standalone: the Bot API for the bot, and the web chat page for a person
(``Web chat: http://127.0.0.1:8081/chat/`` is printed once both answer; ``GET /health`` answers 200).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from .server import BotAPIEmulator


async def _serve(args: argparse.Namespace) -> None:
    emu = BotAPIEmulator(
        args.token,
        host=args.host,
        port=args.port,
        bot_username=args.username,
        bot_first_name=args.name,
        webchat=not args.no_webchat,
    )
    await emu.start()
    if emu.webchat is not None:
        emu.webchat.ensure_presets()  # the bot may write to them before anyone opens the page
    for spec in args.user:
        user_id, _, rest = spec.partition(":")
        name, _, language = rest.partition(":")
        emu.user(int(user_id), name or "User", language_code=language or "ru")
    print(f"Bot API emulator: {emu.base_url}", flush=True)
    print(f"Token: {emu.token}", flush=True)
    print(f"aiogram: AiohttpSession(api=TelegramAPIServer.from_base({emu.base_url!r}))", flush=True)
    if emu.webchat is not None:
        print(f"Web chat: {emu.webchat_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await emu.stop()


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.telegram", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=None, help="bot token to accept (generated if omitted)")
    parser.add_argument("--username", default="emulator_bot", help="the bot's username")
    parser.add_argument("--name", default="Emulator Bot", help="the bot's display name")
    parser.add_argument(
        "--user", action="append", default=[], metavar="ID[:NAME[:LANG]]", help="pre-create a user chat"
    )
    parser.add_argument("--no-webchat", action="store_true", help="do not serve the web chat page at /chat/")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
