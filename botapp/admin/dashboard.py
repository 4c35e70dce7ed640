"""The operator's dashboard: the admin's landing page (unfold's `DASHBOARD_CALLBACK`).

`dashboard_callback` reads the date range from the GET parameters, asks the selectors
(`botapp.selectors.dashboard`) for the numbers through `botapp.admin.dashboard_panels` and hands them
to `admin/dashboard.html` with the charts' data (drawn by the Chart.js that unfold serves from its own
static files). Every label is in the admin's language (ADMIN_LANGUAGE).

Who sees what (the permission rule of the whole admin):

- Money on the dashboard (revenue, payments, ARPU/ARPPU, the token ledger, the average token price,
  the margin per model) is computed and shown only to staff with `botapp.view_payment`; without it
  nothing about revenue is even queried. The user, generation and referral panels are shown to every
  staff user; their cards link only to the lists the user may view (`botapp.view_<model>`).
- Money that moves is guarded by a permission of its own, checked by the action itself (a forged POST
  is refused like a hidden button): granting or taking tokens needs `botapp.change_userbalance`, the
  operator's refund of a generation `botapp.change_genrequest`, refunding a Stars payment
  `botapp.change_payment` (with `botapp.view_payment`: the form shows the payment), previewing, starting,
  pausing, resuming or cancelling a broadcast `botapp.send_broadcast`.
- Exporting a list to CSV needs the view permission of that list (`botapp.view_payment` for payments,
  `botapp.view_transaction` for the ledger, ...): whoever may read the list may take it away, nobody
  else. Activating or deactivating catalogue rows needs the model's change permission.
- Superusers have every permission. tests/admin/test_permissions.py checks all of it, for every action
  of every registered ModelAdmin.

Above everything, a banner names every active model within 30 days of its shutdown date (and, in red,
every active model past its shutdown date without a successor: nothing will take over), from
`botapp.services.lifecycle.shutdown_banner`, whatever the range.

The range: `?range=today|7d|30d|90d|month` (a preset), or `?from=YYYY-MM-DD&to=YYYY-MM-DD` (custom,
both days included, at most `MAX_DAYS` days, `to` no later than today). Anything else falls back to
the default range (`DEFAULT_PRESET`) with a notice on the page, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from botapp.admin.dashboard_panels import build_dashboard, links_for
from botapp.selectors.daily import Period
from botapp.services import lifecycle

__all__ = ["MONEY_PERMISSION", "build_dashboard", "dashboard_callback", "parse_range"]

MONEY_PERMISSION = "botapp.view_payment"
DEFAULT_PRESET = "30d"
MAX_DAYS = 366
PRESETS: dict[str, str] = {
    "today": _("Today"),
    "7d": _("7 days"),
    "30d": _("30 days"),
    "90d": _("90 days"),
    "month": _("This month"),
}


@dataclass(frozen=True)
class RangeChoice:
    period: Period
    preset: str  # one of PRESETS, or "custom"
    notice: str = ""  # why the requested range was not used


def preset_period(preset: str, *, today: date) -> Period:
    if preset == "today":
        return Period(start=today, end=today)
    if preset == "month":
        return Period(start=today.replace(day=1), end=today)
    days = {"7d": 7, "30d": 30, "90d": 90}[preset]
    return Period(start=today - timedelta(days=days - 1), end=today)


def parse_range(params: Mapping[str, str], *, today: date) -> RangeChoice:
    """The period asked for by `params` (a QueryDict or a dict); the default one, with a notice, when
    the request is not understood. Never raises."""
    preset = (params.get("range") or "").strip()
    raw_from = (params.get("from") or "").strip()
    raw_to = (params.get("to") or "").strip()

    def fallback(notice: str) -> RangeChoice:
        notice = notice + " " + gettext("Showing the last 30 days.")
        return RangeChoice(period=preset_period(DEFAULT_PRESET, today=today), preset=DEFAULT_PRESET, notice=notice)

    if preset in PRESETS and not (raw_from or raw_to):
        return RangeChoice(period=preset_period(preset, today=today), preset=preset)
    if preset not in ("", "custom") and not (raw_from or raw_to):
        return fallback(gettext("Unknown range “%(range)s”.") % {"range": preset[:20]})
    if not (raw_from or raw_to):
        return RangeChoice(period=preset_period(DEFAULT_PRESET, today=today), preset=DEFAULT_PRESET)
    try:
        end = date.fromisoformat(raw_to) if raw_to else today
        start = date.fromisoformat(raw_from) if raw_from else end - timedelta(days=29)
    except (ValueError, OverflowError):  # not a date, or "to" too close to year 1 for a default "from"
        return fallback(gettext("The dates must look like 2025-01-31."))
    end = min(end, today)
    if start > end:
        return fallback(gettext("The range starts after it ends (or in the future)."))
    if (end - start).days + 1 > MAX_DAYS:
        return fallback(gettext("The range is longer than %(days)s days.") % {"days": MAX_DAYS})
    return RangeChoice(period=Period(start=start, end=end), preset="custom")


def _range_links(choice: RangeChoice) -> list[dict[str, Any]]:
    base = reverse("admin:index")
    return [
        {"key": key, "label": label, "url": f"{base}?{urlencode({'range': key})}", "active": key == choice.preset}
        for key, label in PRESETS.items()
    ]


def shutdown_banner(*, today: date, user: Any = None) -> list[dict[str, Any]]:
    """The banner's lines: each active model near (or past) its shutdown date, in the admin's language;
    `danger` when it is past it without a successor. Linked to the model when `user` may view it."""
    may_view = user is None or user.has_perm("botapp.view_aimodel")
    rows = []
    for notice in lifecycle.shutdown_banner(today=today):
        values = {
            "model": notice.name,
            "id": notice.provider_model_id,
            "date": date_format(notice.shutdown_date, "DATE_FORMAT"),
            "days": notice.days,
            "successor": notice.successor,
        }
        if notice.danger:
            text = gettext(
                "%(model)s (%(id)s) is past its shutdown date (%(date)s) and has no successor: choose one, or "
                "deactivate it."
            )
        elif notice.past:
            text = gettext(
                "%(model)s (%(id)s) is past its shutdown date (%(date)s): it switches to %(successor)s at the next "
                "daily check."
            )
        elif notice.successor:
            text = ngettext(
                "%(model)s (%(id)s) is shut down by Google on %(date)s, in %(days)s day; its users then move to "
                "%(successor)s.",
                "%(model)s (%(id)s) is shut down by Google on %(date)s, in %(days)s days; its users then move to "
                "%(successor)s.",
                notice.days,
            )
        else:
            text = ngettext(
                "%(model)s (%(id)s) is shut down by Google on %(date)s, in %(days)s day, and has no successor: "
                "choose one.",
                "%(model)s (%(id)s) is shut down by Google on %(date)s, in %(days)s days, and has no successor: "
                "choose one.",
                notice.days,
            )
        url = reverse("admin:botapp_aimodel_change", args=(notice.ai_model_id,)) if may_view else ""
        rows.append({"text": text % values, "danger": notice.danger, "url": url})
    return rows


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    choice = parse_range(request.GET, today=timezone.localdate())
    money = request.user.has_perm(MONEY_PERMISSION)
    links = links_for(request.user)
    context.update(
        {
            "title": gettext("Dashboard"),
            "dashboard": build_dashboard(period=choice.period, money=money, links=links),
            "range": choice,
            "range_links": _range_links(choice),
            "links": links,
            "shutdowns": shutdown_banner(today=timezone.localdate(), user=request.user),
        }
    )
    return context
