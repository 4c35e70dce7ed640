"""CallbackData factories: every inline button of the bot packs one of these (no hand-split strings).

Prefixes and enum values are short on purpose: Telegram allows 64 bytes of callback data.
A value that cannot be parsed (an old client, a forged press) matches no filter and ends in the
fallback handler, which answers "this button is outdated".
"""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData


class MenuAction(StrEnum):
    MAIN = "main"
    IMAGE = "img"
    VIDEO = "vid"
    BALANCE = "bal"
    TOPUP = "top"
    PROFILE = "prof"
    HISTORY = "hist"
    SETTINGS = "set"
    PROMO = "promo"
    INVITE = "inv"
    HELP = "help"


class MenuCb(CallbackData, prefix="m"):
    """Navigation between the screens of the main menu (edits the message in place)."""

    action: MenuAction


class GenAction(StrEnum):
    MODEL = "m"  # value: model id
    RATIO = "r"  # value: aspect ratio with "x" for ":" (see pack_ratio)
    DURATION = "d"  # value: seconds
    RESOLUTION = "res"  # value: "720p"
    VARIANTS = "v"  # value: 1..4
    AUDIO = "au"  # toggles the sound of a video
    NEGATIVE = "ng"  # asks for what to avoid ("" ) or clears it ("x")
    PHOTOS = "ph"  # open the photo step; value: the role of the photos ("", "first", "last", "reference")
    CLEAR_PHOTOS = "cp"
    NEXT = "n"  # options -> prompt
    BACK = "b"
    CANCEL = "c"
    GENERATE = "go"  # value: the confirmation nonce
    EDIT_PROMPT = "ep"
    OPTIONS = "o"  # confirmation -> options
    RESUME = "rs"  # show the confirmation card again (after a top-up)
    STYLE = "st"  # options -> the styles; value: "" the list, a style id, "0" no style, "-" back to the options
    STYLE_EXAMPLE = "sx"  # value: a style id: send its example image
    IMPROVE = "im"  # ✨ rewrite the description with a text model (prompt and confirmation cards)
    IMPROVE_ACCEPT = "ia"  # take the rewrite
    IMPROVE_EDIT = "ie"  # send your own version of it
    IMPROVE_KEEP = "ik"  # keep your own description
    THINKING = "th"  # value: a thinking level of the model (Nano Banana 2.1)
    DRAFT = "dr"  # toggles "⚡ Draft": a cheap, fast version first


class GenCb(CallbackData, prefix="g"):
    """Buttons of the generation flow; valid only on the flow's current card."""

    action: GenAction
    value: str = ""


def pack_ratio(ratio: str) -> str:
    return ratio.replace(":", "x")


def unpack_ratio(value: str) -> str:
    return value.replace("x", ":")


class ResultAction(StrEnum):
    REGENERATE = "re"
    EDIT = "ed"
    ANIMATE = "an"
    UPSCALE = "up"  # an image again at the top resolution of a model that has a higher one
    EXTEND = "ex"  # a video continued (Veo's extension) with a new prompt
    EDIT_VIDEO = "ev"  # a delivered clip changed by conversation (Omni: the next turn of its interaction)
    RENDER_FULL = "rf"  # a draft made again at full quality, with the same prompt, inputs and seed


class ResultCb(CallbackData, prefix="r"):
    """Buttons under a generation result (built by the workers through `keyboards.result_keyboard`)."""

    action: ResultAction
    request_id: int
    index: int = 0  # which result of the request (for requests that produced several files)


class HistoryAction(StrEnum):
    RESEND = "rs"


class HistoryCb(CallbackData, prefix="h"):
    action: HistoryAction
    request_id: int


class SettingsAction(StrEnum):
    OPEN = "o"
    LANGUAGE = "l"  # value "" opens the choice, "ru"/"en" sets it
    IMAGE_MODEL = "im"  # value "" opens the choice, a model id sets it
    VIDEO_MODEL = "vm"
    RATIO = "r"  # value "" opens the choice, "16x9" sets it
    DURATION = "d"
    RESOLUTION = "res"
    AS_FILE = "f"  # toggles
    NOTIFICATIONS = "n"  # toggles


class SettingsCb(CallbackData, prefix="s"):
    action: SettingsAction
    value: str = ""


class PayAction(StrEnum):
    PACKAGE = "pkg"  # the package was chosen: show the quote and the methods
    METHOD = "pay"  # the method was chosen: send the invoice


class PayMethod(StrEnum):
    STARS = "xtr"
    CARD = "card"


class PayCb(CallbackData, prefix="p"):
    action: PayAction
    package_id: int
    method: PayMethod | None = None


class ScreenCb(CallbackData, prefix="sc"):
    """A button that opens a screen of the main menu as a NEW message (a broadcast's "bot screen"
    button: the message it sits under stays as it is)."""

    screen: MenuAction


class OpsAction(StrEnum):
    REFRESH = "rf"


class OpsCb(CallbackData, prefix="op"):
    """The operator's /admin card (acts only for ADMIN_IDS; anyone else gets "outdated")."""

    action: OpsAction


class BalancePageCb(CallbackData, prefix="bp"):
    """The balance screen's payment list: show page `page` (1-based; edits the screen in place)."""

    page: int


class SupportAction(StrEnum):
    CANCEL = "c"


class SupportCb(CallbackData, prefix="ps"):
    """The /paysupport flow ("describe the problem"): cancel it."""

    action: SupportAction


class SubAction(StrEnum):
    PLANS = "ls"  # the monthly plans (from the top-up screen)
    PLAN = "pl"  # one plan: its perks and the "Subscribe" link
    CANCEL = "c"  # the profile: cancel the renewals (runs to the end of the paid period)
    RESUME = "r"  # the profile: re-enable a cancelled subscription


class SubCb(CallbackData, prefix="sb"):
    """Star subscriptions (botapp/handlers/subscriptions.py): `id` is the plan's or the subscription's."""

    action: SubAction
    id: int = 0


class QueueAction(StrEnum):
    REFRESH = "rf"
    CANCEL = "c"


class QueueCb(CallbackData, prefix="q"):
    """The status message of a generation request (botapp/handlers/generation/control.py): its place in
    the queue again, or cancel it. `nonce` is the confirmation's: the request is found by its
    idempotency key `confirm:<the presser's user id>:<nonce>`, so a press reaches only the presser's own."""

    action: QueueAction
    nonce: str
