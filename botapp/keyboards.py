"""Inline keyboards. Every button packs a CallbackData factory from `botapp.callbacks`; every label
comes from the catalogue (`btn.*` keys in bot.toml). Keyboards that depend only on hashable
arguments are built once and reused (`@cache`): never mutate a returned markup.

Used by other parts of the project:
- `result_keyboard(request, lang)`: the buttons under a generation result (the workers attach it);
- `topup_keyboard(lang, suggested=...)`: "not enough tokens" (one tap to the package that covers it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from botapp.callbacks import (
    BalancePageCb,
    GenAction,
    GenCb,
    HistoryAction,
    HistoryCb,
    MenuAction,
    MenuCb,
    OpsAction,
    OpsCb,
    PayAction,
    PayCb,
    PayMethod,
    QueueAction,
    QueueCb,
    ResultAction,
    ResultCb,
    SettingsAction,
    SettingsCb,
    SupportAction,
    SupportCb,
    pack_ratio,
)
from botapp.capabilities import default_role, image_role
from botapp.i18n import fmt_tokens, t

if TYPE_CHECKING:
    from botapp.bridge import ModelInfo, ResultOptions
    from botapp.models import GenRequest, TopUpPackage
    from botapp.services.styles import StyleInfo

CHECK = "✅ "


def _button(text: str, data: Any) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def _menu_button(lang: str) -> InlineKeyboardButton:
    return _button(t("btn.menu", lang), MenuCb(action=MenuAction.MAIN))


def _markup(rows: Iterable[Sequence[InlineKeyboardButton]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[list(row) for row in rows if row])


# --- main menu and simple screens -------------------------------------------------------------------
@cache
def main_menu(lang: str) -> InlineKeyboardMarkup:
    def b(key: str, action: MenuAction) -> InlineKeyboardButton:
        return _button(t(key, lang), MenuCb(action=action))

    return _markup(
        [
            [b("btn.create_image", MenuAction.IMAGE), b("btn.create_video", MenuAction.VIDEO)],
            [b("btn.balance", MenuAction.BALANCE), b("btn.profile", MenuAction.PROFILE)],
            [b("btn.settings", MenuAction.SETTINGS), b("btn.promo", MenuAction.PROMO)],
            [b("btn.invite", MenuAction.INVITE), b("btn.help", MenuAction.HELP)],
        ]
    )


@cache
def menu_only(lang: str) -> InlineKeyboardMarkup:
    return _markup([[_menu_button(lang)]])


@cache
def back_to(lang: str, action: MenuAction = MenuAction.MAIN) -> InlineKeyboardMarkup:
    return _markup([[_button(t("btn.back", lang), MenuCb(action=action))]])


@cache
def balance_keyboard(lang: str, *, page: int = 1, pages: int = 1) -> InlineKeyboardMarkup:
    """Top up, history, back; with more than one page of payments, ◀ ▶ to the neighbouring pages."""
    paging = []
    if page > 1:
        paging.append(_button(t("paylist.previous", lang), BalancePageCb(page=page - 1)))
    if page < pages:
        paging.append(_button(t("paylist.next", lang), BalancePageCb(page=page + 1)))
    return _markup(
        [
            paging,
            [_button(t("btn.topup", lang), MenuCb(action=MenuAction.TOPUP))],
            [_button(t("btn.history", lang), MenuCb(action=MenuAction.HISTORY))],
            [_button(t("btn.back", lang), MenuCb(action=MenuAction.MAIN))],
        ]
    )


@cache
def support_keyboard(lang: str) -> InlineKeyboardMarkup:
    """Under /paysupport's "describe the problem": cancel the flow."""
    return _markup([[_button(t("paysupport.cancel", lang), SupportCb(action=SupportAction.CANCEL))]])


@cache
def profile_keyboard(lang: str) -> InlineKeyboardMarkup:
    return _markup(
        [
            [
                _button(t("btn.history", lang), MenuCb(action=MenuAction.HISTORY)),
                _button(t("btn.balance", lang), MenuCb(action=MenuAction.BALANCE)),
            ],
            [_button(t("btn.invite", lang), MenuCb(action=MenuAction.INVITE))],
            [_button(t("btn.back", lang), MenuCb(action=MenuAction.MAIN))],
        ]
    )


