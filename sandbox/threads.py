"""Serving a stand-in from a daemon thread with its own event loop, so that synchronous tests (and the
Django test client) can talk to it: `ServerThread(server, name)` for any object with async `start()`
and `stop()` (the Bot API emulator, the fake Google, the fake YooKassa)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any


class ServerThread:
    def __init__(self, server: Any, name: str) -> None:
        self.server = server
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server in the thread; raise what its start raised, or if it took over `timeout`."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.server.start())
            except BaseException as exc:  # a port taken, a bad address: raised in the caller's thread
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                try:
                    loop.run_until_complete(self.server.stop())
                finally:
                    loop.run_until_complete(loop.shutdown_asyncgens())
                    loop.close()

        self.loop = loop
        self.thread = threading.Thread(target=run, name=self.name, daemon=True)
        self.thread.start()
        if not ready.wait(timeout):
            raise RuntimeError(f"{self.name} did not start in time")
        if errors:
            raise errors[0]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop (the server's stop() runs in it first) and wait for the thread."""
        loop, thread = self.loop, self.thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
        self.loop = self.thread = None
