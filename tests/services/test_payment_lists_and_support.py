"""Selectors and services behind the payment list, /paysupport, /terms and the referral notices, without the
bot: which payments are listed and how they page (botapp.selectors.payments), a line's text
(botapp.paylines), the one access point of the operator-editable texts (botapp.selectors.texts), a support
request's checks, storage, hourly limit, queueing and operator's copy (botapp.services.paysupport), and a
referral notice's text and sending rules (botapp.services.referral_notices), with a stub sender."""

from __future__ import annotations

import dataclasses
import itertools
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.cache import cache
from django.utils import timezone

from botapp import paylines, tasks
from botapp.i18n import LANGUAGES, catalogue
from botapp.models import BotText, Payment, SupportRequest, TgUser, Transaction, UserSettings
from botapp.selectors.payments import user_payments
from botapp.selectors.texts import TEXT_LIMITS, bot_text, check_bot_text
from botapp.services import notify, paysupport, referral_notices
from botapp.services.referral import ReferralService
from botapp.telegram.html import HtmlError, check_html
from botapp.telegram.sender import BotBlocked, RetryLater

pytestmark = pytest.mark.django_db
D = Decimal
_seq = itertools.count(1)


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


def pay(user, *, status="succeeded", minutes_ago=0, charge: str | None = "auto", provider="telegram_stars",
        amount="400", currency="XTR", tokens="100", bonus="0") -> Payment:  # fmt: skip
    n = next(_seq)
    if charge == "auto":
        charge = f"stx-charge-{n}" if status in ("succeeded", "refunded", "failed") else None
    row = Payment.objects.create(
        user=user,
        provider=provider,
        status=status,
        amount=D(amount),
        currency=currency,
        tokens=D(tokens),
        bonus_tokens=D(bonus),
        invoice_payload=f"test-list:{n}",
        provider_charge_id=charge,
        paid_at=timezone.now() - timedelta(minutes=minutes_ago) if status in ("succeeded", "refunded") else None,
    )
    Payment.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_ago))
    return Payment.objects.get(pk=row.pk)


# --- botapp.selectors.payments.user_payments -------------------------------------------------------------
def test_lists_what_money_moved_for_newest_first(make_user):
    user, other = make_user(), make_user()
    paid = pay(user, minutes_ago=30)
    refunded = pay(user, status="refunded", minutes_ago=20)
    failed = pay(user, status="failed", minutes_ago=15)
    card = pay(user, status="pending", provider="yookassa", charge="2f3c-yookassa", currency="RUB", minutes_ago=10)
    pay(user, status="pending", minutes_ago=5)  # an invoice never paid
    pay(user, status="cancelled", minutes_ago=4)  # an invoice replaced by a newer one
    pay(user, status="pending", charge="", minutes_ago=3)
    pay(other, minutes_ago=1)
    page = user_payments(user_id=user.pk)
    assert [line.id for line in page.items] == [card.pk, failed.pk, refunded.pk, paid.pk]
    assert (page.page, page.pages, page.total, page.per_page) == (1, 1, 4, 5)
    assert not page.has_previous and not page.has_next
    assert page.items[0].code == "2f3c-yookassa" and page.items[-1].code == paid.provider_charge_id
    assert page.items[-1].at == paid.paid_at


def test_pages_of_five_clamped_to_the_list(make_user):
    user = make_user()
    rows = [pay(user, minutes_ago=minutes) for minutes in range(12)]  # rows[0] is the newest
    first = user_payments(user_id=user.pk, page=1, per_page=5)
    assert [line.id for line in first.items] == [row.pk for row in rows[:5]]
    assert (first.pages, first.total, first.has_previous, first.has_next) == (3, 12, False, True)
    last = user_payments(user_id=user.pk, page=3, per_page=5)
    assert [line.id for line in last.items] == [row.pk for row in rows[10:]]
    assert (last.has_previous, last.has_next) == (True, False)
    assert user_payments(user_id=user.pk, page=99, per_page=5).page == 3
    assert user_payments(user_id=user.pk, page=-4, per_page=5).page == 1
    assert user_payments(user_id=user.pk, page=1, per_page=0).per_page == 1
    assert user_payments(user_id=user.pk, page=1, per_page=10_000).per_page == 50


