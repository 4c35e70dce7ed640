"""The dashboard's panels: KPI cards, charts and tables built from the selectors, in the admin's language.

`build_dashboard` gives everything `admin/dashboard.html` shows for a period; the money panels only
when asked (see the permission rule in `botapp.admin.dashboard`).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.http import urlencode
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from botapp.models import GenRequest, Payment
from botapp.selectors import daily
from botapp.selectors import dashboard as selectors
from botapp.selectors.daily import Period

# --- charts (unfold's chart components: data and options as JSON for Chart.js) --------------------
COLORS = {
    "primary": "var(--color-primary-600)",
    "primary_light": "var(--color-primary-300)",
    "green": "var(--color-green-500)",
    "red": "var(--color-red-500)",
    "orange": "var(--color-orange-400)",
    "blue": "var(--color-blue-500)",
    "grey": "var(--color-base-300)",
}


def _chart_options(*, stacked: bool, suffix: str = "") -> str:
    axis_ticks = {"color": "#9ca3af"}
    return json.dumps(
        {
            "animation": False,
            "responsive": True,
            "maintainAspectRatio": False,
            "interaction": {"mode": "index", "intersect": False},
            "plugins": {
                "legend": {
                    "display": True,
                    "align": "end",
                    "position": "top",
                    "labels": {"boxHeight": 6, "boxWidth": 6, "usePointStyle": True, "color": "#9ca3af"},
                },
                "tooltip": {"enabled": True},
            },
            "datasets": {
                "bar": {"borderRadius": 3, "maxBarThickness": 18},
                "line": {"borderWidth": 2, "pointRadius": 0, "tension": 0.3},
            },
            "scales": {
                "x": {"stacked": stacked, "grid": {"display": False}, "ticks": {**axis_ticks, "maxTicksLimit": 12}},
                "y": {
                    "stacked": stacked,
                    "beginAtZero": True,
                    "grid": {"color": "rgba(156, 163, 175, 0.2)"},
                    "ticks": {**axis_ticks, "precision": 0},
                    "title": {"display": bool(suffix), "text": suffix, "color": "#9ca3af"},
                },
            },
        }
    )


def _chart(labels: list[str], datasets: list[tuple[str, list[float], str]], *, kind: str = "bar") -> str:
    return json.dumps(
        {
            "labels": labels,
            "datasets": [
                {
                    "label": label,
                    "data": values,
                    "backgroundColor": COLORS[color],
                    "borderColor": COLORS[color],
                    **({"fill": False} if kind == "line" else {}),
                }
                for label, values, color in datasets
            ],
        }
    )


def _labels(period: Period) -> list[str]:
    return [short_day(day) for day in period.days]


def short_day(day: date) -> str:
    """ "01 Mar" ("01 Мар"): the day and the month's abbreviation in the admin's language."""
    return dateformat.format(day, "d M")


def _num(value: Decimal | int | float) -> float:
    return round(float(value), 2)


# --- formats -----------------------------------------------------------------------------------------
def fmt_percent(value: float | None, digits: int = 1) -> str:
    """0.1234 -> "12.3%"; None -> "—"."""
    return "—" if value is None else f"{float(value) * 100:.{digits}f}%"


def fmt_seconds(value: float | None) -> str:
    """A duration: "4.2 s", "2 min 05 s"; None -> "—"."""
    if value is None:
        return "—"
    if value < 60:
        return _("%(seconds).1f s") % {"seconds": value}
    minutes, rest = divmod(round(value), 60)
    return _("%(minutes)s min %(seconds)02d s") % {"minutes": minutes, "seconds": rest}


def fmt_amount(value: Decimal | int | float | None, digits: int = 0) -> str:
    """1234567.8 -> "1 234 568" (narrow no-break spaces between thousands); None -> "0"."""
    return f"{float(value or 0):,.{digits}f}".replace(",", "\u202f")


def _kpi(key: str, title: str, value: str, note: str = "", icon: str = "", href: str = "") -> dict[str, str]:
    return {"key": key, "title": title, "value": value, "note": note, "icon": icon, "href": href}


def _table(headers: list[str], rows: list[list[object]]) -> dict[str, list]:
    return {"headers": headers, "rows": rows}


def _tokens(value: Decimal) -> str:
    return fmt_amount(value, 2 if value != value.to_integral_value() else 0)


def _changelist(name: str, **params: object) -> str:
    url = reverse(f"admin:botapp_{name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def build_dashboard(
    *, period: Period, money: bool, now: datetime | None = None, links: dict[str, str] | None = None
) -> dict[str, Any]:
    """Everything the template shows, from the selectors. `money`: compute and show the money panels
    (nothing about revenue is queried otherwise)."""
    now = now or timezone.now()
    links = links if links is not None else links_for()
    labels = _labels(period)
    users = selectors.user_stats(period=period)
    users_daily = selectors.users_by_day(period=period)
    conversion = selectors.first_payment_conversion(period=period)
    # The per-day rows of the big tables, read once (rollups where built, live otherwise).
    ledger = daily.ledger_rows(period=period)
    requests = daily.generation_rows(period=period)
    generations = selectors.generation_stats(period=period, generations=requests)
    errors = selectors.failures_by_error_code(period=period, generations=requests)
    queue = selectors.queue_now(now=now)
    referrals = selectors.referrals_and_promos(period=period, ledger=ledger)
    if queue.depth:
        oldest = _("oldest waits %(time)s") % {"time": fmt_seconds(queue.oldest_waiting_seconds)}
    else:
        oldest = _("nothing waiting")
    data: dict[str, Any] = {
        "money": money,
        "users": users,
        "conversion": conversion,
        "generations": generations,
        "errors": errors,
        "queue": queue,
        "referrals": referrals,
        "kpis": {
            "users": [
                _kpi(
                    "new",
                    _("New users"),
                    fmt_amount(users.new),
                    _("%(count)s via referral") % {"count": fmt_amount(users.new_via_referral)},
                    "person_add",
                    links["users"],
                ),
                _kpi(
                    "active",
                    _("Active users"),
                    fmt_amount(users.active),
                    _("of %(count)s users") % {"count": fmt_amount(users.total)},
                    "group",
                ),
                _kpi(
                    "dau",
                    _("DAU / WAU / MAU"),
                    f"{fmt_amount(users.dau)} / {fmt_amount(users.wau)} / {fmt_amount(users.mau)}",
                    _("as of %(day)s") % {"day": dateformat.format(period.end, "j M Y")},
                    "monitoring",
                ),
                _kpi(
                    "paying",
                    _("Paying users"),
                    fmt_amount(users.paying),
                    _("%(share)s of active") % {"share": fmt_percent(users.paying_share)},
                    "paid",
                ),
                _kpi(
                    "conversion",
                    _("First-payment conversion"),
                    fmt_percent(conversion.rate),
                    _("%(paid)s of %(new)s new users paid")
                    % {"paid": fmt_amount(conversion.paid), "new": fmt_amount(conversion.new_users)},
                    "conversion_path",
                ),
                _kpi(
                    "blocked",
                    _("Blocked the bot"),
                    fmt_amount(users.blocked),
                    _("%(share)s of all users, now") % {"share": fmt_percent(users.blocked_share)},
                    "block",
                ),
            ],
            "generations": [
                _kpi(
                    "requests",
                    _("Requests"),
                    fmt_amount(generations.total),
                    _("%(count)s succeeded") % {"count": fmt_amount(generations.succeeded)},
                    "auto_awesome",
                    links["generations"],
                ),
                _kpi(
                    "failure_rate",
                    _("Failure rate"),
                    fmt_percent(generations.failure_rate),
                    _("%(count)s failed") % {"count": fmt_amount(generations.failed)},
                    "error",
                    links["failed"],
                ),
                _kpi(
                    "refund_rate",
                    _("Refund rate"),
                    fmt_percent(generations.refund_rate),
                    _("%(count)s refunded") % {"count": fmt_amount(generations.refunded)},
                    "currency_exchange",
                ),
                _kpi(
                    "in_flight",
                    _("In flight now"),
                    fmt_amount(queue.in_flight),
                    _("%(count)s running") % {"count": fmt_amount(queue.running)},
                    "pending",
                    links["in_flight"],
                ),
                _kpi(
                    "queue_depth",
                    _("Queue depth"),
                    fmt_amount(queue.depth),
                    _("created %(created)s · queued %(queued)s · %(oldest)s")
                    % {"created": fmt_amount(queue.created), "queued": fmt_amount(queue.queued), "oldest": oldest},
                    "queue",
                    links["in_flight"],
                ),
                _kpi(
                    "due_polls",
                    _("Polls due"),
                    fmt_amount(queue.running_due_polls),
                    _("running videos to check now"),
                    "schedule",
                ),
            ],
            "referrals": [
                _kpi(
                    "referral_signups",
                    _("Signups via referral"),
                    fmt_amount(referrals.referral_signups),
                    _("invited by a friend"),
                    "share",
                ),
                _kpi(
                    "referral_rewards",
                    _("Referral rewards"),
                    _tokens(referrals.referral_reward_tokens),
                    _("tokens, %(count)s rewards paid") % {"count": fmt_amount(referrals.referral_rewards)},
                    "card_giftcard",
                ),
                _kpi(
                    "promo_redemptions",
                    _("Promocode redemptions"),
                    fmt_amount(referrals.promo_redemptions),
                    _("%(count)s top-up codes used by a payment") % {"count": fmt_amount(referrals.promo_consumed)},
                    "confirmation_number",
                    links["promocodes"],
                ),
                _kpi(
                    "promo_tokens",
                    _("Promocode tokens"),
                    _tokens(referrals.promo_bonus_tokens),
                    _("bonus tokens credited by codes"),
                    "loyalty",
                ),
            ],
        },
        "users_chart": _chart(
            labels,
            [
                (pgettext("users", "Active"), [d.active for d in users_daily], "primary"),
                (pgettext("users", "New"), [d.new for d in users_daily], "green"),
            ],
            kind="line",
        ),
        "generations_chart": _chart(
            labels,
            [
                (pgettext("generations", "Succeeded"), [d.succeeded for d in generations.by_day], "green"),
                (pgettext("generations", "Failed"), [d.failed for d in generations.by_day], "red"),
                (pgettext("generations", "Other"), [d.other for d in generations.by_day], "grey"),
            ],
        ),
        "models_table": _table(
            [
                _("Model"),
                _("Requests"),
                pgettext("generations", "Succeeded"),
                pgettext("generations", "Failed"),
                _("Failure rate"),
                pgettext("generations", "Refunded"),
                _("Refund rate"),
                _("In flight"),
                "p50",
                "p95",
            ],
            [
                [
                    m.name,
                    fmt_amount(m.total),
                    fmt_amount(m.succeeded),
                    fmt_amount(m.failed),
                    fmt_percent(m.failure_rate),
                    fmt_amount(m.refunded),
                    fmt_percent(m.refund_rate),
                    fmt_amount(m.in_flight),
                    fmt_seconds(m.p50_seconds),
                    fmt_seconds(m.p95_seconds),
                ]
                for m in generations.by_model
            ],
        ),
        "errors_table": _table(
            [_("Error code"), pgettext("generations", "Failed"), _("Share"), pgettext("generations", "Refunded")],
            [
                [e.code or _("(no code)"), fmt_amount(e.failed), fmt_percent(e.share), fmt_percent(e.refund_rate)]
                for e in errors
            ],
        ),
        "promo_table": _table(
            [_("Code"), _("Kind"), _("Redeemed")],
            [[Truncator(c.code).chars(14), c.kind, fmt_amount(c.redemptions)] for c in referrals.top_codes],
        ),
        "line_options": _chart_options(stacked=False),
        "stacked_options": _chart_options(stacked=True),
    }
    if money:
        data.update(
            _money_panels(period=period, users=users, labels=labels, links=links, ledger=ledger, requests=requests)
        )
    return data


def _money_panels(
    *,
    period: Period,
    users: selectors.UserStats,
    labels: list[str],
    links: dict[str, str],
    ledger: list[daily.LedgerRow],
    requests: list[daily.GenerationRow],
) -> dict[str, Any]:
    revenue = selectors.revenue(period=period, stars_rub_rate=settings.STARS_RUB_RATE)
    economics = selectors.unit_economics(revenue=revenue, users=users)
    tokens = selectors.token_flow(period=period, ledger=ledger)
    price = selectors.token_price(period=period, stars_rub_rate=settings.STARS_RUB_RATE)
    margins = selectors.model_margins(
        period=period,
        rub_per_token=price.rub,
        usd_rub_rate=settings.USD_RUB_RATE,
        ledger=ledger,
        generations=requests,
    )
    price_source = {
        "period": _("this range"),
        "all time": _("all time: nothing sold in this range"),
        "none": _("nothing sold yet"),
    }[price.source]
    if revenue.refunded_payments:
        refunds = _("%(count)s refunded (%(rub)s ₽, not counted)") % {
            "count": fmt_amount(revenue.refunded_payments),
            "rub": fmt_amount(revenue.refunded_rub),
        }
    else:
        refunds = _("no refunds")
    return {
        "revenue": revenue,
        "economics": economics,
        "tokens": tokens,
        "price": price,
        "margins": margins,
        "stars_rub_rate": settings.STARS_RUB_RATE,
        "usd_rub_rate": settings.USD_RUB_RATE,
        "price_text": _("%(rub)s ₽ per token, %(source)s") % {"rub": fmt_amount(price.rub, 2), "source": price_source},
        "money_kpis": [
            _kpi(
                "revenue",
                _("Revenue, ₽"),
                fmt_amount(revenue.rub),
                _("%(stars)s ⭐ equivalent") % {"stars": fmt_amount(revenue.stars)},
                "payments",
                links["payments"],
            ),
            _kpi("payments", _("Payments"), fmt_amount(revenue.payments), refunds, "receipt_long", links["payments"]),
            _kpi(
                "arpu",
                _("ARPU, ₽"),
                fmt_amount(economics.arpu_rub, 2),
                _("per active user · %(stars)s ⭐") % {"stars": fmt_amount(economics.arpu_stars, 2)},
                "person",
            ),
            _kpi(
                "arppu",
                _("ARPPU, ₽"),
                fmt_amount(economics.arppu_rub, 2),
                _("per paying user · %(stars)s ⭐") % {"stars": fmt_amount(economics.arppu_stars, 2)},
                "workspace_premium",
            ),
            _kpi(
                "token_price",
                _("Token price, ₽"),
                fmt_amount(price.rub, 2),
                f"{fmt_amount(price.stars, 2)} ⭐ · {price_source}",
                "sell",
            ),
        ],
        "token_kpis": [
            _kpi(
                "sold",
                _("Tokens sold"),
                _tokens(tokens.sold),
                _("purchased, credited by payments"),
                "add_shopping_cart",
                links["ledger"],
            ),
            _kpi(
                "spent",
                _("Tokens spent"),
                _tokens(tokens.spent),
                _("charged for generations"),
                "bolt",
                links["ledger"],
            ),
            _kpi(
                "refunded",
                _("Tokens refunded"),
                _tokens(tokens.refunded),
                _("given back for failed generations"),
                "undo",
                links["ledger"],
            ),
            _kpi(
                "bonus",
                _("Bonus given"),
                _tokens(tokens.bonus),
                _("top-up bonuses, promocodes, referral rewards, gifts"),
                "redeem",
                links["ledger"],
            ),
        ],
        "methods_table": _table(
            [_("Method"), _("Payments"), _("Stars"), "₽"],
            [
                [_method(m.method, m.label), fmt_amount(m.payments), fmt_amount(m.stars), fmt_amount(m.rub)]
                for m in revenue.by_method
            ],
        ),
        "ledger_table": _table(
            [_("Tokens"), _("Amount")],
            [
                [_("Sold (purchased)"), _tokens(tokens.sold)],
                [_("Spent on generations"), _tokens(tokens.spent)],
                [_("Refunded (failed)"), _tokens(tokens.refunded)],
                [_("Bonus with top-ups"), _tokens(tokens.bonus_topup)],
                [_("Promocodes"), _tokens(tokens.bonus_promo)],
                [_("Referral rewards"), _tokens(tokens.bonus_referral)],
                [_("Gifts"), _tokens(tokens.bonus_gift)],
                [_("Operator adjustments (net)"), _tokens(tokens.adjustments)],
                [_("Taken back (refunded payments)"), _tokens(tokens.payment_refunds)],
            ],
        ),
        "margin_table": _table(
            [
                _("Model"),
                _("Paid tokens"),
                _("Bonus tokens"),
                _("Revenue, ₽"),
                _("Made"),
                _("Cost, $"),
                _("Cost, ₽"),
                _("Margin, ₽"),
                _("Margin"),
            ],
            [
                [
                    m.name,
                    _tokens(m.paid_tokens),
                    _tokens(m.bonus_tokens),
                    fmt_amount(m.revenue_rub),
                    _made(m.units, m.kind),
                    fmt_amount(m.cost_usd, 2) if m.cost_set else _("not set"),
                    fmt_amount(m.cost_rub),
                    fmt_amount(m.margin_rub),
                    fmt_percent(m.margin_share),
                ]
                for m in margins
            ],
        ),
        "revenue_chart": _chart(
            labels,
            [
                (
                    f"{_method(method, selectors.METHOD_LABELS.get(method, method))}, ₽",
                    [_num(d.by_method_rub.get(method, 0)) for d in revenue.by_day],
                    color,
                )
                for method, color in zip(selectors.METHOD_LABELS, ("primary", "blue"), strict=False)
            ],
        ),
        "tokens_chart": _chart(
            labels,
            [
                (pgettext("tokens", "Sold"), [_num(d.sold) for d in tokens.by_day], "green"),
                (pgettext("tokens", "Spent"), [_num(d.spent) for d in tokens.by_day], "primary"),
                (pgettext("tokens", "Refunded"), [_num(d.refunded) for d in tokens.by_day], "red"),
                (pgettext("tokens", "Bonus"), [_num(d.bonus) for d in tokens.by_day], "orange"),
            ],
            kind="line",
        ),
    }


def links_for(user: Any = None) -> dict[str, str]:
    """The changelists the KPI cards open; "" (no link) where `user` may not view the model."""
    targets = {
        "users": ("tguser", {}),
        "payments": ("payment", {"status__exact": Payment.Status.SUCCEEDED}),
        "generations": ("genrequest", {}),
        "failed": ("genrequest", {"status__exact": GenRequest.Status.FAILED}),
        "in_flight": ("genrequest", {"status__in": ",".join(GenRequest.IN_FLIGHT)}),
        "ledger": ("transaction", {}),
        "promocodes": ("promocodeactivation", {}),
        "models": ("aimodel", {}),
    }
    return {
        key: _changelist(model, **params) if user is None or user.has_perm(f"botapp.view_{model}") else ""
        for key, (model, params) in targets.items()
    }


def _method(method: str, label: str) -> str:
    """A payment method as the operator names it, in the admin's language."""
    names = {Payment.Provider.TELEGRAM_STARS: _("Stars"), Payment.Provider.YOOKASSA: pgettext("payment method", "Card")}
    return names.get(method, label)


def _made(units: int | Decimal, kind: str) -> str:
    """What a model made in the range: images, or seconds of video."""
    if kind == "video":
        return _("%(count)s s") % {"count": fmt_amount(units)}
    return _("%(count)s img") % {"count": fmt_amount(units)}
