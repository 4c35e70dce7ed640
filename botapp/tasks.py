"""Celery tasks: a thin interface over the generation engine, `botapp.engine` (ids in, services do the work).

    enqueue on commit -> dispatch_generation(id) -> run_generation(id)
        image: claim -> Google -> store -> succeeded -> deliver (inline)
        video: claim -> Google -> operation id stored; the worker is free again
    poll_generations (beat, every GENERATION_POLL_TICK_SECONDS): polls every due operation at once
        done -> store -> succeeded -> deliver_generation(id)
        a due request without an operation (a retry after 429/5xx) -> advance_generation(id, lease)
    sweep_generations (beat, every GENERATION_SWEEP_SECONDS): re-queues, resumes, re-delivers or
        refunds whatever is stuck
    notify_failure(id, reason): tells the user why it failed and that the tokens are back
    notify_refund(id): tells the user an operator refunded their generation (botapp.services.notices)
    notify_adjustment(tx id): tells the user an operator granted or took tokens (botapp.services.notices)
    notify_referral_reward(tx id): tells a referrer about their reward (botapp.services.referral_notices)
    forward_support_request(id, chat): a user's /paysupport request to one operator (botapp.services.paysupport)
    check_failure_rate / check_video_queue (beat): operator alerts (botapp.services.alerts)
    notify_card_payment(payment id) / expire_card_payments (beat): card payments (botapp.services.card)
    send_support_message(id): an operator's message to a user, written in the admin (botapp.services.support)
    run_broadcast(id): sends a broadcast (botapp.services.broadcasts); comes back later on flood control
    tick_broadcasts (beat, every BROADCAST_TICK_SECONDS): starts due scheduled broadcasts, replaces the
        runner of a broadcast whose worker died
    notify_payment_refund(payment id): tells the user their payment was refunded (botapp.services.refunds)
    reconcile_stars (beat, every STARS_RECONCILE_SECONDS): our Stars payments against Telegram's
        ledger (botapp.services.reconcile)
    reconcile_card (beat, every CARD_RECONCILE_SECONDS): our card payments and refunds against
        YooKassa's (botapp.services.card_refunds)
    lapse_subscriptions (beat, every SUBSCRIPTION_LAPSE_CHECK_SECONDS) / notify_subscription_lapsed(id):
        Star subscriptions that were not renewed end, their users told once (botapp.services.subscriptions)
    check_model_lifecycle (beat, every LIFECYCLE_CHECK_SECONDS: daily): models at their shutdown date switch
        to their successor, the operators are warned 14 and 3 days ahead (botapp.services.lifecycle)

Every task is idempotent (each step is a conditional UPDATE), so they ack late: a worker killed
mid-task gets the message redelivered, and the duplicate finds nothing to do or resumes cleanly.
"""

from __future__ import annotations

import logging

from celery import shared_task

from botapp.engine import delivery, failures, poller, steps, sweep

log = logging.getLogger(__name__)


def dispatch_generation(request_id: int) -> None:
    """settings.GENERATION_DISPATCH: hand a queued request to the workers."""
    run_generation.delay(request_id)


@shared_task(name="botapp.tasks.run_generation", acks_late=True, ignore_result=True)
def run_generation(request_id: int) -> str:
    return steps.start(request_id)


@shared_task(name="botapp.tasks.advance_generation", acks_late=True, ignore_result=True)
def advance_generation(request_id: int, token: str | None = None) -> str:
    return steps.resume(request_id, token)


@shared_task(name="botapp.tasks.poll_generations", acks_late=True, ignore_result=True)
def poll_generations() -> dict:
    report = poller.poll_due()
    if report.claimed:
        log.info(
            "poller: claimed %d, polled %d (pending %d, finished %d, failed %d, retrying %d), handed over %d;"
            " polled in %.2f s, done in %.2f s",
            report.claimed,
            report.polled,
            report.pending,
            report.finished,
            report.failed,
            report.retried,
            report.dispatched,
            report.polling_seconds,
            report.seconds,
        )
    return {"claimed": report.claimed, "polled": report.polled, "finished": report.finished}


@shared_task(name="botapp.tasks.deliver_generation", acks_late=True, ignore_result=True)
def deliver_generation(request_id: int, new_level: int | None = None) -> None:
    retry_in = delivery.deliver(request_id, new_level=new_level)
    if retry_in:
        deliver_generation.apply_async((request_id, new_level), countdown=retry_in + 0.5)


