"""The bot's routers, gathered in a deliberate order.

Commands that work everywhere come first (menu: /start /menu /cancel; help: /help; terms: /terms;
paysupport: /paysupport and its "describe the problem" state; balance: /balance; ops: the operators'
/admin), then payments (`payment`; `refunds`: a `refunded_payment`
message, before any state handler or fallback answers it as input), then the feature screens (and
`screens`: a screen opened as a new message, by a broadcast's button), then the generation flow with
its state handlers, and the fallback last (unknown commands, unexpected input, outdated buttons, a
non-operator's /admin, errors).
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatType

from botapp.handlers import (
    balance,
    card,
    fallback,
    generation,
    help,
    menu,
    ops,
    payment,
    paysupport,
    profile,
    promo,
    referral,
    refunds,
    screens,
    settings,
    subscriptions,
    terms,
)

ROUTERS: tuple[Router, ...] = (
    # Star subscriptions first: a recurring charge arrives whatever state the user is in, and must never
    # be taken as a state's input (their pre-checkout too, before the one-off top-ups' catch-all).
    subscriptions.router,
    # Then every payment: a successful or refunded payment must never reach a state's catch-all (a user
    # may pay an invoice while /paysupport waits for their text). The card method comes before the Stars
    # router's method handler.
    card.router,
    payment.router,
    refunds.router,
    menu.router,
    help.router,
    terms.router,
    paysupport.router,
    balance.router,
    ops.router,
    profile.router,
    settings.router,
    referral.router,
    promo.router,
    screens.router,
    generation.router,
    fallback.router,
)


def build_router() -> Router:
    """A root router holding the feature routers, for one Dispatcher.

    Feature routers are module-level (aiogram style) and a router has one parent; building another
    dispatcher in the same process (tests, the benchmark, the webhook runtime of a new event loop)
    re-parents them to the new root.
    """
    root = Router(name="botapp")
    root.message.filter(F.chat.type == ChatType.PRIVATE)  # a private bot: group chatter is ignored
    for router in ROUTERS:
        router._parent_router = None  # see the docstring
    root.include_routers(*ROUTERS)
    return root
