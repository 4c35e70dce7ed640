"""The user's row every update reads: one prepared SELECT (botapp/selectors/prepared.py), the same
values the ORM gives, and writes only when upsert_user would write."""

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from botapp.models import TgUser, Transaction, UserSettings
from botapp.selectors.prepared import Prepared
from botapp.selectors.users import USER_COLUMNS, user_row
from botapp.services.users import TelegramProfile, refresh_user
from botapp.snapshots import BalanceView, UserContext

pytestmark = pytest.mark.django_db


def profile_of(user: TgUser, **changes) -> TelegramProfile:
    fields = {
        "telegram_id": user.telegram_id,
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "language_code": user.language_code,
        "is_premium": user.is_premium,
    }
    return TelegramProfile(**{**fields, **changes})


def test_the_prepared_row_equals_what_the_orm_reads(make_user):
    user = make_user(balance="12.50", bonus="1.25", first_name="Анна", xp=40)
    UserSettings.objects.filter(user=user).update(aspect_ratio="16:9", send_as_file=True)
    expected = TgUser.objects.filter(pk=user.pk).values_list(*USER_COLUMNS).get()
    row = user_row(telegram_id=user.telegram_id)
    assert tuple(row.values()) == expected
    assert row["balance__balance"] == Decimal("12.50") and isinstance(row["balance__balance"], Decimal)
    assert row["created_at"] == user.created_at and row["created_at"].tzinfo is not None
    assert user_row(telegram_id=user.telegram_id + 10**6) is None


def test_a_user_without_settings_gets_the_language_of_their_client(make_user):
    user = make_user(language_code="en-US")
    UserSettings.objects.filter(user=user).delete()
    context = UserContext.from_row(user_row(telegram_id=user.telegram_id), is_new=False)
    assert context.language == "en" and context.aspect_ratio == "1:1"


def test_a_click_costs_one_select_and_writes_nothing(make_user):
    user = make_user(balance=5)
    refresh_user(profile_of(user))  # last_seen_at is fresh now
    with CaptureQueriesContext(connection) as queries:
        row, created = refresh_user(profile_of(user))
    assert len(queries) == 1 and queries[0]["sql"].lstrip().upper().startswith("SELECT")
    assert not created and row["balance__balance"] == Decimal("5.00")
    context = UserContext.from_row(row, is_new=False)
    assert context.balance == BalanceView(Decimal("5.00"), Decimal("0.00"))


@pytest.mark.parametrize(
    "change",
    [{"first_name": "Новое имя"}, {"username": "renamed"}, {"is_premium": True}, {"language_code": "en"}],
)
def test_a_changed_profile_is_written(make_user, change):
    user = make_user()
    row, created = refresh_user(profile_of(user, **change))
    assert not created
    name, value = next(iter(change.items()))
    assert row[name] == value
    assert getattr(TgUser.objects.get(pk=user.pk), name) == value


def test_last_seen_is_written_once_a_minute_and_a_blocked_bot_is_unblocked(make_user):
    user = make_user()
    old = timezone.now() - timedelta(minutes=5)
    TgUser.objects.filter(pk=user.pk).update(last_seen_at=old, bot_blocked=True)
    row, _ = refresh_user(profile_of(user))
    stored = TgUser.objects.get(pk=user.pk)
    assert stored.last_seen_at > old and not stored.bot_blocked
    assert row["last_seen_at"] == stored.last_seen_at and row["bot_blocked"] is False


def test_a_first_contact_registers_the_user_with_balance_and_settings():
    row, created = refresh_user(TelegramProfile(telegram_id=777_000_111, first_name="New", language_code="en"))
    assert created and row["settings__language"] == "en" and row["balance__balance"] == Decimal("0.00")
    again, created_again = refresh_user(TelegramProfile(telegram_id=777_000_111, first_name="New", language_code="en"))
    assert not created_again and again["id"] == row["id"]


def test_a_prepared_read_takes_only_its_declared_arguments_of_their_type(make_user):
    user = make_user()
    with pytest.raises(TypeError):
        user_row(telegram_id=str(user.telegram_id))
    with pytest.raises(TypeError):
        Prepared(lambda when: TgUser.objects.filter(created_at__gte=when), when=object)


def test_an_argument_the_sql_does_not_carry_is_refused_at_compile_time():
    # A constant folded into the query (here the argument is never used) would silently read the
    # wrong rows: compiling refuses it.
    broken = Prepared(lambda telegram_id: TgUser.objects.filter(telegram_id=1).values_list("id"), telegram_id=int)
    with pytest.raises(ValueError, match="telegram_id"):
        broken.rows(telegram_id=5)


def test_prepared_reads_keep_converters_of_every_column(make_user):
    user = make_user(balance=3)
    read = Prepared(
        lambda user_id, kind: Transaction.objects.filter(user_id=user_id, kind=kind)
        .order_by("id")
        .values_list("amount", "created_at", "kind"),
        user_id=int,
        kind=str,
    )
    orm = Transaction.objects.filter(user_id=user.pk, kind="admin_adjustment").order_by("id")
    expected = list(orm.values_list("amount", "created_at", "kind"))
    assert expected and read.rows(user_id=user.pk, kind="admin_adjustment") == expected
    assert read.rows(user_id=user.pk, kind="no such kind") == []


def test_the_balance_screen_lines_name_the_model_of_each_charge(make_user, nano):
    from botapp import bridge
    from botapp.models import AIModel, GenRequest
    from botapp.services.generation import GenerationService

    user = make_user(balance=10)
    first = GenerationService.create_request(user_id=user.pk, ai_model_id=nano.pk, prompt="a cat")
    second = GenerationService.create_request(user_id=user.pk, ai_model_id=nano.pk, prompt="a dog")
    GenRequest.objects.filter(pk=second.pk).update(ai_model=None)  # the model row deleted since
    read = bridge.balance_with_ledger.func.__wrapped__  # the sync read behind the bridge
    balance, lines = read(user.pk)
    assert balance == BalanceView(Decimal("10") - 2 * nano.price, Decimal("0.00"))
    assert [(line.model_label, line.request_id) for line in lines[:2]] == [
        (second.model, second.pk),
        (str(AIModel.objects.get(pk=nano.pk)), first.pk),
    ]
    assert lines[-1].model_label == "" and lines[-1].kind == "admin_adjustment"


@pytest.mark.parametrize("with_settings", [True, False])
def test_a_loaded_user_gives_the_same_context_as_the_prepared_row_without_the_balance(make_user, with_settings):
    user = make_user(balance=4, language_code="en", xp=12)
    if with_settings:
        UserSettings.objects.filter(user=user).update(aspect_ratio="9:16", notifications=False)
    else:
        UserSettings.objects.filter(user=user).delete()
    loaded = TgUser.objects.select_related("settings").get(pk=user.pk)
    from_row = UserContext.from_row(user_row(telegram_id=user.telegram_id), is_new=False)
    from_user = UserContext.from_user(loaded, is_new=False)
    assert from_row.balance == BalanceView(Decimal("4.00"), Decimal("0.00")) and from_user.balance is None
    assert from_user == dataclasses.replace(from_row, balance=None)
