"""The operator's admin, through Django's test client with a logged-in superuser, on a real database.

Money-moving actions are checked against the ledger: the rows written, the balances, and
`check_ledger` staying clean.
"""

from __future__ import annotations

import csv
import io
import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from botapp.models import (
    AIModel,
    Broadcast,
    GenRequest,
    Level,
    Payment,
    Promocode,
    PromocodeActivation,
    TgUser,
    TopUpPackage,
    Transaction,
    UserBalance,
    UserSettings,
)
from botapp.services.generation import GenerationService
from botapp.services.payments import PaymentService
from botapp.services.promo import PromoService

pytestmark = pytest.mark.django_db

ALL_MODELS = [
    TgUser,
    UserBalance,
    AIModel,
    Level,
    TopUpPackage,
    Promocode,
    PromocodeActivation,
    Payment,
    GenRequest,
    Transaction,
    UserSettings,
    Broadcast,
]
ADDABLE = {AIModel, Level, TopUpPackage, Promocode, Broadcast}


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def ledger_check() -> str:
    out = io.StringIO()
    call_command("check_ledger", stdout=out)  # raises CommandError when the ledger is off
    return out.getvalue()


def balance_of(user: TgUser) -> UserBalance:
    return UserBalance.objects.get(user=user)


@pytest.fixture
def world(make_user, nano):
    """One row of every model, made through the services where a service makes it."""
    user = make_user(balance=20, bonus=5, username="alice")
    make_user(balance=0, username="bob")
    GenerationService.create_request(user_id=user.pk, ai_model_id=nano.pk, prompt="a red fox in the snow")
    package = TopUpPackage.objects.filter(is_active=True).first()
    payment = PaymentService.create_invoice(user_id=user.pk, package_id=package.pk)
    PaymentService.complete(
        invoice_payload=payment.invoice_payload,
        provider_charge_id="charge-123",
        total_amount=int(payment.amount),
        currency=payment.currency,
    )
    PromoService.redeem(user_id=user.pk, code="welcome2025")
    Broadcast.objects.create(text="Hello, new models are here")
    return user


def post_action(client, model, action: str, ids, follow=False, **extra):
    data = {"action": action, "_selected_action": [str(i) for i in ids], **extra}
    return client.post(url(model, "changelist"), data, follow=follow)


# --- pages ---------------------------------------------------------------------------------------
def test_anonymous_is_sent_to_login(client, world):
    for model in (TgUser, Transaction, Payment):
        response = client.get(url(model, "changelist"))
        assert response.status_code == 302
        assert reverse("admin:login") in response["Location"]


def test_staff_without_permissions_cannot_see_the_ledger(client, world, django_user_model):
    staff = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get(url(Transaction, "changelist")).status_code == 403


def test_index_and_every_changelist(admin_client, world):
    assert admin_client.get(reverse("admin:index")).status_code == 200
    for model in ALL_MODELS:
        assert model.objects.exists(), model
        response = admin_client.get(url(model, "changelist"))
        assert response.status_code == 200, model


def test_every_change_page(admin_client, world):
    for model in ALL_MODELS:
        obj = model.objects.order_by("pk").first()
        response = admin_client.get(url(model, "change", obj.pk))
        assert response.status_code == 200, model


def test_add_pages_exist_only_where_adding_makes_sense(admin_client, world):
    for model in ALL_MODELS:
        response = admin_client.get(url(model, "add"))
        assert response.status_code == (200 if model in ADDABLE else 403), model


def test_changelists_make_no_query_per_row(admin_client, make_user, nano):
    def add_users(n):
        for _ in range(n):
            user = make_user(balance=10, bonus=1)
            GenerationService.create_request(user_id=user.pk, ai_model_id=nano.pk, prompt="x")
            PromoService.redeem(user_id=user.pk, code="WELCOME2025")

    def queries():
        counts = {}
        for model in ALL_MODELS:
            with CaptureQueriesContext(connection) as ctx:
                assert admin_client.get(url(model, "changelist")).status_code == 200
            counts[model] = len(ctx)
        return counts

    add_users(2)
    few = queries()
    add_users(10)
    assert queries() == few


