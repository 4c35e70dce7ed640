"""Settings: language, default image and video models, aspect ratio, video duration and resolution,
sending results as files, notifications. Saved in UserSettings; the flows start from them."""

from __future__ import annotations

import logging
from contextlib import suppress

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery

from botapp import bridge, keyboards
from botapp.bridge import ModelInfo, UserContext
from botapp.callbacks import MenuAction, MenuCb, SettingsAction, SettingsCb, pack_ratio, unpack_ratio
from botapp.handlers.common import answer, outdated, show
from botapp.i18n import LANGUAGES, t
from botapp.keyboards import fmt_resolution
from botapp.models import AIModel

router = Router(name=__name__)
log = logging.getLogger(__name__)

LANGUAGE_LABELS = {"ru": "🇷🇺 Русский", "en": "🇬🇧 English"}
AUTO = "0"


def _unique(values: list) -> list:
    return list(dict.fromkeys(values))


def _model_label(models: list[ModelInfo], model_id: int | None, lang: str) -> str:
    model = next((m for m in models if m.id == model_id), None)
    return model.label if model else t("settings.auto", lang)


async def settings_text(user: UserContext, lang: str) -> str:
    image_models = await bridge.active_models(AIModel.Kind.IMAGE)
    video_models = await bridge.active_models(AIModel.Kind.VIDEO)
    on, off = t("settings.on", lang), t("settings.off", lang)
    return t(
        "settings.text",
        lang,
        language=LANGUAGE_LABELS.get(user.language, user.language),
        image_model=_model_label(image_models, user.default_image_model_id, lang),
        video_model=_model_label(video_models, user.default_video_model_id, lang),
        ratio=user.aspect_ratio,
        duration=user.video_duration,
        resolution=user.video_resolution,
        as_file=on if user.send_as_file else off,
        notifications=on if user.notifications else off,
    )


async def show_settings(query: CallbackQuery, user: UserContext, lang: str, *, header: str = "") -> None:
    text = await settings_text(user, lang)
    if header:
        text = f"{header}\n\n{text}"
    markup = keyboards.settings_keyboard(lang, as_file=user.send_as_file, notifications=user.notifications)
    await show(query, text, markup)


@router.callback_query(MenuCb.filter(F.action == MenuAction.SETTINGS))
async def on_settings(query: CallbackQuery, state: FSMContext, user: UserContext, lang: str) -> None:
    await state.clear()
    await show_settings(query, user, lang)
    await answer(query)


@router.callback_query(SettingsCb.filter(F.action == SettingsAction.OPEN))
async def on_open(query: CallbackQuery, user: UserContext, lang: str) -> None:
    await show_settings(query, user, lang)
    await answer(query)


async def _choices(action: SettingsAction, lang: str) -> list[tuple[str, str]]:
    if action == SettingsAction.LANGUAGE:
        return [(code, LANGUAGE_LABELS[code]) for code in LANGUAGES]
    if action in (SettingsAction.IMAGE_MODEL, SettingsAction.VIDEO_MODEL):
        kind = AIModel.Kind.IMAGE if action == SettingsAction.IMAGE_MODEL else AIModel.Kind.VIDEO
        models = await bridge.active_models(kind)
        return [(AUTO, t("settings.auto", lang))] + [(str(m.id), m.label) for m in models]
    every = await bridge.active_models(AIModel.Kind.IMAGE) + await bridge.active_models(AIModel.Kind.VIDEO)
    if action == SettingsAction.RATIO:
        return [(pack_ratio(r), r) for r in _unique([r for m in every for r in m.aspect_ratios])]
    if action == SettingsAction.DURATION:
        durations = sorted(_unique([d for m in every for d in m.durations]))
        return [(str(d), t("btn.seconds", lang, n=d)) for d in durations]
    if action == SettingsAction.RESOLUTION:  # the video resolution (an image's size is chosen per request)
        videos = [m for m in every if m.kind == AIModel.Kind.VIDEO]
        return [(r, fmt_resolution(r)) for r in _unique([r for m in videos for r in m.resolutions])]
    return []


def _current(action: SettingsAction, user: UserContext) -> str:
    return {
        SettingsAction.LANGUAGE: user.language,
        SettingsAction.IMAGE_MODEL: str(user.default_image_model_id or AUTO),
        SettingsAction.VIDEO_MODEL: str(user.default_video_model_id or AUTO),
        SettingsAction.RATIO: pack_ratio(user.aspect_ratio),
        SettingsAction.DURATION: str(user.video_duration),
        SettingsAction.RESOLUTION: user.video_resolution,
    }.get(action, "")


def _change(action: SettingsAction, value: str) -> dict[str, object]:
    if action == SettingsAction.LANGUAGE:
        return {"language": value}
    if action == SettingsAction.IMAGE_MODEL:
        return {"default_image_model_id": int(value) or None}
    if action == SettingsAction.VIDEO_MODEL:
        return {"default_video_model_id": int(value) or None}
    if action == SettingsAction.RATIO:
        return {"aspect_ratio": unpack_ratio(value)}
    if action == SettingsAction.DURATION:
        return {"video_duration": int(value)}
    return {"video_resolution": value}


@router.callback_query(SettingsCb.filter(F.action.in_({SettingsAction.AS_FILE, SettingsAction.NOTIFICATIONS})))
async def on_toggle(query: CallbackQuery, callback_data: SettingsCb, user: UserContext, lang: str) -> None:
    name = "send_as_file" if callback_data.action == SettingsAction.AS_FILE else "notifications"
    user = await bridge.toggle_setting(user.id, name)
    await show_settings(query, user, lang)
    await answer(query, t("settings.saved", lang))


@router.callback_query(SettingsCb.filter())
async def on_choice(query: CallbackQuery, callback_data: SettingsCb, user: UserContext, lang: str, bot: Bot) -> None:
    action, value = callback_data.action, callback_data.value
    choices = await _choices(action, lang)
    if not choices:
        await outdated(query, lang)
        return
    if not value:  # open the list of choices
        per_row = 1 if action in (SettingsAction.IMAGE_MODEL, SettingsAction.VIDEO_MODEL) else 3
        title = t(f"settings.choose.{action.name.lower()}", lang)
        markup = keyboards.settings_choice_keyboard(lang, action, choices, _current(action, user), per_row=per_row)
        await show(query, title, markup)
        await answer(query)
        return
    if value not in {v for v, _ in choices}:
        await outdated(query, lang)  # a model deactivated meanwhile, a forged value
        return
    user = await bridge.update_settings(user.id, **_change(action, value))
    lang = user.language
    if action == SettingsAction.LANGUAGE and query.message is not None:
        with suppress(TelegramAPIError):
            from botapp.bot import set_chat_commands

            await set_chat_commands(bot, query.message.chat.id, lang)
    await show_settings(query, user, lang)
    await answer(query, t("settings.saved", lang))
