"""getMe, getUpdates (long polling) and the webhook settings."""

from __future__ import annotations

import copy
from urllib.parse import urlparse

from ..errors import bad_request, conflict
from ..params import Params
from ..state import JSON, WebhookConfig
from .base import SECRET_RE, MethodsBase


class UpdatesMixin(MethodsBase):
    """Bot info, long polling and webhook configuration."""

    async def m_getMe(self, p: Params) -> JSON:
        return dict(self.state.bot_user)

    async def m_logOut(self, p: Params) -> bool:
        return True

    async def m_close(self, p: Params) -> bool:
        return True

    # ------------------------------------------------------------ updates / webhook

    async def m_getUpdates(self, p: Params) -> list[JSON]:
        offset = p.get_int("offset")
        limit = min(max(p.get_int("limit", default=100) or 100, 1), 100)
        timeout = max(p.get_int("timeout", default=0) or 0, 0)
        allowed = p.get_json("allowed_updates")
        state = self.state
        with state.lock:
            if state.webhook is not None:
                raise conflict(
                    "can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
                )
            if isinstance(allowed, list):
                state.allowed_updates = list(allowed) or None
            state.confirm(offset)
            state.poll_generation += 1
            generation = state.poll_generation
            state.notify()

        def check() -> list[JSON] | str | None:
            if state.poll_generation != generation:
                return "terminated"
            if state.webhook is not None:
                return "webhook"
            if state.closing:
                return []
            if state.pending:
                return [copy.deepcopy(u.payload) for u in state.pending[:limit]]
            return None

        if timeout:
            result = await state.wait_async(check, float(timeout))
        else:
            with state.lock:
                result = check()
        if result == "terminated":
            raise conflict("terminated by other getUpdates request; make sure that only one bot instance is running")
        if result == "webhook":
            raise conflict(
                "can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
            )
        return result if isinstance(result, list) else []

    async def m_setWebhook(self, p: Params) -> bool:
        url = p.get_str("url") or ""
        if not url:
            return await self.m_deleteWebhook(p)
        parsed = urlparse(url)
        if parsed.scheme not in ("https", "http") or not parsed.netloc:
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if parsed.scheme == "http" and not self.allow_http_webhook:
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.get_str("secret_token")
        if secret is not None and secret != "" and not SECRET_RE.match(secret):
            raise bad_request("secret token contains unallowed characters")
        allowed = p.get_json("allowed_updates")
        with self.state.lock:
            previous = self.state.webhook
            self.state.webhook = WebhookConfig(
                url=url,
                secret_token=secret or None,
                max_connections=p.get_int("max_connections", default=40) or 40,
                allowed_updates=(list(allowed) or None)
                if isinstance(allowed, list)
                else (previous.allowed_updates if previous else self.state.allowed_updates),
                ip_address=p.get_str("ip_address"),
            )
            if p.get_bool("drop_pending_updates"):
                self.state.pending.clear()
            self.state.notify()
        self.on_webhook_changed()
        return True

    async def m_deleteWebhook(self, p: Params) -> bool:
        with self.state.lock:
            self.state.webhook = None
            if p.get_bool("drop_pending_updates"):
                self.state.pending.clear()
            self.state.notify()
        self.on_webhook_changed()
        return True

    async def m_getWebhookInfo(self, p: Params) -> JSON:
        with self.state.lock:
            hook = self.state.webhook
            info: JSON = {
                "url": hook.url if hook else "",
                "has_custom_certificate": False,
                "pending_update_count": len(self.state.pending),
            }
            if hook:
                info["max_connections"] = hook.max_connections
                if hook.allowed_updates:
                    info["allowed_updates"] = list(hook.allowed_updates)
                if hook.ip_address:
                    info["ip_address"] = hook.ip_address
                if hook.last_error_date:
                    info["last_error_date"] = hook.last_error_date
                    info["last_error_message"] = hook.last_error_message or ""
            return info