def history_keyboard(lang: str, resendable: Sequence[int]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for request_id in resendable:
        builder.button(
            text=t("btn.resend", lang, id=request_id),
            callback_data=HistoryCb(action=HistoryAction.RESEND, request_id=request_id),
        )
    builder.adjust(2)
    builder.row(_button(t("btn.back", lang), MenuCb(action=MenuAction.PROFILE)), _menu_button(lang))
    return builder.as_markup()


def result_ready_keyboard(lang: str, request_id: int) -> InlineKeyboardMarkup:
    """Under the "your result #N is ready" notice (an upload whose answer was lost): get it on request."""
    get = _button(
        t("generation.get_result", lang, id=request_id),
        HistoryCb(action=HistoryAction.RESEND, request_id=request_id),
    )
    return _markup([[get], [_menu_button(lang)]])


def invite_keyboard(lang: str, share_url: str) -> InlineKeyboardMarkup:
    return _markup(
        [
            [InlineKeyboardButton(text=t("btn.share", lang), url=share_url)],
            [_button(t("btn.back", lang), MenuCb(action=MenuAction.MAIN))],
        ]
    )


@cache
def promo_keyboard(lang: str) -> InlineKeyboardMarkup:
    return _markup([[_button(t("btn.cancel", lang), MenuCb(action=MenuAction.MAIN))]])


@cache
def promo_done_keyboard(lang: str, *, topup: bool) -> InlineKeyboardMarkup:
    rows = []
    if topup:
        rows.append([_button(t("btn.topup", lang), MenuCb(action=MenuAction.TOPUP))])
    rows.append([_button(t("btn.create_image", lang), MenuCb(action=MenuAction.IMAGE)), _menu_button(lang)])
    return _markup(rows)


# --- generation flow --------------------------------------------------------------------------------
def _flow_footer(lang: str, *, back: bool = True) -> list[InlineKeyboardButton]:
    row = [_button(t("btn.cancel", lang), GenCb(action=GenAction.CANCEL))]
    if back:
        row.insert(0, _button(t("btn.back", lang), GenCb(action=GenAction.BACK)))
    return row


def models_keyboard(lang: str, models: Sequence[ModelInfo], default_id: int | None) -> InlineKeyboardMarkup:
    rows = []
    for model in models:
        star = " ⭐" if model.id == default_id else ""
        key = "btn.model_from" if model.price_varies else "btn.model"
        text = t(key, lang, label=model.label, price=fmt_tokens(model.price_from)) + star
        rows.append([_button(text, GenCb(action=GenAction.MODEL, value=str(model.id)))])
    rows.append(_flow_footer(lang))
    return _markup(rows)


def options_keyboard(
    lang: str, model: ModelInfo, params: dict[str, Any], photos: int, *, data: dict[str, Any] | None = None
) -> InlineKeyboardMarkup:
    """The options screen, built only from the model's capabilities (a new model needs no code).
    `data` (the flow's FSM data) adds what depends on it: variants, the photos by role, what to avoid."""
    data = data or {}
    caps = model.caps
    builder = InlineKeyboardBuilder()
    widths: list[int] = []
    extending = bool(params.get("extend_from") or params.get("edit_of"))  # a clip's own options

    def choice(values, current, label, action, pack=str, width=5) -> None:
        for value in values:
            mark = CHECK if current == value else ""
            builder.button(text=mark + label(value), callback_data=GenCb(action=action, value=pack(value)))
        widths.extend(_rows_of(len(values), width))

    if len(caps.aspect_ratios) > 1 and not extending:
        choice(caps.aspect_ratios, params.get("aspect_ratio"), str, GenAction.RATIO, pack_ratio)
    if len(caps.durations) > 1 and not extending:
        label = lambda n: t("btn.seconds", lang, n=n)  # noqa: E731
        choice(caps.durations, params.get("duration_seconds"), label, GenAction.DURATION)
    if len(caps.resolutions) > 1 and not extending:
        choice(caps.resolutions, params.get("resolution"), fmt_resolution, GenAction.RESOLUTION)
    if caps.thinking_levels and not extending:
        label = lambda level: t(f"btn.thinking.{level}", lang)  # noqa: E731
        choice(caps.thinking_levels, params.get("thinking_level"), label, GenAction.THINKING, width=3)
    if caps.max_variants > 1 and not data.get("draft"):
        label = lambda n: t("btn.variants", lang, n=n)  # noqa: E731
        choice(range(1, caps.max_variants + 1), int(data.get("variants") or 1), label, GenAction.VARIANTS)
    if caps.audio:
        key = "btn.audio_on" if params.get("generate_audio", True) else "btn.audio_off"
        builder.button(text=t(key, lang), callback_data=GenCb(action=GenAction.AUDIO))
        widths.append(1)
    if caps.negative_prompt:
        key = "btn.negative_set" if data.get("negative_prompt") else "btn.negative"
        builder.button(text=t(key, lang), callback_data=GenCb(action=GenAction.NEGATIVE))
        widths.append(1)
    roles = _photo_roles(model, data, photos) if not extending else []
    for role, count, limit in roles:
        builder.button(
            text=t(f"btn.photos.{role}", lang, n=count, limit=limit),
            callback_data=GenCb(action=GenAction.PHOTOS, value=role),
        )
    if roles:
        widths.extend(_rows_of(len(roles), 2 if len(roles) > 1 else 1))
    if data.get("draft_model_id") and not extending:  # ⚡ Draft (handlers/generation/studio.py)
        key = "btn.draft_on" if data.get("draft") else "btn.draft_off"
        builder.button(text=t(key, lang), callback_data=GenCb(action=GenAction.DRAFT))
        widths.append(1)
    if data.get("styles_offered"):  # the prompt styles of this kind (handlers/generation/prompt_help.py)
        name = data.get("style_label") or t("style.none", lang)
        builder.button(text=t("style.button", lang, name=name), callback_data=GenCb(action=GenAction.STYLE))
        widths.append(1)
    builder.button(text=t("btn.next", lang), callback_data=GenCb(action=GenAction.NEXT))
    widths.append(1)
    builder.adjust(*widths)
    builder.row(*_flow_footer(lang))
    return builder.as_markup()


def _photo_roles(model: ModelInfo, data: dict[str, Any], photos: int) -> list[tuple[str, int, int]]:
    """(role, attached, limit) for each kind of photo the model takes."""
    images = data.get("images")

    def count(role: str) -> int:
        if images is None:
            return photos if role == default_role(model.kind) else 0
        return sum(1 for i in images if image_role(model.kind, i) == role)

    return [(role, count(role), limit) for role, limit in model.caps.photo_limits(model.kind).items()]


def fmt_resolution(value: str) -> str:
    """ "4k" reads as "4K" (Veo's value is lower case)."""
    return value.upper() if value.lower().endswith("k") else value


def _rows_of(count: int, width: int) -> list[int]:
    full, rest = divmod(count, width)
    return [width] * full + ([rest] if rest else [])


@cache
def flow_back_keyboard(lang: str) -> InlineKeyboardMarkup:
    """Back to the options / cancel (a step waiting for text, e.g. what to avoid)."""
    return _markup([_flow_footer(lang)])


@cache
def photos_keyboard(lang: str, photos: int) -> InlineKeyboardMarkup:
    rows = []
    if photos:
        rows.append([_button(t("btn.photos_done", lang), GenCb(action=GenAction.NEXT))])
        rows.append([_button(t("btn.clear_photos", lang), GenCb(action=GenAction.CLEAR_PHOTOS))])
    rows.append(_flow_footer(lang))
    return _markup(rows)


@cache
def prompt_keyboard(lang: str, photos: int = 0, *, improve: bool = False) -> InlineKeyboardMarkup:
    rows = []
    if improve:  # ✨ rewrite the current description
        rows.append([_button(t("improve.button", lang), GenCb(action=GenAction.IMPROVE))])
    if photos:
        rows.append([_button(t("btn.clear_photos", lang), GenCb(action=GenAction.CLEAR_PHOTOS))])
    rows.append(_flow_footer(lang))
    return _markup(rows)


def confirm_keyboard(lang: str, *, nonce: str, price: Decimal, improve: bool = False) -> InlineKeyboardMarkup:
    return _markup(
        [
            [_button(t("btn.generate", lang, price=fmt_tokens(price)), GenCb(action=GenAction.GENERATE, value=nonce))],
            [_button(t("improve.button", lang), GenCb(action=GenAction.IMPROVE))] if improve else [],
            [
                _button(t("btn.edit_prompt", lang), GenCb(action=GenAction.EDIT_PROMPT)),
                _button(t("btn.options", lang), GenCb(action=GenAction.OPTIONS)),
            ],
            [_button(t("btn.cancel", lang), GenCb(action=GenAction.CANCEL))],
        ]
    )


def styles_keyboard(lang: str, styles: Sequence[StyleInfo], current: int | None) -> InlineKeyboardMarkup:
    """The prompt styles of the model's kind (🖼 beside one with an example image), no style, back."""
    rows = []
    for style in styles:
        mark = CHECK if style.id == current else ""
        row = [_button(mark + style.label(lang), GenCb(action=GenAction.STYLE, value=str(style.id)))]
        if style.example:
            row.append(_button(t("style.preview", lang), GenCb(action=GenAction.STYLE_EXAMPLE, value=str(style.id))))
        rows.append(row)
    none = (CHECK if not current else "") + t("style.no_style", lang)
    rows.append([_button(none, GenCb(action=GenAction.STYLE, value="0"))])
    rows.append([_button(t("btn.back", lang), GenCb(action=GenAction.STYLE, value="-"))])
    return _markup(rows)


@cache
def improve_keyboard(lang: str, *, suggestion: bool = True) -> InlineKeyboardMarkup:
    """Under a rewrite: accept / edit / keep mine; after a failed one: try again / keep mine."""
    keep = _button(t("improve.keep", lang), GenCb(action=GenAction.IMPROVE_KEEP))
    if suggestion:
        accept = _button(t("improve.accept", lang), GenCb(action=GenAction.IMPROVE_ACCEPT))
        rows = [[accept, _button(t("improve.edit", lang), GenCb(action=GenAction.IMPROVE_EDIT))], [keep]]
    else:
        rows = [[_button(t("improve.button", lang), GenCb(action=GenAction.IMPROVE))], [keep]]
    rows.append([_button(t("btn.cancel", lang), GenCb(action=GenAction.CANCEL))])
    return _markup(rows)


def topup_keyboard(lang: str, *, suggested: TopUpPackage | None = None, resume: bool = False) -> InlineKeyboardMarkup:
    """Not enough tokens: one tap to the package that covers the shortfall, or to the package list.

    `suggested` comes from `bridge.suggest_package(shortfall)` (sync callers: the same query on
    `TopUpPackage`). With `resume` the keyboard belongs to a generation flow's confirmation card and
    also offers going back / cancelling the flow.
    """
    rows: list[list[InlineKeyboardButton]] = []
    if suggested is not None:
        rows.append(
            [
                _button(
                    t("btn.buy_package", lang, tokens=fmt_tokens(suggested.tokens), stars=suggested.price_stars),
                    PayCb(action=PayAction.PACKAGE, package_id=suggested.pk),
                )
            ]
        )
    rows.append([_button(t("btn.topup_all", lang), MenuCb(action=MenuAction.TOPUP))])
    if resume:
        rows.append(
            [
                _button(t("btn.options", lang), GenCb(action=GenAction.OPTIONS)),
                _button(t("btn.cancel", lang), GenCb(action=GenAction.CANCEL)),
            ]
        )
    else:
        rows.append([_menu_button(lang)])
    return _markup(rows)


def queue_keyboard(lang: str, nonce: str) -> InlineKeyboardMarkup:
    """Under a generation's status message while it can be cancelled: its place in the queue again, cancel."""
    return _markup(
        [
            [
                _button(t("btn.refresh_queue", lang), QueueCb(action=QueueAction.REFRESH, nonce=nonce)),
                _button(t("btn.cancel_generation", lang), QueueCb(action=QueueAction.CANCEL, nonce=nonce)),
            ]
        ]
    )


def after_generate_keyboard(lang: str) -> InlineKeyboardMarkup:
    return menu_only(lang)


def result_keyboard(
    request: GenRequest,
    lang: str,
    *,
    index: int = 0,
    can_edit: bool | None = None,
    can_animate: bool | None = None,
    can_extend: bool | None = None,
    options: ResultOptions | None = None,
) -> InlineKeyboardMarkup:
    """The buttons under a generation result: 🔁 regenerate, ✏️ edit (image results, when an active
    image model accepts input images), 🎬 animate (image results, when an active video model accepts
    a starting image), ➕ extend (a video whose model continues its clips), ✏️ edit this video (a clip
    whose model edits by conversation), 🎬 render in full (under a draft), 🏠 menu.

    Sync: without `can_edit`/`can_animate`/`can_extend` it reads the cached model catalogue (one query
    at most every few seconds). From async code pass the flags from `bridge.get_result_options(request)`.
    """
    if options is None:
        from botapp.selectors.catalogue import ResultOptions, result_options

        flags_given = None not in (can_edit, can_animate) and (request.kind != "video" or can_extend is not None)
        options = ResultOptions() if flags_given else result_options(request)
    if can_extend is None:
        can_extend = request.kind == "video" and options.can_extend
    if can_edit is None or can_animate is None:
        from botapp.selectors.catalogue import result_actions

        edit, animate = result_actions(request)
        can_edit = edit if can_edit is None else can_edit
        can_animate = animate if can_animate is None else can_animate
    is_image = request.kind == "image"
    rows = [[_button(t("btn.regenerate", lang), ResultCb(action=ResultAction.REGENERATE, request_id=request.pk))]]
    second = []
    if is_image and can_edit:
        second.append(
            _button(t("btn.edit_image", lang), ResultCb(action=ResultAction.EDIT, request_id=request.pk, index=index))
        )
    if is_image and can_animate:
        second.append(
            _button(t("btn.animate", lang), ResultCb(action=ResultAction.ANIMATE, request_id=request.pk, index=index))
        )
    rows.append(second)
    if request.kind == "video" and can_extend:
        rows.append([_button(t("btn.extend", lang), ResultCb(action=ResultAction.EXTEND, request_id=request.pk))])
    if request.kind == "video" and options.can_edit_video:
        edit = ResultCb(action=ResultAction.EDIT_VIDEO, request_id=request.pk)
        rows.append([_button(t("btn.edit_video", lang), edit)])
    if options.can_render_full:
        full = ResultCb(action=ResultAction.RENDER_FULL, request_id=request.pk)
        rows.insert(0, [_button(t("btn.render_full", lang), full)])
    rows.append([_menu_button(lang)])
    return _markup(rows)


def variants_keyboard(
    request: GenRequest,
    lang: str,
    *,
    positions: Sequence[int],
    resend: bool = False,
    options: ResultOptions | None = None,
) -> InlineKeyboardMarkup:
    """The one message under an album of variants: a row per action with a button per variant
    (✏️ Edit 1, Edit 2…; 🎬 Animate 1…; 🔍 Upscale 1…), numbered as in the album; `positions` are the
    variants' indexes in `GenRequest.results` (what the buttons carry). `resend`: a button that sends
    the album again (some items' delivery is unknown). Then 🔁 regenerate and 🏠 menu.

    Sync: without `options` it reads the cached catalogue; from async code pass
    `bridge.get_result_options(request)`."""
    if options is None:
        from botapp.selectors.catalogue import result_options

        options = result_options(request)
    actions = [
        (options.can_edit, ResultAction.EDIT, "btn.edit_image", "btn.edit_n"),
        (options.can_animate, ResultAction.ANIMATE, "btn.animate", "btn.animate_n"),
        (options.can_upscale, ResultAction.UPSCALE, "btn.upscale", "btn.upscale_n"),
    ]
    rows: list[list[InlineKeyboardButton]] = []
    for enabled, action, single, numbered in actions:
        if not enabled or not positions:
            continue
        rows.append(
            [
                _button(
                    t(single, lang) if len(positions) == 1 else t(numbered, lang, n=number),
                    ResultCb(action=action, request_id=request.pk, index=index),
                )
                for number, index in enumerate(positions, start=1)
            ]
        )
    if resend:
        get = HistoryCb(action=HistoryAction.RESEND, request_id=request.pk)
        rows.append([_button(t("generation.get_result", lang, id=request.pk), get)])
    rows.append([_button(t("btn.regenerate", lang), ResultCb(action=ResultAction.REGENERATE, request_id=request.pk))])
    rows.append([_menu_button(lang)])
    return _markup(rows)


# --- settings ----------------------------------------------------------------------------------------
@cache
def settings_keyboard(lang: str, *, as_file: bool, notifications: bool) -> InlineKeyboardMarkup:
    def b(text: str, action: SettingsAction) -> InlineKeyboardButton:
        return _button(text, SettingsCb(action=action))

    on, off = t("settings.on", lang), t("settings.off", lang)
    return _markup(
        [
            [b(t("btn.language", lang), SettingsAction.LANGUAGE)],
            [b(t("btn.image_model", lang), SettingsAction.IMAGE_MODEL), b(t("btn.ratio", lang), SettingsAction.RATIO)],
            [b(t("btn.video_model", lang), SettingsAction.VIDEO_MODEL)],
            [
                b(t("btn.duration", lang), SettingsAction.DURATION),
                b(t("btn.resolution", lang), SettingsAction.RESOLUTION),
            ],
            [b(t("btn.as_file", lang, state=on if as_file else off), SettingsAction.AS_FILE)],
            [b(t("btn.notifications", lang, state=on if notifications else off), SettingsAction.NOTIFICATIONS)],
            [_button(t("btn.back", lang), MenuCb(action=MenuAction.MAIN))],
        ]
    )


def settings_choice_keyboard(
    lang: str, action: SettingsAction, choices: Sequence[tuple[str, str]], current: str, *, per_row: int = 2
) -> InlineKeyboardMarkup:
    """A list of (value, label) for one setting, the current one checked, and "back"."""
    builder = InlineKeyboardBuilder()
    for value, label in choices:
        mark = CHECK if value == current else ""
        builder.button(text=mark + label, callback_data=SettingsCb(action=action, value=value))
    builder.adjust(per_row)
    builder.row(_button(t("btn.back", lang), SettingsCb(action=SettingsAction.OPEN)))
    return builder.as_markup()


# --- payments ----------------------------------------------------------------------------------------
def packages_keyboard(lang: str, packages: Sequence[TopUpPackage]) -> InlineKeyboardMarkup:
    rows = [
        [
            _button(
                t("btn.package", lang, tokens=fmt_tokens(p.tokens), stars=p.price_stars),
                PayCb(action=PayAction.PACKAGE, package_id=p.pk),
            )
        ]
        for p in packages
    ]
    rows.append([_button(t("btn.back", lang), MenuCb(action=MenuAction.BALANCE)), _menu_button(lang)])
    return _markup(rows)


@cache
def methods_keyboard(lang: str, package_id: int, *, card_enabled: bool) -> InlineKeyboardMarkup:
    rows = [
        [
            _button(
                t("btn.pay_stars", lang),
                PayCb(action=PayAction.METHOD, package_id=package_id, method=PayMethod.STARS),
            )
        ]
    ]
    if card_enabled:
        rows.append(
            [
                _button(
                    t("btn.pay_card", lang),
                    PayCb(action=PayAction.METHOD, package_id=package_id, method=PayMethod.CARD),
                )
            ]
        )
    rows.append([_button(t("btn.back", lang), MenuCb(action=MenuAction.TOPUP))])
    return _markup(rows)


@cache
def paid_keyboard(lang: str, *, resume: bool) -> InlineKeyboardMarkup:
    rows = []
    if resume:
        rows.append([_button(t("btn.resume", lang), GenCb(action=GenAction.RESUME))])
    rows.append(
        [
            _button(t("btn.create_image", lang), MenuCb(action=MenuAction.IMAGE)),
            _button(t("btn.create_video", lang), MenuCb(action=MenuAction.VIDEO)),
        ]
    )
    rows.append([_menu_button(lang)])
    return _markup(rows)


# --- the operator's /admin card ---------------------------------------------------------------------
@cache
def ops_keyboard(lang: str, dashboard_url: str = "") -> InlineKeyboardMarkup:
    """Refresh in place, and a URL button to the admin (`dashboard_url`: one Telegram takes as a button
    URL, or empty when the link goes in the text instead)."""
    rows = [[_button(t("admin.refresh", lang), OpsCb(action=OpsAction.REFRESH))]]
    if dashboard_url:
        rows.append([InlineKeyboardButton(text=t("admin.open_dashboard", lang), url=dashboard_url)])
    return _markup(rows)
