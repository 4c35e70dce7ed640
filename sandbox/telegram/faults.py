"""Fault injection: blocked users, scripted errors, delays, lost answers, refused files and flood control."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from .errors import error_for_code
from .state import JSON, EmulatorState, FaultRule, UploadRefusal, now


class ConnectionDropped(Exception):
    """A scripted fault: the method ran, and the connection is dropped instead of answering."""


class FaultsMixin:
    """Scripted failures of the Bot API (part of :class:`BotAPIEmulator`)."""

    state: EmulatorState

    def block_bot(self, chat_id: int, *, notify: bool = True) -> None:
        """The user blocks the bot: sends to this chat answer 403 (``my_chat_member`` update if notify)."""
        self._set_blocked(chat_id, True, notify)

    def unblock_bot(self, chat_id: int, *, notify: bool = True) -> None:
        """The user unblocks the bot."""
        self._set_blocked(chat_id, False, notify)

    def _set_blocked(self, chat_id: int, blocked: bool, notify: bool) -> None:
        with self.state.lock:
            chat = self.state.chats[chat_id]
            if chat.blocked == blocked:
                return
            chat.blocked = blocked
            user = self.state.users.get(chat_id)
            if notify and user is not None:
                old, new = ("member", "kicked") if blocked else ("kicked", "member")
                bot = dict(self.state.bot_user)
                payload = {
                    "chat": chat.to_dict(),
                    "from": dict(user),
                    "date": now(),
                    "old_chat_member": _member(old, bot),
                    "new_chat_member": _member(new, bot),
                }
                self.state.enqueue_update("my_chat_member", payload)
            self.state.add_event("blocked" if blocked else "unblocked", chat_id, None, {})

    def fail_next(
        self,
        method: str,
        error_code: int = 429,
        *,
        retry_after: int | None = None,
        description: str | None = None,
        times: int = 1,
        chat_id: int | None = None,
    ) -> FaultRule:
        """Answer the next ``times`` calls of ``method`` ("*" = any) with an error (429 gets retry_after)."""
        if error_code == 429 and retry_after is None:
            retry_after = 1
        rule = FaultRule(method.lower(), error_code, description, retry_after, times, chat_id)
        with self.state.lock:
            self.state.faults.append(rule)
        return rule

    def delay_next(self, method: str, seconds: float, *, times: int = 1, chat_id: int | None = None) -> FaultRule:
        """Make the next ``times`` calls of ``method`` slow (to exercise client timeouts)."""
        rule = FaultRule(method.lower(), None, times=times, chat_id=chat_id, delay=seconds)
        with self.state.lock:
            self.state.faults.append(rule)
        return rule

    def lose_answer_next(
        self, method: str, *, mode: str = "hang", seconds: float = 30.0, times: int = 1, chat_id: int | None = None
    ) -> FaultRule:
        """The next ``times`` calls of ``method`` take effect (the message is sent), but the answer never
        arrives: ``mode="hang"`` holds it for ``seconds`` (the client times out), ``"reset"`` drops the
        connection. File downloads fail with ``fail_next("file", 404)``."""
        if mode not in ("hang", "reset"):
            raise ValueError(f"unknown mode {mode!r}")
        rule = FaultRule(method.lower(), None, times=times, chat_id=chat_id, delay=seconds, after=mode)
        with self.state.lock:
            self.state.faults.append(rule)
        return rule

    def refuse_upload(
        self,
        name: str | None = None,
        description: str = "IMAGE_PROCESS_FAILED",
        *,
        predicate: Callable[[str | None, bytes], bool] | None = None,
        times: int | None = None,
    ) -> UploadRefusal:
        """Telegram will not take a file: every upload whose file name contains ``name`` (and/or for
        which ``predicate(file_name, data)`` is true) is refused with 400 "Bad Request: <description>"
        by any method that sends it (sendPhoto, sendDocument, ...). In sendMediaGroup one such item
        refuses the whole album, as Telegram does: "failed to send message #N with the error message
        ..." and nothing is sent. ``times``: how many refusals (None: until ``clear_faults``)."""
        if name is None and predicate is None:
            raise ValueError("name or predicate is required")
        rule = UploadRefusal(description, name=name, predicate=predicate, times=times)
        with self.state.lock:
            self.state.upload_refusals.append(rule)
        return rule

    def clear_faults(self) -> None:
        """Forget every scripted fault, refused upload and flood limit."""
        with self.state.lock:
            self.state.faults.clear()
            self.state.upload_refusals.clear()
            self.state.flood_per_chat = self.state.flood_global = None

    def set_flood_control(
        self, per_chat: tuple[int, float] | None = None, overall: tuple[int, float] | None = None
    ) -> None:
        """Enable automatic 429s: at most ``(count, seconds)`` sends per chat and/or overall."""
        with self.state.lock:
            self.state.flood_per_chat, self.state.flood_global = per_chat, overall
            self.state.sent_times.clear()

    def _take_fault(self, method: str, chat_id: int | str | None) -> FaultRule | None:
        with self.state.lock:
            found = next((rule for rule in self.state.faults if rule.matches(method, chat_id)), None)
            if found is not None:
                found.times -= 1
            self.state.faults = [r for r in self.state.faults if r.times > 0]
            return found

    def _check_flood(self, chat_id: int | str | None) -> None:
        with self.state.lock:
            moment = time.monotonic()
            limits = [(self.state.flood_global, None)]
            if isinstance(chat_id, int):
                limits.append((self.state.flood_per_chat, chat_id))
            for limit, scope in limits:
                if limit is None:
                    continue
                count, window = limit
                recent = [t for t, c in self.state.sent_times if moment - t < window and (scope is None or c == scope)]
                if len(recent) >= count:
                    raise error_for_code(429, retry_after=max(1, math.ceil(min(recent) + window - moment)))


def _member(status: str, user: JSON) -> JSON:
    member: JSON = {"status": status, "user": user}
    if status == "kicked":
        member["until_date"] = 0
    return member