def test_nothing_to_list(make_user):
    page = user_payments(user_id=make_user().pk, page=2)
    assert (page.items, page.page, page.pages, page.total) == ((), 1, 1, 0)


# --- botapp.paylines -------------------------------------------------------------------------------------------
def test_a_line_says_date_method_amount_tokens_status_and_code(make_user, settings):
    settings.TIME_ZONE = "UTC"
    user = make_user()
    row = pay(user, tokens="300", bonus="15", amount="1000", charge="stx<&>1")
    line = user_payments(user_id=user.pk).items[0]
    en = paylines.payment_line(line, "en", with_code=True)
    assert en.startswith("• <i>")
    assert "⭐ Stars · 1000 ⭐ → 300 + 15 bonus tok. · ✅ paid" in en
    assert en.endswith("🔖 <code>stx&lt;&amp;&gt;1</code>")
    ru = paylines.payment_line(line, "ru")
    assert "⭐ Звёзды · 1000 ⭐ → 300 + 15 бонусных ток. · ✅ оплачен" in ru and "🔖" not in ru
    assert row.paid_at and timezone.localtime(row.paid_at).strftime("%d.%m.%Y %H:%M") in ru
    card = pay(user, provider="yookassa", currency="RUB", amount="199.00", status="refunded")
    text = paylines.payment_line(user_payments(user_id=user.pk).items[0], "ru", with_code=True)
    assert card.pk and "💳 Карта · 199 ₽ → 100 ток. · ↩️ возвращён" in text
    assert paylines.fmt_amount(D("5"), "USD") == "5 USD"
    without_charge = dataclasses.replace(user_payments(user_id=user.pk).items[0], charge_id="", id=42)
    assert without_charge.code == "#42"
    assert paylines.payment_line(without_charge, "en", with_code=True).endswith("<code>#42</code>")


# --- botapp.selectors.texts ------------------------------------------------------------------------------------
def test_bot_texts_default_to_the_catalogue_in_each_language():
    assert bot_text(key="terms", lang="en").startswith("📄 <b>Terms of service</b>")
    assert bot_text(key="terms", lang="ru").startswith("📄 <b>Условия использования</b>")
    assert bot_text(key="terms", lang="de") == bot_text(key="terms", lang="ru")
    assert bot_text(key="terms", lang=None) == bot_text(key="terms", lang="ru")
    assert bot_text(key="paysupport", lang="en").startswith("🧾 <b>Help with payments</b>")
    for key, limit in TEXT_LIMITS.items():
        for lang in LANGUAGES:
            check_html(bot_text(key=key, lang=lang), limit=limit)
    with pytest.raises(KeyError):
        bot_text(key="privacy", lang="en")


def test_an_operators_text_wins_per_language_unless_telegram_would_refuse_it(caplog):
    BotText.objects.create(key="terms", text_ru="  <b>Наши</b> условия  ", text_en="")
    assert bot_text(key="terms", lang="ru") == "<b>Наши</b> условия"
    assert bot_text(key="terms", lang="en").startswith("📄 <b>Terms of service</b>"), "empty: the default"
    BotText.objects.filter(key="terms").update(text_en="<b>unclosed terms", text_ru="x" * 4097)
    with caplog.at_level("WARNING", logger="botapp.selectors.texts"):
        assert bot_text(key="terms", lang="en").startswith("📄 <b>Terms of service</b>")
        assert bot_text(key="terms", lang="ru").startswith("📄 <b>Условия использования</b>")
    assert len([r for r in caplog.records if "is not used" in r.getMessage()]) == 2
    BotText.objects.create(key="paysupport", text_en="💬 " + "y" * 1001)
    assert bot_text(key="paysupport", lang="en").startswith("🧾"), "the introduction shares its message"
    with pytest.raises(HtmlError):
        check_bot_text(key="paysupport", text="💬 " + "y" * 1001)


