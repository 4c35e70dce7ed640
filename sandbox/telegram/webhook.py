"""Webhook delivery: POST pending updates to the bot's URL with retries; methods returned in the reply run."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import ClientSession, ClientTimeout, MultipartReader

from .errors import ApiError
from .params import Params, read_multipart
from .state import JSON, EmulatorState, Update, WebhookConfig, WebhookDelivery, now

log = logging.getLogger("sandbox.telegram")


class WebhookMixin:
    """Delivers updates to a webhook set with setWebhook (part of :class:`BotAPIEmulator`)."""

    state: EmulatorState
    webhook_retry_delays: tuple[float, ...]
    webhook_timeout: float
    max_upload_bytes: int
    _loop: asyncio.AbstractEventLoop | None
    _webhook_task: asyncio.Task[None] | None

    def _session(self) -> ClientSession:
        raise NotImplementedError

    async def execute(self, method: str, params: Params | JSON, *, via: str = "http") -> Any:
        raise NotImplementedError

    def _on_webhook_changed(self) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._ensure_webhook_worker()
        else:
            loop.call_soon_threadsafe(self._ensure_webhook_worker)

    def _ensure_webhook_worker(self) -> None:
        with self.state.lock:
            wanted = self.state.webhook is not None and not self.state.closing
        if wanted and (self._webhook_task is None or self._webhook_task.done()):
            self._webhook_task = asyncio.get_running_loop().create_task(self._webhook_worker())

    async def _webhook_worker(self) -> None:
        state = self.state

        def next_update() -> tuple[Update, WebhookConfig] | str | None:
            if state.closing or state.webhook is None:
                return "stop"
            if state.pending:
                return state.pending[0], state.webhook
            return None

        while True:
            got = await state.wait_async(next_update, 3600.0)
            if got is None:
                continue
            if got == "stop":
                return
            assert not isinstance(got, str)
            update, hook = got
            await self._deliver(update, hook)
            with state.lock:
                if state.pending and state.pending[0] is update:
                    state.pending.pop(0)
                    state.notify()

    async def _deliver(self, update: Update, hook: WebhookConfig) -> bool:
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        body = json.dumps(update.payload, ensure_ascii=False)
        attempts = 1 + len(self.webhook_retry_delays)
        for attempt in range(attempts):
            status: int | None = None
            error: str | None = None
            try:
                async with self._session().post(
                    hook.url, data=body.encode(), headers=headers, timeout=ClientTimeout(total=self.webhook_timeout)
                ) as resp:
                    status = resp.status
                    if 200 <= status < 300:
                        await self._apply_webhook_reply(resp)
                    else:
                        error = f"Wrong response from the webhook: {status} {resp.reason}"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = f"Connection failed: {type(exc).__name__}: {exc}"
            with self.state.lock:
                self.state.webhook_deliveries.append(WebhookDelivery(update.update_id, attempt + 1, status, error))
                if error:
                    hook.last_error_date, hook.last_error_message = now(), error
                self.state.notify()
            if error is None:
                return True
            if attempt < attempts - 1:
                await asyncio.sleep(self.webhook_retry_delays[attempt])
        log.warning("webhook delivery of update %s failed after %s attempts", update.update_id, attempts)
        return False

    async def _apply_webhook_reply(self, resp: Any) -> None:
        """Execute a method returned in the webhook response body, as Telegram does."""
        content_type = resp.headers.get("Content-Type", "")
        params: Params | None = None
        try:
            if content_type.startswith("multipart/"):
                params = await read_multipart(MultipartReader(resp.headers, resp.content), self.max_upload_bytes)
            else:
                raw = await resp.read()
                if raw.strip()[:1] == b"{":
                    decoded = json.loads(raw)
                    params = Params(decoded) if isinstance(decoded, dict) else None
        except Exception:
            return
        if params is None or not params.has("method"):
            return
        method = str(params.values.pop("method"))
        try:
            await self.execute(method, params, via="webhook_reply")
        except ApiError as exc:
            log.info("webhook reply %s failed: %s", method, exc.description)