@shared_task(name="botapp.tasks.notify_failure", bind=True, acks_late=True, ignore_result=True, max_retries=8)
def notify_failure(self, request_id: int, reason: str | None = None) -> None:
    retry_in = failures.notify_failure(request_id, reason)
    if retry_in:
        raise self.retry(countdown=retry_in + 0.5)


@shared_task(name="botapp.tasks.sweep_generations", acks_late=True, ignore_result=True)
def sweep_generations() -> dict:
    return sweep.sweep()


@shared_task(name="botapp.tasks.check_failure_rate", ignore_result=True)
def check_failure_rate() -> bool:
    """Beat, every ALERT_FAILURE_CHECK_SECONDS: alert the operators on a spike of failed generations."""
    from botapp.services import alerts

    return alerts.check_failure_rate()


@shared_task(name="botapp.tasks.check_video_queue", ignore_result=True)
def check_video_queue() -> bool:
    """Beat, every ALERT_QUEUE_CHECK_SECONDS: alert the operators on running generations the poller left
    overdue; also sends the summary of alerts suppressed by ALERT_MAX_PER_MINUTE once a storm is over."""
    from botapp.services import alerts

    alerts.flush_suppressed()
    return alerts.check_video_queue()


@shared_task(name="botapp.tasks.send_operator_alert", bind=True, ignore_result=True, max_retries=8)
def send_operator_alert(self, chat_id: int, key: str, params: dict) -> None:
    """One operator's alert (queued by botapp.services.alerts.alert_operators)."""
    from botapp.services import alerts

    retry_in = alerts.send_alert(chat_id=chat_id, key=key, params=params)
    if retry_in:
        raise self.retry(countdown=retry_in + 0.5)


@shared_task(name="botapp.tasks.notify_refund", bind=True, acks_late=True, ignore_result=True, max_retries=8)
def notify_refund(self, request_id: int) -> None:
    """Tell the user an operator refunded their generation (queued on commit of the refund)."""
    from botapp.services import notices

    retry_in = notices.send_refund_notice(request_id=request_id)
    if retry_in:
        raise self.retry(countdown=retry_in + 0.5)


@shared_task(name="botapp.tasks.notify_adjustment", bind=True, acks_late=True, ignore_result=True, max_retries=8)
def notify_adjustment(self, transaction_id: int) -> None:
    """Tell the user an operator granted or took tokens (queued on commit of BalanceService.admin_adjust)."""
    from botapp.services import notices

    retry_in = notices.send_adjustment_notice(transaction_id=transaction_id)
    if retry_in:
        raise self.retry(countdown=retry_in + 0.5)


@shared_task(name="botapp.tasks.notify_referral_reward", bind=True, acks_late=True, ignore_result=True, max_retries=8)
def notify_referral_reward(self, transaction_id: int) -> None:
    """Tell a referrer about their reward, keyed by its ledger row (queued on commit of the reward)."""
    from botapp.services import referral_notices

    retry_in = referral_notices.send_referral_notice(transaction_id=transaction_id)
    if retry_in:
        raise self.retry(countdown=retry_in + 0.5)


@shared_task(name="botapp.tasks.forward_support_request", bind=True, acks_late=True, ignore_result=True, max_retries=8)
def forward_support_request(self, request_id: int, chat_id: int) -> None:
    """A user's /paysupport request (SupportRequest) to one operator: sent once per request and operator,
    flood control retries."""
    from botapp.services import paysupport

    retry_in = paysupport.send_request(request_id=request_id, chat_id=chat_id)
    if retry_in:
        if self.request.retries >= self.max_retries:
            paysupport.give_up(request_id=request_id, chat_id=chat_id)
            return
        raise self.retry(countdown=retry_in + 0.5)


@shared_task(name="botapp.tasks.send_support_message", bind=True, acks_late=True, ignore_result=True, max_retries=8)
def send_support_message(self, message_id: int) -> None:
    """An operator's message to a user (botapp.services.support): claimed pending -> sending before
    the send, so a duplicate or redelivered task never sends it twice; flood control retries."""
    from botapp.services import support

    retry_in = support.send(message_id=message_id)
    if retry_in:
        if self.request.retries >= self.max_retries:
            support.give_up(message_id=message_id)
            return
        raise self.retry(countdown=retry_in + 0.5)


@shared_task(name="botapp.tasks.run_broadcast", ignore_result=True)
def run_broadcast(broadcast_id: int) -> None:
    """Send a broadcast (one runner at a time holds it; a duplicate task finds it taken and returns)."""
    from botapp.services import broadcasts

    again = broadcasts.run(broadcast_id=broadcast_id)
    if again is not None:
        run_broadcast.apply_async((broadcast_id,), countdown=again)