def test_every_key_of_these_features_exists_in_both_languages():
    sources = [
        "botapp/paylines.py",
        "botapp/handlers/paysupport.py",
        "botapp/handlers/terms.py",
        "botapp/handlers/balance.py",
        "botapp/handlers/help.py",
        "botapp/keyboards.py",
        "botapp/services/paysupport.py",
        "botapp/services/referral_notices.py",
    ]
    pattern = re.compile(r'"((?:paylist|paysupport|refnotice|terms|texts)\.[a-z_.]+)"')
    used = {key for path in sources for key in pattern.findall(Path(path).read_text())}
    used -= {"paylist.method", "paylist.status"}  # prefixes (botapp.paylines._label)
    used |= {f"paylist.method.{value}" for value in Payment.Provider.values}
    used |= {f"paylist.status.{value}" for value in Payment.Status.values}
    assert len(used) > 25
    for lang in LANGUAGES:
        assert sorted(key for key in used if key not in catalogue(lang)) == [], lang


# --- botapp.services.paysupport ----------------------------------------------------------------------------------
@pytest.fixture
def queued(monkeypatch) -> list[tuple]:
    """The forward_support_request tasks queued ((args), options), instead of a broker."""
    sent: list[tuple] = []
    monkeypatch.setattr(
        tasks.forward_support_request, "apply_async", lambda args, **options: sent.append((args, options))
    )
    return sent


@pytest.fixture
def submit(django_capture_on_commit_callbacks):
    """submit_request as the bot calls it; the tasks are queued on commit."""

    def call(**kwargs) -> SupportRequest:
        with django_capture_on_commit_callbacks(execute=True):
            return paysupport.submit_request(**kwargs)

    return call


def test_a_request_is_stored_with_the_payments_and_goes_to_every_operator(make_user, queued, submit, settings, caplog):
    settings.ADMIN_IDS = [501, 502]
    user = make_user()
    paid = pay(user, minutes_ago=5, bonus="5")
    pay(user, status="pending", charge=None)  # not listed, not attached
    with caplog.at_level("INFO", logger="botapp.services.paysupport"):
        request = submit(user_id=user.pk, text="  Paid 400 stars, got nothing  ")
    row = SupportRequest.objects.get()
    assert (row.pk, row.user_id, row.topic, row.status) == (request.pk, user.pk, "payment", "open")
    assert row.text == "Paid 400 stars, got nothing"
    assert row.payments == [
        {
            "id": paid.pk,
            "at": paid.paid_at.isoformat(),
            "provider": "telegram_stars",
            "status": "succeeded",
            "amount": "400.00",
            "currency": "XTR",
            "tokens": "100.00",
            "bonus_tokens": "5.00",
            "charge_id": paid.provider_charge_id,
        }
    ]
    assert paysupport.attached_lines(row.payments) == list(user_payments(user_id=user.pk).items)
    assert queued == [
        ((row.pk, 501), {"queue": settings.CELERY_SEND_QUEUE}),
        ((row.pk, 502), {"queue": settings.CELERY_SEND_QUEUE}),
    ]
    assert any(f"#{row.pk}" in r.getMessage() and "Paid 400 stars" in r.getMessage() for r in caplog.records)


def test_without_operators_the_request_is_stored_and_logged(make_user, queued, submit, settings, caplog):
    settings.ADMIN_IDS = []
    with caplog.at_level("INFO", logger="botapp.services.paysupport"):
        submit(user_id=make_user().pk, text="help")
    assert SupportRequest.objects.count() == 1 and queued == []
    assert any("ADMIN_IDS is empty" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", paysupport.SupportTextEmpty),
        ("   \n ", paysupport.SupportTextEmpty),
        ("x" * 2001, paysupport.SupportTextTooLong),
    ],
)
def test_a_refused_text_does_not_count(make_user, queued, submit, settings, text, error):
    settings.ADMIN_IDS, settings.SUPPORT_REQUESTS_PER_HOUR = [501], 1
    user = make_user()
    with pytest.raises(error):
        submit(user_id=user.pk, text=text)
    assert queued == [] and not SupportRequest.objects.exists() and not paysupport.limit_reached(user_id=user.pk)
    submit(user_id=user.pk, text="x" * 2000)
    assert len(queued) == 1 and paysupport.limit_reached(user_id=user.pk)


