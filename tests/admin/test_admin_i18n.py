"""The admin in Russian (ADMIN_LANGUAGE=ru): the pages read in Russian, and the catalogue
(botapp/locale/ru/LC_MESSAGES/django.po) leaves nothing untranslated or fuzzy, covers every string of the
code (what `make messages` would add), and its committed .mo is compiled from it."""

from __future__ import annotations

import gettext
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from botapp.models import AIModel, Broadcast, Payment, TgUser, TopUpPackage, Transaction
from botapp.services.balance import BalanceService
from botapp.services.payments import PaymentService
from tests.pofile import parse

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "botapp/locale/ru/LC_MESSAGES/django.po"
MO = PO.with_suffix(".mo")


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


# --- the catalogue ---------------------------------------------------------------------------------
def test_every_message_is_translated():
    entries = parse(PO)
    assert len(entries) > 300
    left = [str(entry) for entry in entries if not entry.translated]
    assert not left, "untranslated or fuzzy in django.po (translate them, then `make messages`):\n" + "\n".join(left)


def test_the_committed_mo_is_compiled_from_the_po():
    with MO.open("rb") as fp:
        compiled = gettext.GNUTranslations(fp)._catalog
    stale = []
    for entry in parse(PO):
        if not entry.translated:
            continue  # test_every_message_is_translated says so
        key = f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid
        if entry.msgid_plural:
            if any(compiled.get((key, n)) != text for n, text in entry.msgstr.items()):
                stale.append(entry)
        elif compiled.get(key) != entry.msgstr[0]:
            stale.append(entry)
    assert not stale, "django.mo is older than django.po: run `make messages` and commit the .mo\n" + "\n".join(
        map(str, stale)
    )


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="needs GNU gettext (xgettext) to collect the strings")
def test_the_catalogue_has_every_string_of_the_code(tmp_path, monkeypatch):
    """makemessages over a copy of the code, merged into a copy of the catalogue: nothing new appears
    untranslated (a string added to the code without `make messages` and a translation fails here)."""
    copy = tmp_path / "botapp"
    shutil.copytree(ROOT / "botapp", copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo", "locales", "static"))
    monkeypatch.chdir(tmp_path)
    call_command("makemessages", locale=["ru"], verbosity=0, no_obsolete=True)
    merged = parse(copy / "locale/ru/LC_MESSAGES/django.po")
    left = [str(entry) for entry in merged if not entry.translated]
    assert not left, "strings of the code missing from django.po (run `make messages`, translate):\n" + "\n".join(left)
    assert {(e.msgctxt, e.msgid) for e in merged} == {(e.msgctxt, e.msgid) for e in parse(PO)}, (
        "django.po holds strings the code no longer has: run `make messages`"
    )


# --- the pages -------------------------------------------------------------------------------------
@pytest.fixture
def russian(settings):
    settings.LANGUAGE_CODE = "ru"
    with translation.override("ru"):
        yield


@pytest.fixture
def shop(make_user, nano):
    user = make_user(balance=20, username="olga")
    package = TopUpPackage.objects.filter(is_active=True).first()
    payment = PaymentService.create_invoice(user_id=user.pk, package_id=package.pk)
    PaymentService.complete(
        invoice_payload=payment.invoice_payload,
        provider_charge_id="charge-ru-1",
        total_amount=int(payment.amount),
        currency=payment.currency,
    )
    BalanceService.admin_adjust(user_id=user.pk, amount=-1, reason="проверка", key="ru-test", notify=False)
    return user


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.content.decode()


def assert_reads(html: str, *russian: str, english: tuple[str, ...] = ()) -> None:
    missing = [text for text in russian if text not in html]
    assert not missing, f"not on the page: {missing}"
    left = [text for text in english if text in html]
    assert not left, f"still in English: {left}"


SIDEBAR = ("Сводка", "Пользователи и поддержка", "Финансы", "Журнал операций", "Платежи", "Каталог",
           "Запросы на генерацию", "Рассылки", "Администрирование")  # fmt: skip


def test_dashboard_in_russian(admin_client, russian, shop):
    html = page(admin_client, reverse("admin:index"))
    assert_reads(
        html,
        *SIDEBAR,
        "Новые пользователи",
        "Выручка, ₽",
        "Маржа по моделям",
        "Запросы по дням",
        "Рефералы и промокоды",
        "30 дней",
        "Применить",
        english=("New users", "Revenue", "Margin per model", "Requests per day", "This month", "Apply"),
    )


def test_users_list_in_russian(admin_client, russian, shop):
    html = page(admin_client, url(TgUser, "changelist"))
    assert_reads(html, *SIDEBAR, "Пользователи Telegram", "Фильтры", english=("Filters", "Users &amp; support"))


def test_ledger_and_payments_lists_in_russian(admin_client, russian, shop):
    ledger = page(admin_client, url(Transaction, "changelist"))
    assert_reads(
        ledger,
        "Журнал операций",
        "Связано с",
        "Сумма",
        "Баланс после",
        "Пополнение",
        "Корректировка оператора",
        "Выгрузить выбранные в CSV",
        english=("Linked to", "Admin adjustment", "Export selected to CSV", "Balance after"),
    )
    payments = page(admin_client, url(Payment, "changelist"))
    assert_reads(
        payments,
        "Платежи",
        "ID платежа",
        "Токены + бонус",
        "Успешно",
        "Пользователь",
        english=("Charge ID", "Tokens + bonus", "Succeeded"),
    )


def test_a_change_page_in_russian(admin_client, russian, nano):
    html = page(admin_client, url(AIModel, "change", nano.pk))
    assert_reads(
        html,
        "Себестоимость у провайдера (для маржи в сводке)",
        "Возможности",
        "API провайдера",
        "ID модели у провайдера",
        english=("Provider cost", "Capabilities", "API backend"),
    )


def test_the_broadcast_pages_in_russian(admin_client, russian, make_user):
    make_user()
    broadcast = Broadcast.objects.create(text="Привет")
    html = page(admin_client, url(Broadcast, "change", broadcast.pk))
    assert_reads(
        html,
        "Аудитория",
        "Сначала отправить себе",
        "Запустить…",
        "сейчас 1 пользователь",
        "Не запущена.",
        english=("Audience", "Send to me first", "Not started."),
    )
    confirm = page(admin_client, url(Broadcast, "start", broadcast.pk))
    assert_reads(confirm, f"Запустить рассылку №{broadcast.pk} (статус: Черновик)?", "Получателей сейчас: 1.")
    response = admin_client.post(url(Broadcast, "pause", broadcast.pk), follow=True)
    assert any("приостанавливать нечего" in str(m) for m in response.context["messages"])