@shared_task(name="botapp.tasks.tick_broadcasts", ignore_result=True)
def tick_broadcasts() -> dict:
    from botapp.services import broadcasts

    return broadcasts.tick()


@shared_task(name="botapp.tasks.rollup_dashboard", ignore_result=True)
def rollup_dashboard() -> int:
    """Beat, every DASHBOARD_ROLLUP_SECONDS: the admin dashboard's daily rollups (botapp.services.rollups)."""
    from botapp.services import rollups

    return len(rollups.roll_up())


@shared_task(name="botapp.tasks.notify_payment_refund", bind=True, acks_late=True, ignore_result=True, max_retries=8)
def notify_payment_refund(self, payment_id: int) -> None:
    """Tell the user their payment was refunded and what was taken back (queued on commit of the refund)."""
    from botapp.services import refunds

    retry_in = refunds.send_refund_notice(payment_id=payment_id)
    if retry_in:
        raise self.retry(countdown=retry_in + 0.5)


@shared_task(name="botapp.tasks.reconcile_stars", ignore_result=True)
def reconcile_stars() -> dict:
    """Beat, every STARS_RECONCILE_SECONDS (daily): compare the last STARS_RECONCILE_DAYS of Telegram's Stars
    ledger with our payments, credit what was paid but never credited, alert the operators about the rest."""
    from django.conf import settings

    from botapp.services import reconcile

    report = reconcile.reconcile_stars(days=settings.STARS_RECONCILE_DAYS, alert=True)
    return report.counts()


@shared_task(name="botapp.tasks.reconcile_card", ignore_result=True)
def reconcile_card() -> dict:
    """Beat, every CARD_RECONCILE_SECONDS (daily): YooKassa's payments and refunds of the last
    CARD_RECONCILE_DAYS days against ours (botapp.services.card_refunds); nothing without a shop."""
    from django.conf import settings

    from botapp.services import card_refunds, yookassa_api

    if not yookassa_api.configured():
        return {}
    return card_refunds.reconcile_card(days=settings.CARD_RECONCILE_DAYS)


@shared_task(name="botapp.tasks.notify_card_payment", bind=True, acks_late=True, ignore_result=True, max_retries=8)
def notify_card_payment(self, payment_id: int) -> None:
    """Tell the user their card payment was credited (queued on commit of the crediting, botapp.services.card)."""
    from botapp.services.card import CardService

    retry_in = CardService.send_paid_notice(payment_id=payment_id)
    if retry_in:
        raise self.retry(countdown=retry_in + 0.5)


@shared_task(name="botapp.tasks.expire_card_payments", ignore_result=True)
def expire_card_payments() -> dict:
    """Beat, every YOOKASSA_EXPIRY_SWEEP_SECONDS: card payments left open are asked about at YooKassa
    (canceled -> cancelled, promocode freed; succeeded, the webhook lost -> credited; botapp.services.card)."""
    from botapp.services.card import CardService

    return CardService.expire_abandoned()


@shared_task(name="botapp.tasks.lapse_subscriptions", ignore_result=True)
def lapse_subscriptions() -> int:
    """Beat, every SUBSCRIPTION_LAPSE_CHECK_SECONDS (hourly): Star subscriptions whose paid period is over
    without a renewal (+ SUBSCRIPTION_LAPSE_GRACE_HOURS) are lapsed, each user told once
    (botapp.services.subscriptions)."""
    from botapp.services.subscriptions import SubscriptionService

    return SubscriptionService.lapse_overdue()


@shared_task(
    name="botapp.tasks.notify_subscription_lapsed", bind=True, acks_late=True, ignore_result=True, max_retries=8
)
def notify_subscription_lapsed(self, subscription_id: int) -> None:
    """Tell the user their Star subscription has ended (queued on commit of the lapse)."""
    from botapp.services import subscriptions

    retry_in = subscriptions.send_lapse_notice(subscription_id=subscription_id)
    if retry_in:
        raise self.retry(countdown=retry_in + 0.5)


@shared_task(name="botapp.tasks.check_model_lifecycle", ignore_result=True)
def check_model_lifecycle() -> dict:
    """Beat, every LIFECYCLE_CHECK_SECONDS (daily): active models on or past their shutdown date switch to
    their successor (without one: a daily operator alert, no pause); warnings 14 and 3 days before a
    shutdown, each once (botapp.services.lifecycle.lifecycle_daily)."""
    from botapp.services import lifecycle

    report = lifecycle.lifecycle_daily()
    return {
        "switched": len(report.switched),
        "refused": len(report.refused),
        "past_without_successor": len(report.past_without_successor),
        "warned": len(report.warned),
    }
