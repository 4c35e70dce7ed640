"""FSM states of the multi-step flows."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup


class GenerationFlow(StatesGroup):
    """choose a model -> options -> (photos) -> prompt -> confirmation -> generate."""

    model = State()
    options = State()
    photos = State()  # waiting for photos: images to edit, or the starting frame of a video
    prompt = State()
    negative = State()  # waiting for what the result should avoid (a negative prompt)
    confirm = State()


class PromoFlow(StatesGroup):
    code = State()


class SupportFlow(StatesGroup):
    """/paysupport: waiting for the user's description of the problem."""

    problem = State()