def test_at_most_n_requests_an_hour_per_user(make_user, queued, submit, settings):
    settings.ADMIN_IDS, settings.SUPPORT_REQUESTS_PER_HOUR = [501], 2
    user, other = make_user(), make_user()
    for _ in range(2):
        submit(user_id=user.pk, text="help")
    assert paysupport.limit_reached(user_id=user.pk)
    with pytest.raises(paysupport.SupportLimitReached) as refused:
        submit(user_id=user.pk, text="help!!")
    assert refused.value.params == {"limit": 2}
    submit(user_id=other.pk, text="me too")  # per user
    assert len(queued) == 3 and SupportRequest.objects.count() == 3
    first = SupportRequest.objects.filter(user=user).order_by("pk").first()
    SupportRequest.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(minutes=61))
    assert not paysupport.limit_reached(user_id=user.pk), "an hour later one more is allowed"
    submit(user_id=user.pk, text="again")
    assert paysupport.limit_reached(user_id=user.pk)
    settings.SUPPORT_REQUESTS_PER_HOUR = 0  # no limit
    for _ in range(3):
        submit(user_id=user.pk, text="again")
    assert len(queued) == 7 and not paysupport.limit_reached(user_id=user.pk)


def test_the_operators_copy_names_the_user_and_lists_the_payments_with_codes(make_user, submit, settings):
    settings.ADMIN_IDS = []
    user = make_user(username="anna_k", first_name="Anna <3")
    UserSettings.objects.filter(user=user).update(language="en")
    first = pay(user, minutes_ago=10)
    request = submit(user_id=user.pk, text="where are my <b>tokens</b>?")
    pay(user)  # paid after the request: not in its copy
    text = paysupport.operator_text(request=SupportRequest.objects.select_related("user").get(), lang="en")
    assert text.startswith(f"🆘 <b>Payment support request #{request.pk}</b>")
    assert f'<a href="tg://user?id={user.telegram_id}">Anna &lt;3</a> @anna_k' in text
    assert f"Telegram id <code>{user.telegram_id}</code> · user #{user.pk} · language: en" in text
    assert "where are my &lt;b&gt;tokens&lt;/b&gt;?" in text
    assert "(latest 1 of 1)" in text and f"<code>{first.provider_charge_id}</code>" in text
    check_html(text)
    ru = paysupport.operator_text(request=request, lang="ru")
    assert "Обращение по оплате" in ru and "(последние 1 из 1)" in ru
    bare = submit(user_id=make_user().pk, text="?")
    assert "💳 No payments." in paysupport.operator_text(request=bare, lang="en")
    assert paysupport.attached_lines([{"id": "x"}, {"at": "yesterday"}]) == []


class StubSender:
    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.sent: list[tuple[int, str]] = []

    def send_message(self, chat_id: int, text: str, **kwargs):
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((chat_id, text))


def test_an_operators_copy_is_sent_once_and_retried_on_flood_control(make_user, submit, settings, monkeypatch):
    settings.ADMIN_IDS = []
    stub = StubSender(RetryLater("flood", retry_in=3.0))
    monkeypatch.setattr(notify, "get_sender", lambda: stub)
    request = submit(user_id=make_user().pk, text="help")
    assert paysupport.send_request(request_id=request.pk, chat_id=501) == 3.0 and stub.sent == []
    assert paysupport.send_request(request_id=request.pk, chat_id=501) is None and len(stub.sent) == 1
    assert paysupport.send_request(request_id=request.pk, chat_id=501) is None and len(stub.sent) == 1, "once"
    assert paysupport.send_request(request_id=request.pk, chat_id=502) is None and len(stub.sent) == 2
    assert paysupport.send_request(request_id=999_999, chat_id=501) is None and len(stub.sent) == 2


# --- botapp.services.referral_notices ----------------------------------------------------------------------------
def referred_pair(make_user, *, language="en", notifications=True):
    referrer = make_user(first_name="Ben", language_code=language)
    UserSettings.objects.filter(user=referrer).update(language=language, notifications=notifications)
    friend = make_user(first_name="Anna", username="anna")
    TgUser.objects.filter(pk=friend.pk).update(referred_by=referrer)
    return referrer, friend


