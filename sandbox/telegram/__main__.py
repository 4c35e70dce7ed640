"""``python -m sandbox.telegram [--host H] [--port 8081] [--token T] [--user ID:NAME]``: run the emulator standalone."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from .server import BotAPIEmulator


async def _serve(args: argparse.Namespace) -> None:
    emu = BotAPIEmulator(args.token, host=args.host, port=args.port, bot_username=args.username)
    await emu.start()
    for spec in args.user:
        user_id, _, name = spec.partition(":")
        emu.user(int(user_id), name or "User")
    print(f"Bot API emulator: {emu.base_url}", flush=True)
    print(f"Token: {emu.token}", flush=True)
    print(f"aiogram: AiohttpSession(api=TelegramAPIServer.from_base({emu.base_url!r}))", flush=True)
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
    parser.add_argument("--user", action="append", default=[], metavar="ID[:NAME]", help="pre-create a user chat")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
