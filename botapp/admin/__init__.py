"""The operator's admin (django-unfold), laid out like the cockpit:

- `dashboard`: the landing page (numbers from `botapp.selectors.dashboard`);
- `users`: users and support (search, timeline, moderation, grant or take tokens);
- `texts`: the support inbox (/paysupport requests) and the bot's texts the operator edits (/terms);
- `money`: balances, the ledger, payments, top-up packages, promocodes;
- `subscriptions`: Star subscription plans (editable) and the users' subscriptions (read-only);
- `catalogue`: the AI models and the loyalty levels;
- `styles`: the prompt styles the bot offers (template, example image);
- `generations`: the generation requests and the operator's refund;
- `broadcasts`: compose, preview, send and follow broadcasts;
- `base`: what the pages share.

Money is never edited in a form here. Balances change only through the services:
`BalanceService.admin_adjust` (the "grant or take tokens" action, with a reason and an idempotency
key per submitted form) and `GenerationService.admin_refund` (the "refund" action). The ledger
(`Transaction`), balances, payments, generation requests and promocode activations are read-only:
no add, no change, no delete, not even through a bulk action.
"""

from botapp.admin import (  # noqa: F401  (registers the pages)
    broadcasts,
    catalogue,
    generations,
    money,
    styles,
    subscriptions,
    texts,
    users,
)
