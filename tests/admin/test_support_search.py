"""Finding a user from one search box: the selector (`botapp.selectors.support.find_user_ids`) for each
key, the users changelist through Django's test client, and the indexes the lookups read."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models.functions import Upper

from botapp.models import GenRequest, Payment, TgUser, TopUpPackage
from botapp.selectors.support import find_user_ids
from botapp.services.generation import GenerationService
from botapp.services.payments import PaymentService
from tests.admin.test_admin import url

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(make_user, nano):
    """alice paid (charge id "stars-charge-77"), bob generated, carol is just there."""
    alice = make_user(balance=10, username="Alice_Support", first_name="Alice")
    bob = make_user(balance=10, username="bob", first_name="Robert")
    carol = make_user(username="carol", first_name="Carol")
    package = TopUpPackage.objects.filter(is_active=True).first()
    payment = PaymentService.create_invoice(user_id=alice.pk, package_id=package.pk)
    PaymentService.complete(
        invoice_payload=payment.invoice_payload,
        provider_charge_id="stars-charge-77",
        total_amount=int(payment.amount),
        currency=payment.currency,
    )
    gen = GenerationService.create_request(user_id=bob.pk, ai_model_id=nano.pk, prompt="a lighthouse at dusk")
    return {"alice": alice, "bob": bob, "carol": carol, "payment": payment, "gen": gen}


# --- the selector -----------------------------------------------------------------------------------
def test_by_telegram_id(people):
    alice = people["alice"]
    assert find_user_ids(str(alice.telegram_id)) == {alice.pk}
    assert find_user_ids(f"  {alice.telegram_id} ") == {alice.pk}


def test_by_username_with_or_without_the_at_sign_any_case(people):
    alice = people["alice"]
    for term in ("@Alice_Support", "@alice_support", "ALICE_SUPPORT", "alice_support", " @alice_support "):
        assert find_user_ids(term) == {alice.pk}, term
    assert find_user_ids("@alice") == set(), "an exact key: a part of a username is the admin's text search"
    assert find_user_ids("@") == set()


def test_by_referral_code_exact_any_case(people):
    carol = people["carol"]
    assert find_user_ids(carol.referral_code) == {carol.pk}
    assert find_user_ids(carol.referral_code.lower()) == {carol.pk}
    assert find_user_ids(carol.referral_code[:-1]) == set()


def test_by_payment_charge_id_and_invoice_payload(people):
    alice, payment = people["alice"], people["payment"]
    assert find_user_ids("stars-charge-77") == {alice.pk}
    assert find_user_ids(payment.invoice_payload) == {alice.pk}
    assert find_user_ids("stars-charge-7") == set()


def test_by_generation_number(people):
    bob, gen = people["bob"], people["gen"]
    assert find_user_ids(f"#{gen.pk}") == {bob.pk}
    assert bob.pk in find_user_ids(str(gen.pk))
    assert find_user_ids("#999999999") == set()
    assert find_user_ids("#abc") == set()


def test_a_bare_number_is_the_union_of_telegram_id_user_id_and_generation(make_user, nano):
    owner = make_user(balance=10)
    gen = GenerationService.create_request(user_id=owner.pk, ai_model_id=nano.pk, prompt="x")
    # a user whose Telegram id and another whose pk equal the generation's number
    by_telegram_id = make_user(telegram_id=gen.pk)
    by_pk = TgUser.objects.filter(pk=gen.pk).first()
    expected = {owner.pk, by_telegram_id.pk} | ({by_pk.pk} if by_pk else set())
    assert find_user_ids(str(gen.pk)) == expected
    assert find_user_ids(f"#{gen.pk}") == {owner.pk}, "#N is only a generation number"


@pytest.mark.parametrize("term", ["", "   ", "no such thing", "0", "-5", "9" * 25, "x" * 300, "@nobody"])
def test_nothing_found(people, term):
    assert find_user_ids(term) == set()


def test_the_lookups_read_indexes(people):
    """Each key is an exact match on an indexed column: the plans name an index, never a full scan of
    the generations or payments tables (on PostgreSQL a tiny table would be scanned anyway, so
    sequential scans are switched off for the plan)."""
    queries = {
        "payment charge id": Payment.objects.filter(provider__in=Payment.Provider.values, provider_charge_id="x"),
        "invoice payload": Payment.objects.filter(invoice_payload="x"),
        "generation": GenRequest.objects.filter(pk=1),
        "telegram id": TgUser.objects.filter(telegram_id=1),
        "referral code": TgUser.objects.filter(referral_code__in=["ab", "AB"]),
        "username": TgUser.objects.alias(u=Upper("username")).filter(u="ALICE"),
    }
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET enable_seqscan = off")
        try:
            for name, queryset in queries.items():
                plan = queryset.values_list("pk").explain()
                if connection.vendor == "sqlite":
                    assert "SEARCH" in plan and "SCAN" not in plan, (name, plan)
                else:
                    assert "Index" in plan and "Seq Scan" not in plan, (name, plan)
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SET enable_seqscan = on")


# --- the users changelist ------------------------------------------------------------------------------
def found(admin_client, term: str) -> set[int]:
    response = admin_client.get(url(TgUser, "changelist"), {"q": term})
    assert response.status_code == 200, term
    return {user.pk for user in response.context["cl"].result_list}


def test_changelist_finds_each_key(admin_client, people):
    alice, bob, carol, gen = people["alice"], people["bob"], people["carol"], people["gen"]
    assert found(admin_client, str(alice.telegram_id)) == {alice.pk}
    assert found(admin_client, "@alice_support") == {alice.pk}
    assert found(admin_client, "@ALICE_SUPPORT") == {alice.pk}
    assert found(admin_client, carol.referral_code.lower()) == {carol.pk}
    assert found(admin_client, "stars-charge-77") == {alice.pk}
    assert found(admin_client, people["payment"].invoice_payload) == {alice.pk}
    assert found(admin_client, f"#{gen.pk}") == {bob.pk}
    assert bob.pk in found(admin_client, str(gen.pk))


def test_changelist_text_search_still_finds_names_and_parts(admin_client, people):
    alice, bob = people["alice"], people["bob"]
    assert found(admin_client, "Robert") == {bob.pk}, "first name (the text search)"
    assert found(admin_client, "@alice") == {alice.pk}, "no exact username: a part of one"
    assert found(admin_client, "nobody-like-this") == set()


def test_exact_username_comes_alone(admin_client, make_user):
    ann = make_user(username="ann")
    make_user(username="annabel")
    assert found(admin_client, "@ann") == {ann.pk}


def test_search_box_says_what_it_finds(admin_client, people):
    response = admin_client.get(url(TgUser, "changelist"))
    assert "@username" in response.content.decode()
    assert "#generation" in response.content.decode()