def reward(friend, *, first: bool, **kw) -> Transaction:
    payment = pay(friend, **kw)
    result = ReferralService.reward_for_topup(payment=payment, is_first_topup=first)
    return Transaction.objects.get(pk=result.transaction_ids[0])


def test_a_reward_is_queued_on_commit_once(make_user, monkeypatch, settings, django_capture_on_commit_callbacks):
    queued: list[tuple] = []
    monkeypatch.setattr(tasks.notify_referral_reward, "apply_async", lambda args, **o: queued.append((args, o)))
    _, friend = referred_pair(make_user)
    payment = pay(friend)
    with django_capture_on_commit_callbacks(execute=True):
        result = ReferralService.reward_for_topup(payment=payment, is_first_topup=True)
        assert queued == []
    assert queued == [((result.transaction_ids[0],), {"queue": settings.CELERY_SEND_QUEUE})]
    with django_capture_on_commit_callbacks(execute=True):
        assert ReferralService.reward_for_topup(payment=payment, is_first_topup=True).replayed
    assert len(queued) == 1


@pytest.mark.parametrize(
    ("lang", "first", "later"),
    [
        (
            "en",
            "🎉 <b>Anna</b>, the friend you invited, has made their first top-up! You get <b>+15</b> bonus tokens.",
            "💸 <b>Anna</b>, the friend you invited, has topped up again: you get <b>+5</b> bonus tokens (5% of",
        ),
        (
            "ru",
            "🎉 Первое пополнение от приглашённого вами друга <b>Anna</b>! Вам начислено <b>+15</b> бонусных токенов.",
            "💸 Новое пополнение от приглашённого вами друга <b>Anna</b>: вам начислено <b>+5</b> бонусных ток. (5% от",
        ),
    ],
)
def test_the_first_and_the_later_rewards_read_differently(make_user, settings, lang, first, later):
    settings.REFERRAL_FIRST_TOPUP_BONUS, settings.REFERRAL_PERCENT = D(10), D(5)
    _, friend = referred_pair(make_user, language=lang)
    one = reward(friend, first=True, minutes_ago=5)
    two = reward(friend, first=False)
    assert referral_notices.is_first_reward(one) and not referral_notices.is_first_reward(two)
    assert referral_notices.referral_notice_text(row=one, lang=lang).startswith(first)
    text = referral_notices.referral_notice_text(row=two, lang=lang)
    assert text.startswith(later) and text.endswith("20</b> tokens." if lang == "en" else "20</b> ток.")


def test_a_referrer_is_told_once_unless_notifications_are_off(make_user, monkeypatch):
    stub = StubSender(RetryLater("flood", retry_in=2.0))
    monkeypatch.setattr(notify, "get_sender", lambda: stub)
    referrer, friend = referred_pair(make_user)
    row = reward(friend, first=True)
    assert referral_notices.send_referral_notice(transaction_id=row.pk) == 2.0 and stub.sent == []
    assert referral_notices.send_referral_notice(transaction_id=row.pk) is None
    assert referral_notices.send_referral_notice(transaction_id=row.pk) is None
    assert [chat_id for chat_id, _ in stub.sent] == [referrer.telegram_id]

    UserSettings.objects.filter(user=referrer).update(notifications=False)
    quiet = reward(friend, first=False)
    assert referral_notices.send_referral_notice(transaction_id=quiet.pk) is None and len(stub.sent) == 1
    assert referral_notices.send_referral_notice(transaction_id=999_999) is None


def test_a_referrer_who_blocked_the_bot_is_marked(make_user, monkeypatch):
    stub = StubSender(BotBlocked("403: bot was blocked by the user"))
    monkeypatch.setattr(notify, "get_sender", lambda: stub)
    referrer, friend = referred_pair(make_user)
    row = reward(friend, first=True)
    assert referral_notices.send_referral_notice(transaction_id=row.pk) is None
    assert TgUser.objects.get(pk=referrer.pk).bot_blocked
    later = reward(friend, first=False)
    assert referral_notices.send_referral_notice(transaction_id=later.pk) is None and stub.sent == []