def test_user_search_and_filters(admin_client, world):
    changelist = url(TgUser, "changelist")
    response = admin_client.get(changelist, {"q": str(world.telegram_id)})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [world]
    response = admin_client.get(changelist, {"q": "alice"})
    assert [u.username for u in response.context["cl"].result_list] == ["alice"]
    response = admin_client.get(changelist, {"is_banned__exact": "1"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    # the user's related lists, as linked from the change page
    for model in (Transaction, GenRequest, Payment):
        response = admin_client.get(url(model, "changelist"), {"user__id__exact": world.pk})
        assert response.status_code == 200, model
        assert response.context["cl"].result_count >= 1, model


def test_other_searches_and_filters(admin_client, world):
    cases = [
        (Transaction, {"q": "charge-123"}),
        (Transaction, {"kind": "deposit"}),
        (Transaction, {"q": str(world.telegram_id)}),
        (GenRequest, {"q": "red fox"}),
        (GenRequest, {"status": "created"}),
        (GenRequest, {"refunded": "no"}),
        (Payment, {"q": "charge-123"}),
        (Payment, {"status": "succeeded"}),
        (Promocode, {"q": "welcome"}),
        (Promocode, {"kind__exact": "bonus_tokens"}),
        (AIModel, {"q": "banana"}),
        (AIModel, {"kind__exact": "video"}),
        (PromocodeActivation, {"q": "WELCOME2025"}),
        (UserBalance, {"q": "alice"}),
        (UserSettings, {"q": "alice"}),
    ]
    for model, params in cases:
        response = admin_client.get(url(model, "changelist"), params)
        assert response.status_code == 200, (model, params)
        assert response.context["cl"].result_count >= 1, (model, params)


# --- the ledger is read-only ---------------------------------------------------------------------
def test_transactions_cannot_be_added_changed_or_deleted(admin_client, world):
    row = Transaction.objects.filter(user=world).order_by("pk").first()
    count = Transaction.objects.count()

    assert admin_client.get(url(Transaction, "add")).status_code == 403
    assert admin_client.post(url(Transaction, "add"), {"amount": "100"}).status_code == 403

    page = admin_client.get(url(Transaction, "change", row.pk))
    assert page.status_code == 200  # view only
    assert b'name="amount"' not in page.content
    response = admin_client.post(url(Transaction, "change", row.pk), {"amount": "1000", "balance_after": "1000"})
    assert response.status_code == 403

    assert admin_client.get(url(Transaction, "delete", row.pk)).status_code == 403
    assert admin_client.post(url(Transaction, "delete", row.pk), {"post": "yes"}).status_code == 403

    # no bulk delete either: the action does not exist for the ledger
    response = post_action(admin_client, Transaction, "delete_selected", [row.pk], post="yes", follow=True)
    assert response.status_code == 200
    assert Transaction.objects.count() == count
    row.refresh_from_db()
    assert row.amount != Decimal("1000")
    ledger_check()


def test_balances_are_read_only(admin_client, world):
    balance = balance_of(world)
    response = admin_client.post(url(UserBalance, "change", balance.pk), {"balance": "1000000"})
    assert response.status_code == 403
    assert admin_client.post(url(UserBalance, "delete", balance.pk), {"post": "yes"}).status_code == 403
    assert balance_of(world).balance == balance.balance
    # the user form has no balance fields to post
    page = admin_client.get(url(TgUser, "change", world.pk))
    assert b'name="balance-0-balance"' not in page.content
    assert b'name="balance"' not in page.content


def test_user_form_edits_only_moderation(admin_client, world):
    page = admin_client.get(url(TgUser, "change", world.pk))
    form = page.context["adminform"].form
    assert set(form.fields) == {"is_banned", "ban_reason"}


def test_payments_and_generations_are_read_only(admin_client, world):
    payment = Payment.objects.get(provider_charge_id="charge-123")
    response = admin_client.post(url(Payment, "change", payment.pk), {"status": "refunded"})
    assert response.status_code == 403
    gen = GenRequest.objects.first()
    response = admin_client.post(url(GenRequest, "change", gen.pk), {"status": "succeeded"})
    assert response.status_code == 403
    assert admin_client.post(url(GenRequest, "delete", gen.pk), {"post": "yes"}).status_code == 403


# --- grant or take tokens ------------------------------------------------------------------------
def open_adjust_form(client, users) -> str:
    response = post_action(client, TgUser, "adjust_balance", [u.pk for u in users], index="0")
    assert response.status_code == 200
    assert "admin/botapp/tguser/adjust_balance.html" in [t.name for t in response.templates]
    return str(response.context["form"].initial["operation_id"])


def submit_adjust(client, users, operation_id, **fields):
    data = {"apply": "1", "operation_id": operation_id, "bucket": "main", "reason": "support ticket 42", **fields}
    return post_action(client, TgUser, "adjust_balance", [u.pk for u in users], follow=True, **data)


def test_grant_tokens_writes_an_admin_adjustment(admin_client, world):
    before = balance_of(world)
    operation_id = open_adjust_form(admin_client, [world])
    assert balance_of(world).balance == before.balance  # the intermediate page changes nothing

    response = submit_adjust(admin_client, [world], operation_id, amount="10.50")
    assert response.status_code == 200
    assert any("Granted 10.50 main tokens" in m for m in messages_of(response))

    after = balance_of(world)
    assert after.balance == before.balance + Decimal("10.50")
    assert after.bonus_balance == before.bonus_balance
    row = Transaction.objects.get(operation_key=f"admin:{operation_id}:{world.pk}")
    assert row.kind == Transaction.Kind.ADMIN_ADJUSTMENT
    assert row.bucket == Transaction.Bucket.MAIN
    assert row.amount == Decimal("10.50")
    assert row.balance_after == after.balance
    assert "support ticket 42" in row.description and "admin" in row.description  # reason + operator
    assert "ledger OK" in ledger_check()


def test_double_submitted_grant_credits_once(admin_client, world):
    before = balance_of(world).balance
    operation_id = open_adjust_form(admin_client, [world])
    submit_adjust(admin_client, [world], operation_id, amount="7")
    response = submit_adjust(admin_client, [world], operation_id, amount="7")
    assert any("already applied" in m for m in messages_of(response))
    assert balance_of(world).balance == before + 7
    assert Transaction.objects.filter(operation_key=f"admin:{operation_id}:{world.pk}").count() == 1
    # a fresh form is a new operation
    submit_adjust(admin_client, [world], open_adjust_form(admin_client, [world]), amount="7")
    assert balance_of(world).balance == before + 14
    ledger_check()


def test_take_more_than_the_balance_is_refused(admin_client, world):
    before = balance_of(world)
    count = Transaction.objects.count()
    operation_id = open_adjust_form(admin_client, [world])
    response = submit_adjust(admin_client, [world], operation_id, amount="-1000")
    assert any("Not enough tokens" in m for m in messages_of(response))
    after = balance_of(world)
    assert (after.balance, after.bonus_balance) == (before.balance, before.bonus_balance)
    assert Transaction.objects.count() == count
    ledger_check()


def test_take_from_the_bonus_bucket(admin_client, world):
    before = balance_of(world)
    operation_id = open_adjust_form(admin_client, [world])
    submit_adjust(admin_client, [world], operation_id, amount="-2,25", bucket="bonus")  # a Russian comma
    after = balance_of(world)
    assert after.bonus_balance == before.bonus_balance - Decimal("2.25")
    assert after.balance == before.balance
    row = Transaction.objects.get(operation_key=f"admin:{operation_id}:{world.pk}")
    assert (row.bucket, row.amount) == ("bonus", Decimal("-2.25"))
    ledger_check()


def test_adjustment_reports_per_user(admin_client, world, make_user):
    rich = make_user(balance=50, username="rich")
    poor = make_user(balance=1, username="poor")
    operation_id = open_adjust_form(admin_client, [rich, poor])
    response = submit_adjust(admin_client, [rich, poor], operation_id, amount="-5")
    texts = messages_of(response)
    assert any("Took 5 main tokens" in m and "@rich" in m for m in texts)
    assert any("@poor" in m and "Not enough tokens" in m for m in texts)
    assert balance_of(rich).balance == 45
    assert balance_of(poor).balance == 1
    ledger_check()


@pytest.mark.parametrize(
    "fields",
    [
        {"amount": "0"},
        {"amount": "1.234"},
        {"amount": "abc"},
        {"amount": "NaN"},
        {"amount": "5", "reason": "   "},
        {"amount": "5", "bucket": "savings"},
        {"amount": "5", "operation_id": "not-a-uuid"},
    ],
)
def test_invalid_adjustment_form_writes_nothing(admin_client, world, fields):
    count = Transaction.objects.count()
    data = {"operation_id": str(uuid.uuid4()), **fields}
    response = submit_adjust(admin_client, [world], **data)
    assert response.status_code == 200
    assert response.context["form"].errors
    assert Transaction.objects.count() == count


def test_adjustment_needs_the_balance_permission(client, world, django_user_model):
    from django.contrib.auth.models import Permission

    staff = django_user_model.objects.create_user("mod", password="x", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_tguser", "change_tguser"]))
    client.force_login(staff)
    response = client.get(url(TgUser, "changelist"))
    actions = dict(response.context["action_form"].fields["action"].choices)
    assert "ban" in actions
    assert "adjust_balance" not in actions
    count = Transaction.objects.count()
    data = {"apply": "1", "operation_id": str(uuid.uuid4()), "bucket": "main", "reason": "x", "amount": "100"}
    post_action(client, TgUser, "adjust_balance", [world.pk], **data)
    assert Transaction.objects.count() == count


# --- other bulk actions --------------------------------------------------------------------------
def test_ban_and_unban(admin_client, world):
    response = post_action(admin_client, TgUser, "ban", [world.pk], index="0", follow=True)
    assert any("Banned 1 users" in m for m in messages_of(response))
    world.refresh_from_db()
    assert world.is_banned and world.ban_reason
    post_action(admin_client, TgUser, "unban", [world.pk], index="0")
    world.refresh_from_db()
    assert not world.is_banned and world.ban_reason == ""


def test_activate_and_deactivate_models(admin_client, nano):
    imagen = AIModel.objects.get(slug="nano-banana-pro")  # inactive until the operator prices it
    assert not imagen.is_active
    post_action(admin_client, AIModel, "activate", [imagen.pk], index="0")
    imagen.refresh_from_db()
    assert imagen.is_active
    post_action(admin_client, AIModel, "deactivate", [imagen.pk, nano.pk], index="0")
    assert not AIModel.objects.filter(pk__in=[imagen.pk, nano.pk], is_active=True).exists()


def test_activate_and_deactivate_promocodes(admin_client, db):
    codes = list(Promocode.objects.values_list("pk", flat=True))
    post_action(admin_client, Promocode, "deactivate", codes, index="0")
    assert not Promocode.objects.filter(is_active=True).exists()
    post_action(admin_client, Promocode, "activate", codes[:1], index="0")
    assert list(Promocode.objects.filter(is_active=True).values_list("pk", flat=True)) == codes[:1]


def test_promocode_code_is_saved_upper_case_and_unique(admin_client, db):
    data = {
        "code": " spring25 ",
        "kind": "bonus_tokens",
        "value": "5",
        "per_user_limit": "1",
        "is_active": "on",
        # the (read-only) activations inline's management form
        "activations-TOTAL_FORMS": "0",
        "activations-INITIAL_FORMS": "0",
    }
    response = admin_client.post(url(Promocode, "add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Promocode.objects.filter(code="SPRING25").exists()
    response = admin_client.post(url(Promocode, "add"), {**data, "code": "Spring25"})
    assert response.status_code == 200  # the form again, with an error
    assert response.context["adminform"].form.errors
    response = admin_client.post(url(Promocode, "add"), {**data, "code": "no spaces!"})
    assert "code" in response.context["adminform"].form.errors
    assert Promocode.objects.filter(code__iexact="spring25").count() == 1


def test_model_price_is_edited_in_the_list(admin_client, nano):
    models = list(AIModel.objects.order_by("kind", "sort_order", "id"))
    data = {
        "form-TOTAL_FORMS": str(len(models)),
        "form-INITIAL_FORMS": str(len(models)),
        "_save": "Save",
    }
    for i, m in enumerate(models):
        data.update(
            {
                f"form-{i}-id": str(m.pk),
                f"form-{i}-price": "2.50" if m.pk == nano.pk else str(m.price),
                f"form-{i}-sort_order": str(m.sort_order),
            }
        )
        if m.is_active:
            data[f"form-{i}-is_active"] = "on"
    response = admin_client.post(url(AIModel, "changelist"), data)
    assert response.status_code == 302, response.content[:2000]
    nano.refresh_from_db()
    assert nano.price == Decimal("2.50")


# --- refunds -------------------------------------------------------------------------------------
def refund_rows(gen: GenRequest) -> int:
    return Transaction.objects.filter(gen_request=gen, kind=Transaction.Kind.REFUND).count()


def test_refund_an_in_flight_generation_once(admin_client, make_user, nano):
    user = make_user(balance=10)
    gen = GenerationService.create_request(user_id=user.pk, ai_model_id=nano.pk, prompt="a cat")
    assert balance_of(user).balance == Decimal("8.50")
    response = post_action(admin_client, GenRequest, "refund", [gen.pk], index="0", follow=True)
    assert any(m.startswith("Refunded #") for m in messages_of(response))
    gen.refresh_from_db()
    assert gen.status == GenRequest.Status.FAILED and gen.refunded_at is not None
    assert balance_of(user).balance == Decimal("10.00")
    assert refund_rows(gen) == 1

    response = post_action(admin_client, GenRequest, "refund", [gen.pk], index="0", follow=True)
    assert any("Already refunded" in m for m in messages_of(response))
    assert refund_rows(gen) == 1
    assert balance_of(user).balance == Decimal("10.00")
    ledger_check()


def test_refund_of_a_failed_generation_refunds_once(admin_client, make_user, nano):
    user = make_user(balance=10)
    gen = GenerationService.create_request(user_id=user.pk, ai_model_id=nano.pk, prompt="a cat")
    GenerationService.mark_running(request_id=gen.pk)
    GenerationService.fail(request_id=gen.pk, error_code="provider_error")  # refunds automatically
    assert refund_rows(gen) == 1
    for _ in range(2):
        response = post_action(admin_client, GenRequest, "refund", [gen.pk], index="0", follow=True)
        assert any("Already refunded" in m for m in messages_of(response))
    assert refund_rows(gen) == 1
    assert balance_of(user).balance == Decimal("10.00")
    ledger_check()


def test_refund_of_a_delivered_generation_is_refused(admin_client, make_user, nano):
    user = make_user(balance=10)
    gen = GenerationService.create_request(user_id=user.pk, ai_model_id=nano.pk, prompt="a cat")
    GenerationService.mark_running(request_id=gen.pk)
    GenerationService.mark_succeeded(request_id=gen.pk, results=[{"kind": "image", "path": "x.png"}])
    GenerationService.mark_delivered(request_id=gen.pk)
    response = post_action(admin_client, GenRequest, "refund", [gen.pk], index="0", follow=True)
    assert any("Refund refused" in m and "delivered" in m for m in messages_of(response))
    gen.refresh_from_db()
    assert gen.status == GenRequest.Status.SUCCEEDED and gen.refunded_at is None
    assert refund_rows(gen) == 0
    assert balance_of(user).balance == Decimal("8.50")
    ledger_check()


def test_refund_reports_each_request(admin_client, make_user, nano):
    user = make_user(balance=10)
    queued = GenerationService.create_request(user_id=user.pk, ai_model_id=nano.pk, prompt="one")
    delivered = GenerationService.create_request(user_id=user.pk, ai_model_id=nano.pk, prompt="two")
    GenerationService.mark_running(request_id=delivered.pk)
    GenerationService.mark_succeeded(request_id=delivered.pk, results=[])
    GenerationService.mark_delivered(request_id=delivered.pk)
    response = post_action(admin_client, GenRequest, "refund", [queued.pk, delivered.pk], index="0", follow=True)
    texts = messages_of(response)
    assert any(f"Refunded #{queued.pk}" in m for m in texts)
    assert any(f"#{delivered.pk}" in m and "refused" in m for m in texts)
    assert balance_of(user).balance == Decimal("8.50")
    ledger_check()


# --- exports -------------------------------------------------------------------------------------
def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_export_users(admin_client, world):
    rows = read_csv(post_action(admin_client, TgUser, "export_csv", [world.pk], index="0"))
    header, *data = rows
    assert header[:3] == ["id", "telegram_id", "username"]
    assert len(data) == 1
    record = dict(zip(header, data[0], strict=True))
    assert record["telegram_id"] == str(world.telegram_id)
    assert Decimal(record["balance"]) == balance_of(world).balance


def test_export_transactions(admin_client, world):
    ids = list(Transaction.objects.filter(user=world).values_list("pk", flat=True))
    header, *data = read_csv(post_action(admin_client, Transaction, "export_csv", ids, index="0"))
    assert "amount" in header and "operation_key" in header
    assert len(data) == len(ids)
    amounts = [Decimal(dict(zip(header, row, strict=True))["amount"]) for row in data]
    assert sum(amounts) == balance_of(world).total


def test_export_payments(admin_client, world):
    payment = Payment.objects.get(provider_charge_id="charge-123")
    header, *data = read_csv(post_action(admin_client, Payment, "export_csv", [payment.pk], index="0"))
    assert dict(zip(header, data[0], strict=True))["provider_charge_id"] == "charge-123"


def test_export_neutralises_formulas(admin_client, make_user):
    user = make_user(username="x", first_name='=HYPERLINK("http://evil")')
    header, *data = read_csv(post_action(admin_client, TgUser, "export_csv", [user.pk], index="0"))
    assert dict(zip(header, data[0], strict=True))["first_name"].startswith("'=")


@pytest.mark.parametrize(
    ("name", "cell"),
    [
        ("cat;=1+1", "cat;'=1+1"),  # a Russian Excel splits on ";": the second cell is no formula
        ("a, +cmd|' /C calc'!A0", "a, '+cmd|' /C calc'!A0"),
        ("x\n@SUM(A1)", "x\n'@SUM(A1)"),
        ("a;  =2", "a;  '=2"),
        ("tea; milk - sugar", "tea; milk - sugar"),  # nothing to neutralise
    ],
)
def test_export_neutralises_formulas_after_a_separator_and_quotes_every_cell(admin_client, make_user, name, cell):
    user = make_user(username="y", first_name=name)
    response = post_action(admin_client, TgUser, "export_csv", [user.pk], index="0")
    header, *data = read_csv(response)
    assert dict(zip(header, data[0], strict=True))["first_name"] == cell
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0] == ",".join(f'"{name}"' for name in header)  # every cell quoted


def model_form_data(model: AIModel, **changes) -> dict:
    import json

    data = {
        "emoji": model.emoji,
        "name": model.name,
        "slug": model.slug,
        "kind": model.kind,
        "sort_order": str(model.sort_order),
        "price": str(model.price),
        "provider": model.provider,
        "provider_model_id": model.provider_model_id,
        "api_backend": model.api_backend,
        "cost_per_image_usd": str(model.cost_per_image_usd),
        "cost_per_video_second_usd": str(model.cost_per_video_second_usd),
        "capabilities": json.dumps(model.capabilities),
        "default_params": json.dumps(model.default_params),
        "pricing": json.dumps(model.pricing),
        "description": model.description,
        "description_en": model.description_en,
        "is_active": "on" if model.is_active else "",
    }
    data.update({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in changes.items()})
    return {k: v for k, v in data.items() if v != ""}


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"pricing": {"resolution": {"8K": 3}}}, "pricing", "does not offer: 8K"),
        ({"pricing": {"per_second": 1}}, "pricing", "video models only"),
        ({"pricing": {"resolution": {"4K": 0}}}, "pricing", "positive"),
        ({"capabilities": {"max_variants": 8, "aspect_ratios": ["1:1"]}}, "capabilities", "max_variants"),
        ({"capabilities": {"max_inputs": 3}}, "capabilities", "Unknown capability keys"),
        ({"default_params": {"resolution": "8K"}}, "default_params", "not in the capabilities"),
        ({"price": "99999999", "pricing": {"resolution": {"4K": 100}}}, "pricing", "dearest option"),
    ],
)
def test_model_pricing_and_capabilities_are_validated(admin_client, nano, changes, field, message):
    before = (nano.pricing, nano.capabilities, nano.price)
    response = admin_client.post(url(AIModel, "change", nano.pk), model_form_data(nano, **changes))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors.get(field, [])), errors
    nano.refresh_from_db()
    assert (nano.pricing, nano.capabilities, nano.price) == before


def test_a_pricing_rule_edited_in_the_admin_prices_the_next_request(admin_client, make_user, nano):
    from botapp.services.generation import GenerationService

    rule = {"resolution": {"2K": "2", "4K": "4"}}
    response = admin_client.post(url(AIModel, "change", nano.pk), model_form_data(nano, pricing=rule))
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = make_user(balance=50)
    request = GenerationService.create_request(
        user_id=user.pk, ai_model_id=nano.pk, prompt="a fox", params={"resolution": "4K"}, variants=2
    )
    assert request.price == Decimal("12.00")  # 1.50 × 4 × 2 variants
