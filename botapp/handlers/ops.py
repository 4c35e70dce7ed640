"""/admin: today's key numbers for the operators (ADMIN_IDS), with a refresh button and a link to the
admin's dashboard.

For anyone else nothing here matches: /admin ends in the fallback's "unknown command" like any other
unknown command (the bot does not reveal that it exists), and a forged refresh press gets the
fallback's "this button is outdated". The command is not in the public command menu.

The link is `settings.ADMIN_URL`. Telegram refuses a URL button whose host is not a public one
(localhost, 127.0.0.1, a bare container name), so such a URL is shown as text instead.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, TelegramObject
from django.conf import settings
from django.utils import timezone

from botapp import bridge, keyboards
from botapp.bridge import OpsToday
from botapp.callbacks import OpsAction, OpsCb
from botapp.handlers.common import answer, esc, show
from botapp.i18n import t
from botapp.keyboards import fmt_tokens

router = Router(name=__name__)


def is_operator(event: TelegramObject) -> bool:
    """A filter: the update comes from one of ADMIN_IDS (read on every update: settings may change)."""
    user = getattr(event, "from_user", None)
    if user is None:
        return False
    return user.id in {int(admin_id) for admin_id in getattr(settings, "ADMIN_IDS", ()) or ()}


def dashboard_url() -> str:
    return str(getattr(settings, "ADMIN_URL", "") or "").strip()


def takes_as_button(url: str) -> bool:
    """Whether Telegram accepts `url` for a URL button: http(s) to a public-looking host (not
    localhost, a loopback or unspecified address, or a single-label name such as a container's)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." in host
    return not (address.is_loopback or address.is_unspecified)


def ops_text(numbers: OpsToday, lang: str, *, link: str = "") -> str:
    as_of = timezone.localtime(numbers.as_of)
    lines = [
        t(
            "admin.title",
            lang,
            date=numbers.day.strftime("%d.%m.%Y"),
            tz=esc(timezone.get_current_timezone_name()),
            time=as_of.strftime("%H:%M:%S"),
        ),
        "",
        t("admin.users", lang, new=numbers.new_users, active=numbers.active_users),
        t(
            "admin.payments",
            lang,
            count=numbers.payments,
            stars=fmt_tokens(numbers.stars),
            stars_count=numbers.stars_payments,
            card_rub=fmt_tokens(numbers.card_rub),
            card_count=numbers.card_payments,
            total_rub=fmt_tokens(numbers.revenue_rub),
        ),
        t(
            "admin.tokens",
            lang,
            sold=fmt_tokens(numbers.tokens_sold),
            spent=fmt_tokens(numbers.tokens_spent),
            refunded=fmt_tokens(numbers.tokens_refunded),
        ),
        t(
            "admin.generations",
            lang,
            succeeded=numbers.succeeded,
            failed=numbers.failed,
            total=numbers.generations,
        ),
        t("admin.queue", lang, in_flight=numbers.in_flight, queue=numbers.queue_depth),
    ]
    if link:
        lines += ["", t("admin.dashboard_link", lang, url=esc(link))]
    return "\n".join(lines)


async def ops_card(lang: str) -> tuple[str, InlineKeyboardMarkup]:
    """The card's text and keyboard with fresh numbers."""
    numbers = await bridge.ops_today()
    url = dashboard_url()
    as_button = takes_as_button(url)
    text = ops_text(numbers, lang, link="" if as_button else url)
    return text, keyboards.ops_keyboard(lang, url if as_button else "")


@router.message(Command("admin"), is_operator)
async def cmd_admin(message: Message, lang: str) -> None:
    """Works in the middle of a flow too: the flow's state is kept."""
    text, markup = await ops_card(lang)
    await message.answer(text, reply_markup=markup)


@router.callback_query(OpsCb.filter(F.action == OpsAction.REFRESH), is_operator)
async def on_refresh(query: CallbackQuery, lang: str) -> None:
    text, markup = await ops_card(lang)
    await show(query, text, markup)
    await answer(query, t("admin.refreshed", lang))
