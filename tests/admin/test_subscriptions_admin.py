"""The admin's Star subscription pages: plans are edited by the operator, subscriptions are read-only
(status filter, search by charge id, the paid months inline), both in the sidebar under Money."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from botapp.models import StarSubscription, SubscriptionPlan
from botapp.services.subscriptions import PERIOD, SubscriptionService

pytestmark = pytest.mark.django_db


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="x", is_staff=True))
    return client


@pytest.fixture
def paid(make_user):
    plan = SubscriptionPlan.objects.get(name_en="Light")
    user = make_user(username="subscriber")
    sub = SubscriptionService.subscribe(user_id=user.pk, plan_id=plan.pk)
    SubscriptionService.credit_period(
        charge_id="stx-admin-1",
        invoice_payload=sub.invoice_payload,
        telegram_id=user.telegram_id,
        total_amount=plan.price_stars,
        currency="XTR",
        expiration=timezone.now() + PERIOD,
        is_first=True,
    )
    return StarSubscription.objects.get(pk=sub.pk)


def test_plans_are_edited_by_the_operator(admin_client):
    page = admin_client.get(url(SubscriptionPlan, "changelist")).content.decode()
    assert "Light" in page or "Лайт" in page
    assert url(SubscriptionPlan, "changelist") in page and url(StarSubscription, "changelist") in page  # sidebar
    plan = SubscriptionPlan.objects.get(name_en="Pro")
    assert admin_client.get(url(SubscriptionPlan, "change", plan.pk)).status_code == 200
    data = {
        "name": plan.name,
        "name_en": plan.name_en,
        "tokens": "600",
        "bonus_tokens": "0",
        "price_stars": "1600",
        "is_active": "on",
        "sort_order": "20",
        "description": "",
        "description_en": "",
    }
    assert admin_client.post(url(SubscriptionPlan, "change", plan.pk), data).status_code == 302
    plan.refresh_from_db()
    assert (plan.tokens, plan.price_stars) == (Decimal(600), 1600)


def test_subscriptions_are_read_only_with_a_status_filter_and_search(admin_client, paid):
    listed = admin_client.get(url(StarSubscription, "changelist"), {"status__exact": "active"})
    assert listed.status_code == 200 and "subscriber" in listed.content.decode()
    none = admin_client.get(url(StarSubscription, "changelist"), {"status__exact": "lapsed"})
    assert "subscriber" not in none.content.decode()
    found = admin_client.get(url(StarSubscription, "changelist"), {"q": "stx-admin-1"})
    assert "subscriber" in found.content.decode()
    detail = admin_client.get(url(StarSubscription, "change", paid.pk))
    assert detail.status_code == 200 and "stx-admin-1" in detail.content.decode()  # the paid month inline
    assert admin_client.get(url(StarSubscription, "add")).status_code == 403
    admin_client.post(url(StarSubscription, "change", paid.pk), {"status": "cancelled"})
    paid.refresh_from_db()
    assert paid.status == "active"
