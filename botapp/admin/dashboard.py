"""The operator's dashboard: the admin's landing page (unfold's `DASHBOARD_CALLBACK`).

`dashboard_callback` reads the date range from the GET parameters, asks the selectors
(`botapp.selectors.dashboard`) for the numbers and hands them to `admin/dashboard.html` with the
charts' data (drawn by the Chart.js that unfold serves from its own static files). Money (revenue,
ARPU/ARPPU, the token ledger, the average token price and the margin) is computed and shown only for
staff with the `botapp.view_payment` permission (superusers have it).

The range: `?range=today|7d|30d|90d|month` (a preset), or `?from=YYYY-MM-DD&to=YYYY-MM-DD` (custom,
both days included, at most `MAX_DAYS` days, `to` no later than today). Anything else falls back to
the default range (`DEFAULT_PRESET`) with a notice on the page, never an error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from botapp.models import GenRequest, Payment
from botapp.selectors import daily
from botapp.selectors import dashboard as selectors
from botapp.selectors.daily import Period

MONEY_PERMISSION = "botapp.view_payment"
DEFAULT_PRESET = "30d"
MAX_DAYS = 366
PRESETS: dict[str, str] = {
    "today": "Today",
    "7d": "7 days",
    "30d": "30 days",
    "90d": "90 days",
    "month": "This month",
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
        return RangeChoice(period=preset_period(DEFAULT_PRESET, today=today), preset=DEFAULT_PRESET, notice=notice)

    if preset in PRESETS and not (raw_from or raw_to):
        return RangeChoice(period=preset_period(preset, today=today), preset=preset)
    if preset not in ("", "custom") and not (raw_from or raw_to):
        return fallback(f'Unknown range "{preset[:20]}": showing the last 30 days.')
    if not (raw_from or raw_to):
        return RangeChoice(period=preset_period(DEFAULT_PRESET, today=today), preset=DEFAULT_PRESET)
    try:
        end = date.fromisoformat(raw_to) if raw_to else today
        start = date.fromisoformat(raw_from) if raw_from else end - timedelta(days=29)
    except (ValueError, OverflowError):  # not a date, or "to" too close to year 1 for a default "from"
        return fallback("The dates must look like 2025-01-31: showing the last 30 days.")
    end = min(end, today)
    if start > end:
        return fallback("The range starts after it ends (or in the future): showing the last 30 days.")
    if (end - start).days + 1 > MAX_DAYS:
        return fallback(f"The range is longer than {MAX_DAYS} days: showing the last 30 days.")
    return RangeChoice(period=Period(start=start, end=end), preset="custom")


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
    return [day.strftime("%d %b") for day in period.days]


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
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest:02d} s"


def fmt_amount(value: Decimal | int | float | None, digits: int = 0) -> str:
    """1234567.8 -> "1 234 568" (narrow no-break spaces between thousands); None -> "0"."""
    return f"{float(value or 0):,.{digits}f}".replace(",", "\u202f")


def _kpi(key: str, title: str, value: str, note: str = "", icon: str = "", href: str = "") -> dict[str, str]:
    return {"key": key, "title": title, "value": value, "note": note, "icon": icon, "href": href}


def _table(headers: list[str], rows: list[list[object]]) -> dict[str, list]:
    return {"headers": headers, "rows": rows}


def _tokens(value: Decimal) -> str:
    return fmt_amount(value, 2 if value != value.to_integral_value() else 0)


# --- the page ----------------------------------------------------------------------------------------
def _range_links(choice: RangeChoice) -> list[dict[str, Any]]:
    base = reverse("admin:index")
    return [
        {"key": key, "label": label, "url": f"{base}?{urlencode({'range': key})}", "active": key == choice.preset}
        for key, label in PRESETS.items()
    ]


def _changelist(name: str, **params: object) -> str:
    url = reverse(f"admin:botapp_{name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def build_dashboard(
    *, period: Period, money: bool, now: datetime | None = None, links: dict[str, str] | None = None
) -> dict[str, Any]:
    """Everything the template shows, from the selectors. `money`: compute and show the money panels
    (nothing about revenue is queried otherwise)."""
    now = now or timezone.now()
    links = links if links is not None else _links()
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
    oldest = f"oldest waits {fmt_seconds(queue.oldest_waiting_seconds)}" if queue.depth else "nothing waiting"
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
                    "New users",
                    fmt_amount(users.new),
                    f"{fmt_amount(users.new_via_referral)} via referral",
                    "person_add",
                    links["users"],
                ),
                _kpi(
                    "active", "Active users", fmt_amount(users.active), f"of {fmt_amount(users.total)} users", "group"
                ),
                _kpi(
                    "dau",
                    "DAU / WAU / MAU",
                    f"{fmt_amount(users.dau)} / {fmt_amount(users.wau)} / {fmt_amount(users.mau)}",
                    f"as of {period.end:%d %b %Y}",
                    "monitoring",
                ),
                _kpi(
                    "paying",
                    "Paying users",
                    fmt_amount(users.paying),
                    f"{fmt_percent(users.paying_share)} of active",
                    "paid",
                ),
                _kpi(
                    "conversion",
                    "First-payment conversion",
                    fmt_percent(conversion.rate),
                    f"{fmt_amount(conversion.paid)} of {fmt_amount(conversion.new_users)} new users paid",
                    "conversion_path",
                ),
                _kpi(
                    "blocked",
                    "Blocked the bot",
                    fmt_amount(users.blocked),
                    f"{fmt_percent(users.blocked_share)} of all users, now",
                    "block",
                ),
            ],
            "generations": [
                _kpi(
                    "requests",
                    "Requests",
                    fmt_amount(generations.total),
                    f"{fmt_amount(generations.succeeded)} succeeded",
                    "auto_awesome",
                    links["generations"],
                ),
                _kpi(
                    "failure_rate",
                    "Failure rate",
                    fmt_percent(generations.failure_rate),
                    f"{fmt_amount(generations.failed)} failed",
                    "error",
                    links["failed"],
                ),
                _kpi(
                    "refund_rate",
                    "Refund rate",
                    fmt_percent(generations.refund_rate),
                    f"{fmt_amount(generations.refunded)} refunded",
                    "currency_exchange",
                ),
                _kpi(
                    "in_flight",
                    "In flight now",
                    fmt_amount(queue.in_flight),
                    f"{fmt_amount(queue.running)} running",
                    "pending",
                    links["in_flight"],
                ),
                _kpi(
                    "queue_depth",
                    "Queue depth",
                    fmt_amount(queue.depth),
                    f"created {fmt_amount(queue.created)} · queued {fmt_amount(queue.queued)} · {oldest}",
                    "queue",
                    links["in_flight"],
                ),
                _kpi(
                    "due_polls",
                    "Polls due",
                    fmt_amount(queue.running_due_polls),
                    "running videos to check now",
                    "schedule",
                ),
            ],
            "referrals": [
                _kpi(
                    "referral_signups",
                    "Signups via referral",
                    fmt_amount(referrals.referral_signups),
                    "invited by a friend",
                    "share",
                ),
                _kpi(
                    "referral_rewards",
                    "Referral rewards",
                    _tokens(referrals.referral_reward_tokens),
                    f"tokens, {fmt_amount(referrals.referral_rewards)} rewards paid",
                    "card_giftcard",
                ),
                _kpi(
                    "promo_redemptions",
                    "Promocode redemptions",
                    fmt_amount(referrals.promo_redemptions),
                    f"{fmt_amount(referrals.promo_consumed)} top-up codes used by a payment",
                    "confirmation_number",
                    links["promocodes"],
                ),
                _kpi(
                    "promo_tokens",
                    "Promocode tokens",
                    _tokens(referrals.promo_bonus_tokens),
                    "bonus tokens credited by codes",
                    "loyalty",
                ),
            ],
        },
        "users_chart": _chart(
            labels,
            [
                ("Active", [d.active for d in users_daily], "primary"),
                ("New", [d.new for d in users_daily], "green"),
            ],
            kind="line",
        ),
        "generations_chart": _chart(
            labels,
            [
                ("Succeeded", [d.succeeded for d in generations.by_day], "green"),
                ("Failed", [d.failed for d in generations.by_day], "red"),
                ("Other", [d.other for d in generations.by_day], "grey"),
            ],
        ),
        "models_table": _table(
            [
                "Model",
                "Requests",
                "Succeeded",
                "Failed",
                "Failure rate",
                "Refunded",
                "Refund rate",
                "In flight",
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
            ["Error code", "Failed", "Share", "Refunded"],
            [
                [e.code or "(no code)", fmt_amount(e.failed), fmt_percent(e.share), fmt_percent(e.refund_rate)]
                for e in errors
            ],
        ),
        "promo_table": _table(
            ["Code", "Kind", "Redeemed"],
            [[c.code, c.kind, fmt_amount(c.redemptions)] for c in referrals.top_codes],
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
        "period": "this range",
        "all time": "all time: nothing sold in this range",
        "none": "nothing sold yet",
    }[price.source]
    refunds = (
        f"{fmt_amount(revenue.refunded_payments)} refunded ({fmt_amount(revenue.refunded_rub)} ₽, not counted)"
        if revenue.refunded_payments
        else "no refunds"
    )
    return {
        "revenue": revenue,
        "economics": economics,
        "tokens": tokens,
        "price": price,
        "margins": margins,
        "stars_rub_rate": settings.STARS_RUB_RATE,
        "usd_rub_rate": settings.USD_RUB_RATE,
        "price_text": f"{fmt_amount(price.rub, 2)} ₽ per token, {price_source}",
        "money_kpis": [
            _kpi(
                "revenue",
                "Revenue, ₽",
                fmt_amount(revenue.rub),
                f"{fmt_amount(revenue.stars)} ⭐ equivalent",
                "payments",
                links["payments"],
            ),
            _kpi("payments", "Payments", fmt_amount(revenue.payments), refunds, "receipt_long", links["payments"]),
            _kpi(
                "arpu",
                "ARPU, ₽",
                fmt_amount(economics.arpu_rub, 2),
                f"per active user · {fmt_amount(economics.arpu_stars, 2)} ⭐",
                "person",
            ),
            _kpi(
                "arppu",
                "ARPPU, ₽",
                fmt_amount(economics.arppu_rub, 2),
                f"per paying user · {fmt_amount(economics.arppu_stars, 2)} ⭐",
                "workspace_premium",
            ),
            _kpi(
                "token_price",
                "Token price, ₽",
                fmt_amount(price.rub, 2),
                f"{fmt_amount(price.stars, 2)} ⭐ · {price_source}",
                "sell",
            ),
        ],
        "token_kpis": [
            _kpi(
                "sold",
                "Tokens sold",
                _tokens(tokens.sold),
                "purchased, credited by payments",
                "add_shopping_cart",
                links["ledger"],
            ),
            _kpi("spent", "Tokens spent", _tokens(tokens.spent), "charged for generations", "bolt", links["ledger"]),
            _kpi(
                "refunded",
                "Tokens refunded",
                _tokens(tokens.refunded),
                "given back for failed generations",
                "undo",
                links["ledger"],
            ),
            _kpi(
                "bonus",
                "Bonus given",
                _tokens(tokens.bonus),
                "top-up bonuses, promocodes, referral rewards, gifts",
                "redeem",
                links["ledger"],
            ),
        ],
        "methods_table": _table(
            ["Method", "Payments", "Stars", "₽"],
            [[m.label, fmt_amount(m.payments), fmt_amount(m.stars), fmt_amount(m.rub)] for m in revenue.by_method],
        ),
        "ledger_table": _table(
            ["Tokens", "Amount"],
            [
                ["Sold (purchased)", _tokens(tokens.sold)],
                ["Spent on generations", _tokens(tokens.spent)],
                ["Refunded (failed)", _tokens(tokens.refunded)],
                ["Bonus with top-ups", _tokens(tokens.bonus_topup)],
                ["Promocodes", _tokens(tokens.bonus_promo)],
                ["Referral rewards", _tokens(tokens.bonus_referral)],
                ["Gifts", _tokens(tokens.bonus_gift)],
                ["Operator adjustments (net)", _tokens(tokens.adjustments)],
                ["Taken back (refunded payments)", _tokens(tokens.payment_refunds)],
            ],
        ),
        "margin_table": _table(
            ["Model", "Paid tokens", "Bonus tokens", "Revenue, ₽", "Made", "Cost, $", "Cost, ₽", "Margin, ₽", "Margin"],
            [
                [
                    m.name,
                    _tokens(m.paid_tokens),
                    _tokens(m.bonus_tokens),
                    fmt_amount(m.revenue_rub),
                    f"{fmt_amount(m.units)} {'s' if m.kind == 'video' else 'img'}",
                    fmt_amount(m.cost_usd, 2) if m.cost_set else "not set",
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
                    f"{selectors.METHOD_LABELS.get(method, method)}, ₽",
                    [_num(d.by_method_rub.get(method, 0)) for d in revenue.by_day],
                    color,
                )
                for method, color in zip(selectors.METHOD_LABELS, ("primary", "blue"), strict=False)
            ],
        ),
        "tokens_chart": _chart(
            labels,
            [
                ("Sold", [_num(d.sold) for d in tokens.by_day], "green"),
                ("Spent", [_num(d.spent) for d in tokens.by_day], "primary"),
                ("Refunded", [_num(d.refunded) for d in tokens.by_day], "red"),
                ("Bonus", [_num(d.bonus) for d in tokens.by_day], "orange"),
            ],
            kind="line",
        ),
    }


def _links(user: Any = None) -> dict[str, str]:
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


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    choice = parse_range(request.GET, today=timezone.localdate())
    money = request.user.has_perm(MONEY_PERMISSION)
    links = _links(request.user)
    context.update(
        {
            "title": "Dashboard",
            "dashboard": build_dashboard(period=choice.period, money=money, links=links),
            "range": choice,
            "range_links": _range_links(choice),
            "links": links,
        }
    )
    return context
