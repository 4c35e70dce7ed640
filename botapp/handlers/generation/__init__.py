"""The generation flows (FSM): model -> options -> (photos) -> prompt -> confirmation -> generate,
and the buttons under a result (regenerate, edit this image, animate this image, extend, edit this video,
render a draft in full).

The flow keeps its data in the FSM storage (JSON: Redis-safe):
    kind, model_id, params {aspect_ratio, duration_seconds, resolution}, images [{file_id, ...}],
    prompt, card_id (the message whose buttons are live), nonce (of the confirmation card),
    notes (hints collected while an album arrives).
Only the current card's buttons act; a button of an older card gets "outdated". Generating
passes `idempotency_key=confirm:<user>:<nonce>`, so a second press never charges twice.
"""

from aiogram import Router

from botapp.handlers.generation import control, flow, inputs, prompt_help, results, studio
from botapp.handlers.generation.base import initial_params, start_flow
from botapp.handlers.generation.inputs import drain_album_replies

router = Router(name=__name__)
# prompt_help (styles, ✨ Improve) and studio (thinking, ⚡ Draft) before flow: their buttons are GenCb actions
# of their own, in the flow's states. Every button under a result (ResultCb) goes to the results router.
router.include_routers(
    control.router, prompt_help.router, studio.router, flow.router, inputs.router, results.router
)

__all__ = ["drain_album_replies", "initial_params", "router", "start_flow"]
