"""The admin's sidebar, laid out like the cockpit (unfold's `SIDEBAR["navigation"]`, see the UNFOLD
dict in config/settings.py): the dashboard, users and support, money, the catalogue, generations,
broadcasts, and Django's own users and groups.

Built per request: an item shows only when its model is registered in the admin and the staff user may
view it (the ModelAdmin's own view permission, so the sidebar never offers a page that answers 403), and
a group whose items are all hidden is not shown. An item of a model that does not exist (yet) is left
out rather than breaking the page. Titles are in the admin's language.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.apps import apps
from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

# (group title, [(item title, material symbol, "app_label.model_name")]); None: the dashboard.
SECTIONS = (
    (None, [(_("Dashboard"), "dashboard", None)]),
    (
        _("Users & support"),
        [
            (_("Telegram users"), "group", "botapp.tguser"),
            (_("Support requests"), "inbox", "botapp.supportrequest"),
            (_("Support messages"), "support_agent", "botapp.supportmessage"),
            (_("Bot texts"), "edit_note", "botapp.bottext"),
            (_("User settings"), "tune", "botapp.usersettings"),
        ],
    ),
    (
        _("Money"),
        [
            (_("Balances"), "account_balance_wallet", "botapp.userbalance"),
            (_("Ledger"), "receipt_long", "botapp.transaction"),
            (_("Payments"), "payments", "botapp.payment"),
            (_("Top-up packages"), "sell", "botapp.topuppackage"),
            (_("Subscription plans"), "event_repeat", "botapp.subscriptionplan"),
            (_("Stars subscriptions"), "autorenew", "botapp.starsubscription"),
            (_("Promocodes"), "confirmation_number", "botapp.promocode"),
            (_("Promocode activations"), "redeem", "botapp.promocodeactivation"),
        ],
    ),
    (
        _("Catalogue"),
        [
            (_("AI models"), "smart_toy", "botapp.aimodel"),
            (_("Prompt styles"), "palette", "botapp.promptstyle"),
            (_("Levels"), "military_tech", "botapp.level"),
        ],
    ),
    (_("Generations"), [(_("Generation requests"), "auto_awesome", "botapp.genrequest")]),
    (_("Broadcasts"), [(_("Broadcasts"), "campaign", "botapp.broadcast")]),
    (
        _("Administration"),
        [
            (_("Users"), "person", "auth.user"),
            (_("Groups"), "groups", "auth.group"),
        ],
    ),
)


def model_admin_of(label: str) -> admin.ModelAdmin | None:
    """The registered ModelAdmin of "app_label.model_name", or None (no such model, or not in the admin)."""
    try:
        model = apps.get_model(label)
    except LookupError:
        return None
    return admin.site._registry.get(model)


def can_view(label: str, request: HttpRequest) -> bool:
    model_admin = model_admin_of(label)
    return model_admin is not None and model_admin.has_view_or_change_permission(request)


def sidebar(request: HttpRequest) -> list[dict[str, Any]]:
    """unfold's navigation: [{title, items: [{title, icon, link, permission}]}]."""
    groups = []
    for title, entries in SECTIONS:
        items = []
        for item_title, icon, label in entries:
            if label is None:
                items.append({"title": item_title, "icon": icon, "link": reverse("admin:index")})
                continue
            model_admin = model_admin_of(label)
            if model_admin is None:
                continue  # e.g. a model another change has not added yet
            opts = model_admin.model._meta
            items.append(
                {
                    "title": item_title,
                    "icon": icon,
                    "link": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
                    "permission": partial(can_view, label),
                }
            )
        if items:
            groups.append({"title": title, "items": items})
    return groups


def site_title(request: HttpRequest) -> str:
    return gettext("GenStudio admin")
