"""A model Google retires, end to end through a REAL Celery worker process and the fake Google.

An active model with a successor (Nano Banana 2.1, whose pricing makes 4K dearer) gets Google's 404 while
three paid requests wait for it: the first one the worker sends gets the 404 and switches the model to its
successor by itself; the two others were waiting in the queue. What each user gets: the requests that cost
the same there are made by the successor's model id at Google's stand-in and delivered (charged once, never
again), the dearer one is refunded exactly once with its message in the chat; the operator gets exactly one
alert; the ledger balances.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.core.management import call_command

from botapp.models import AIModel, GenRequest, Transaction, UserBalance
from botapp.services.generation import GenerationService

from .conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
D = Decimal
OLD_ID = "gemini-old-flash-image"


@pytest.fixture
def operator(stack, emulator):
    """The worker restarted with an operator in ADMIN_IDS (and back to its own environment after)."""
    user = emulator.user(first_name="Operator", language_code="en")
    original = dict(stack.env)
    stack.stop()
    stack.env = {**original, "ADMIN_IDS": str(user.id), "ADMIN_LANGUAGE": "en"}
    stack.start()
    yield user
    stack.stop()
    stack.env = original
    stack.start()


@pytest.fixture
def models(nano) -> Iterator[tuple[AIModel, AIModel]]:
    """(the old model: 1.50 at any resolution, successor Nano Banana 2.1; the successor: 1.50, 4K × 2)."""
    AIModel.objects.filter(pk=nano.pk).update(price=D("1.50"), pricing={"resolution": {"4K": "2"}})
    nano.refresh_from_db()
    caps = {k: v for k, v in nano.capabilities.items() if k not in ("thinking_levels", "draft")}
    old = AIModel.objects.create(
        slug="nano-old",
        name="Nano Old",
        emoji="🍌",
        kind=AIModel.Kind.IMAGE,
        provider=AIModel.Provider.GEMINI_IMAGE,
        provider_model_id=OLD_ID,
        price=D("1.50"),
        pricing={},
        is_active=True,
        status=AIModel.Lifecycle.DEPRECATED,
        successor=nano,
        capabilities=caps,
        default_params={"aspect_ratio": "1:1", "resolution": "1K"},
        sort_order=1,
    )
    yield old, nano


def ledger(request: GenRequest) -> list[tuple[str, Decimal]]:
    rows = Transaction.objects.filter(gen_request=request).order_by("pk").values_list("kind", "amount")
    return [(kind, abs(amount)) for kind, amount in rows]


def settled(request_id: int):
    def check():
        request = GenRequest.objects.get(pk=request_id)
        if request.status in ("failed", "cancelled") or (request.status == "succeeded" and request.delivered_at):
            return request
        return None

    return check


def test_a_retired_model_moves_its_waiting_users_to_the_successor(
    operator, models, tg_user, emulator, fake_google, settings, stack
):
    old, successor = models
    (ann_chat, ann), (ben_chat, ben), (cid_chat, cid) = (tg_user(balance=10) for _ in range(3))
    fake_google.retire_model(OLD_ID)

    # Two wait in the queue (created while nothing dispatches them) ...
    settings.GENERATION_DISPATCH = ""
    ben_request = GenerationService.create_request(
        user_id=ben.pk,
        ai_model_id=old.pk,
        prompt="ben: a blue boat",
        params={"resolution": "2K"},
        chat_id=ben_chat.chat_id,
    )
    cid_request = GenerationService.create_request(
        user_id=cid.pk,
        ai_model_id=old.pk,
        prompt="cid: a tall tower",
        params={"resolution": "4K"},
        chat_id=cid_chat.chat_id,
    )
    assert {r.status for r in GenRequest.objects.filter(pk__in=[ben_request.pk, cid_request.pk])} == {"queued"}
    # ... and the worker takes the first: Google does not know the model any more.
    settings.GENERATION_DISPATCH = "botapp.tasks.dispatch_generation"
    ann_request = GenerationService.create_request(
        user_id=ann.pk,
        ai_model_id=old.pk,
        prompt="ann: a red kite",
        params={"resolution": "1K"},
        chat_id=ann_chat.chat_id,
    )

    done = {
        r.pk: wait_until(settled(r.pk), timeout=45, what=f"request #{r.pk} to settle")
        for r in (ann_request, ben_request, cid_request)
    }

    # Ann's (the one that got the 404) and Ben's cost the same on the successor: made there, delivered.
    for request, chat, prompt in (
        (ann_request, ann_chat, "ann: a red kite"),
        (ben_request, ben_chat, "ben: a blue boat"),
    ):
        moved = done[request.pk]
        assert (moved.status, moved.ai_model_id, moved.model) == ("succeeded", successor.pk, successor.slug)
        assert ledger(moved) == [("charge", D("1.50"))]  # charged once, not again
        assert [m for m in emulator.messages(chat.chat_id) if "photo" in m or "document" in m]
        at_google = fake_google.requests_for("generateContent", model=successor.provider_model_id)
        assert [r.prompt for r in at_google].count(prompt) == 1
    assert done[ben_request.pk].params["resolution"] == "2K"
    assert UserBalance.objects.get(user=ann).total == D("8.50") and UserBalance.objects.get(user=ben).total == D("8.50")

    # Cid's costs 3 on the successor (4K), more than the 1.50 paid: refunded once, told why in the chat.
    refunded = done[cid_request.pk]
    assert (refunded.status, refunded.error_code, refunded.ai_model_id) == ("failed", "model_switched", old.pk)
    assert ledger(refunded) == [("charge", D("1.50")), ("refund", D("1.50"))]
    assert UserBalance.objects.get(user=cid).total == D("10")
    notice = emulator.wait_for_message(cid_chat.chat_id, lambda m: "retired" in str(m.get("text")), 15)
    text = re.sub(r"</?b>", "", notice["text"])
    assert "Google has retired 🍌 Nano Old; its successor is 🍌 Nano Banana 2.1" in text
    assert "it costs 3 tokens there" in text and "1.5 tokens are back" in text
    assert not [m for m in emulator.messages(cid_chat.chat_id) if "photo" in m or "document" in m]

    # The catalogue: the old model retired and off, its successor on; Google asked for the old id only by Ann's.
    old.refresh_from_db()
    successor.refresh_from_db()
    assert old.status == "retired" and not old.is_active and old.switched_at is not None and old.paused_at is None
    assert successor.is_active
    assert len(fake_google.requests_for("generateContent", model=successor.provider_model_id)) == 2
    old_calls = [r.prompt for r in fake_google.requests_for("generateContent", model=OLD_ID)]
    assert "ann: a red kite" in old_calls and len(old_calls) <= 3

    # One alert to the operator, naming both models.
    alert = emulator.wait_for_message(operator.id, lambda m: OLD_ID in str(m.get("text")), 15)
    assert "switched" in alert["text"] and successor.provider_model_id in alert["text"]
    assert stack.log_path.read_text(errors="replace").count("operator alert lifecycle_switched") == 1
    assert len(emulator.messages(operator.id)) == 1
    call_command("check_ledger")


def test_the_14_and_3_day_warnings_reach_the_operator_once_each(engine, settings, emulator, veo):
    """The beat task, run as Celery runs it (eagerly here), twice a day: the operator's chat in the Bot API
    emulator gets the 14-day warning once and the 3-day warning once, nothing more."""
    from datetime import timedelta

    from django.core.cache import cache
    from django.utils import timezone

    from botapp import tasks

    operator = emulator.user(first_name="Operator", language_code="en")
    settings.ADMIN_IDS, settings.ADMIN_LANGUAGE = [operator.id], "en"
    cache.clear()
    today = timezone.localdate()
    for days_left in (14, 14, 3, 3):  # the same day's run twice, then the 3-day mark twice
        AIModel.objects.filter(pk=veo.pk).update(shutdown_date=today + timedelta(days=days_left))
        tasks.check_model_lifecycle.delay()
    warnings = wait_until(
        lambda: [m["text"] for m in emulator.messages(operator.id) if "Veo 3.1 Fast" in str(m.get("text"))]
        if len(emulator.messages(operator.id)) >= 2
        else None,
        what="the two warnings",
    )
    assert len(warnings) == 2 and "in 14 days" in warnings[0] and "in 3 days" in warnings[1]
    assert len(emulator.messages(operator.id)) == 2
    assert AIModel.objects.get(pk=veo.pk).is_active, "a warning changes nothing"
