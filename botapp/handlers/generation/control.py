"""Control while a generation runs: the buttons of its status message.

The status message (sent by `flow.on_generate` before the request is created, then edited by the
workers) shows the request's place in the queue and an estimated wait (botapp.selectors.queue) with
two buttons while the request can still be cancelled:

- 🔄 Refresh: the place and the wait again (computed now, on demand: never on a timer);
- ❌ Cancel: `botapp.services.control.cancel` -> "cancelled, N tokens are back"; refused with the
  reason once the request was sent to Google (which charges for the work) or has finished.

The buttons carry the confirmation's nonce, and the request is looked up by its idempotency key
`confirm:<the presser's user id>:<nonce>` (unique, indexed): a press (or a forged callback) can only
reach the presser's own request; anything else is "outdated".
"""

from __future__ import annotations

import math
from contextlib import suppress

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from botapp import bridge, keyboards
from botapp.bridge import UserContext
from botapp.callbacks import QueueAction, QueueCb
from botapp.handlers.common import answer, esc, outdated
from botapp.i18n import t
from botapp.models import AIModel, GenRequest
from botapp.selectors.queue import QueueEstimate, RequestView
from botapp.services.control import CancelState

router = Router(name=__name__)
Status = GenRequest.Status


def confirm_key(user_id: int, nonce: str) -> str:
    """The idempotency key of the request a confirmation creates (flow.on_generate)."""
    return f"confirm:{user_id}:{nonce}"


# --- texts ---------------------------------------------------------------------------------------------------
def wait_text(seconds: float, lang: str) -> str:
    if seconds < 60:
        return t("gen.control.wait_under_minute", lang)
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return t("gen.control.wait_minutes", lang, minutes=minutes)
    return t("gen.control.wait_hours", lang, hours=minutes // 60, minutes=minutes % 60)


def queued_text(label: str, estimate: QueueEstimate, lang: str) -> str:
    wait = wait_text(estimate.wait_seconds, lang)
    if estimate.position <= 1:
        where = t("gen.control.next", lang, wait=wait)
    else:
        where = t("gen.control.position", lang, position=estimate.position, wait=wait)
    return t("gen.control.queued", lang, label=esc(label), where=where)


def cancelled_text(label: str, amount: object, lang: str) -> str:
    return t("generation.status.cancelled", lang, label=esc(label), amount=keyboards.fmt_tokens(amount))


def status_screen(view: RequestView, nonce: str, lang: str) -> tuple[str, InlineKeyboardMarkup | None] | None:
    """What the status message shows for the request now (None: leave the text, drop the buttons)."""
    buttons = keyboards.queue_keyboard(lang, nonce) if view.cancellable else None
    if view.estimate is not None:
        return queued_text(view.label, view.estimate, lang), buttons
    if view.status == Status.RUNNING:
        video = view.kind == AIModel.Kind.VIDEO
        key = "generation.status.generating_video" if video else "generation.status.generating"
        return t(key, lang, label=esc(view.label)), buttons
    if view.status == Status.CANCELLED:
        return cancelled_text(view.label, view.refunded, lang), keyboards.menu_only(lang)
    return None  # finished: the workers deliver the result (or the failure) and delete this message


# --- editing the status message -------------------------------------------------------------------------------
async def edit(query: CallbackQuery, text: str | None, markup: InlineKeyboardMarkup | None) -> None:
    """Edit the pressed status message (its text, or only its buttons); best effort."""
    message = query.message
    if not isinstance(message, Message):
        return  # deleted, or too old to edit
    with suppress(TelegramBadRequest):  # "message is not modified", or it was deleted meanwhile
        if text is None:
            await message.edit_reply_markup(reply_markup=markup)
        else:
            await message.edit_text(text, reply_markup=markup)


async def show_view(query: CallbackQuery, user: UserContext, nonce: str, view: RequestView, lang: str) -> None:
    screen = status_screen(view, nonce, lang)
    await edit(query, *(screen or (None, None)))
    if view.cancellable:
        # A worker may have taken the request while we edited, and its edit may have come first:
        # show what it is now.
        again = await bridge.generation_status(user.id, confirm_key(user.id, nonce))
        if again is not None and (again.status, again.submitted) != (view.status, view.submitted):
            screen = status_screen(again, nonce, lang)
            await edit(query, *(screen or (None, None)))


# --- the buttons ---------------------------------------------------------------------------------------------
@router.callback_query(QueueCb.filter(F.action == QueueAction.REFRESH))
async def on_refresh(query: CallbackQuery, callback_data: QueueCb, user: UserContext, lang: str) -> None:
    view = await bridge.generation_status(user.id, confirm_key(user.id, callback_data.nonce))
    if view is None:
        await outdated(query, lang)
        return
    await show_view(query, user, callback_data.nonce, view, lang)
    if view.status in GenRequest.FINISHED and view.status != Status.CANCELLED:
        await answer(query, t("gen.control.already_finished", lang))
    else:
        await answer(query, t("gen.control.refreshed", lang))


@router.callback_query(QueueCb.filter(F.action == QueueAction.CANCEL))
async def on_cancel(query: CallbackQuery, callback_data: QueueCb, user: UserContext, lang: str) -> None:
    outcome = await bridge.cancel_generation(user.id, confirm_key(user.id, callback_data.nonce))
    if outcome is None:
        await outdated(query, lang)
        return
    if outcome.state in (CancelState.CANCELLED, CancelState.ALREADY_CANCELLED):
        await edit(query, cancelled_text(outcome.label, outcome.refunded, lang), keyboards.menu_only(lang))
        if outcome.state == CancelState.CANCELLED:
            await answer(query, t("gen.control.cancelled", lang))
        else:
            await answer(query, t("gen.control.already_cancelled", lang), alert=True)
        return
    await edit(query, None, None)  # nothing to cancel any more: the buttons go
    key = "gen.control.already_sent" if outcome.state == CancelState.SUBMITTED else "gen.control.already_finished"
    await answer(query, t(key, lang), alert=True)
