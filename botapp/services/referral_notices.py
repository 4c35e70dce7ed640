"""Telling a referrer about their reward: "your friend made their first top-up: +N bonus tokens" or
"your friend topped up again: +N bonus tokens (P% of the top-up)", in the referrer's language.

`ReferralService.reward_for_topup` calls `enqueue_referral_notice(transaction_id=...)` on commit of a
reward it wrote (not a replayed payment), keyed by the reward's ledger row. The Celery task
`botapp.tasks.notify_referral_reward` sends it through the one Telegram sender, on the send queue:

- nothing when the referrer turned notifications off (UserSettings.notifications) or blocked the bot;
- a cache marker per ledger row: a redelivered or duplicated task never tells them twice;
- 403 -> the referrer is marked `bot_blocked`; flood control (RetryLater) -> the task retries later.

The first top-up's notice is the one for the earliest reward for that friend's payments (the ledger is
append-only, so this does not change afterwards).
"""

from __future__ import annotations

import html

from django.conf import settings

from botapp.i18n import normalize_language, t
from botapp.keyboards import fmt_tokens
from botapp.models import ZERO, Transaction, UserBalance, UserSettings
from botapp.services import notify, users


def enqueue_referral_notice(*, transaction_id: int) -> None:
    """Hand the notice to the workers (call on commit). A broker failure never fails the payment."""
    notify.enqueue("notify_referral_reward", transaction_id, what=f"ledger row #{transaction_id}: the referral notice")


def is_first_reward(row: Transaction) -> bool:
    """Whether `row` is the referrer's earliest reward for payments of this friend."""
    if row.payment is None:
        return False
    return not Transaction.objects.filter(
        user_id=row.user_id,
        kind=Transaction.Kind.REFERRAL,
        payment__user_id=row.payment.user_id,
        pk__lt=row.pk,
    ).exists()


def referral_notice_text(*, row: Transaction, lang: str) -> str | None:
    """The notice in `lang` for the reward `row`, or None when it credited nothing."""
    if row.amount <= 0:
        return None
    friend = row.payment.user if row.payment is not None else None
    name = (friend.first_name or friend.username) if friend is not None else ""
    balance = UserBalance.objects.filter(user_id=row.user_id).first()
    params = {
        "name": html.escape(name, quote=False) if name else t("refnotice.friend", lang),
        "amount": fmt_tokens(row.amount),
        "balance": fmt_tokens(balance.total if balance else ZERO),
    }
    if is_first_reward(row):
        return t("refnotice.first", lang, **params)
    return t("refnotice.later", lang, percent=fmt_tokens(settings.REFERRAL_PERCENT), **params)


def send_referral_notice(*, transaction_id: int) -> float | None:
    """notify_referral_reward: tell the referrer about the reward `transaction_id`. Returns a retry delay
    (seconds) when Telegram asks us to wait, else None (sent, or nothing to send)."""
    row = (
        Transaction.objects.select_related("user", "payment__user")
        .filter(pk=transaction_id, kind=Transaction.Kind.REFERRAL)
        .first()
    )
    if row is None or row.user.bot_blocked:
        return None
    prefs = UserSettings.objects.filter(user_id=row.user_id).values_list("language", "notifications").first()
    language, notifications = prefs or (users.language_from_code(row.user.language_code), True)
    if not notifications:
        return None
    text = referral_notice_text(row=row, lang=normalize_language(language))
    if text is None:
        return None
    # The row's time makes the marker unique even if the database is recreated while the cache lives.
    # A 403 marks the referrer bot_blocked; an unknown outcome is not repeated (the reward is in /balance).
    return notify.send_once(
        chat_id=row.user.telegram_id,
        text=text,
        marker=f"tx:{row.pk}:{row.created_at.timestamp():.6f}:referral-notified",
        what=f"ledger row #{transaction_id}: the referral notice",
        mark_blocked=True,
    )
