"""Broadcasts without sending: Telegram HTML and photo checks, the audience segments on real data,
and the state changes (start once, never an empty audience, schedule, pause / resume / cancel)."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from botapp.models import Broadcast, Payment, TgUser, UserSettings
from botapp.selectors import broadcasts as selectors
from botapp.services import broadcasts as service
from botapp.services.broadcasts import BroadcastError
from botapp.services.generation import GenerationService
from botapp.telegram.html import HtmlError, check_html


# --- Telegram HTML --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, visible",
    [
        ("plain text", 10),
        ("<b>bold</b> <strong>s</strong> <i>i</i> <em>e</em> <u>u</u> <ins>n</ins>", 14),
        ("<s>a</s><strike>b</strike><del>c</del>", 3),
        ('<span class="tg-spoiler">x</span><tg-spoiler>y</tg-spoiler>', 2),
        ('<a href="https://example.com/?a=1&amp;b=2">link</a>', 4),
        ("<a href='tg://user?id=1'>me</a>", 2),
        ("<code>x &lt; y</code>", 5),
        ('<pre><code class="language-python">print(1)</code></pre>', 8),
        ("<blockquote expandable>quote</blockquote>", 5),
        ('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>', 2),
        ("&lt;&gt;&amp;&quot;&#33;&#x41;", 6),
        ("a > b", 5),
        ("<b>bold <i>and italic <u>and underlined</u></i></b>", 30),
        ("Привет, мир", 11),
        ("😀", 2),  # UTF-16 code units, as Telegram counts
    ],
)
def test_valid_telegram_html(text, visible):
    assert check_html(text) == visible


@pytest.mark.parametrize(
    "text, reason",
    [
        ("<b>bold", "never closed"),
        ("<b>bold</i>", "does not match"),
        ("</b>", "closes nothing"),
        ("<b><i>x</b></i>", "does not match"),
        ("<div>x</div>", "unsupported tag <div>"),
        ("<img src=x>", "unsupported tag <img>"),
        ("1 < 2", "bare '<'"),
        ("Tom & Jerry", "bare '&'"),
        ("&nbsp;", "bare '&'"),
        ('<a href="javascript:alert(1)">x</a>', "only http(s)://"),
        ("<a>x</a>", "needs href"),
        ('<a href="https://a"><a href="https://b">x</a></a>', "cannot contain another link"),
        ('<span class="red">x</span>', "tg-spoiler"),
        ('<b class="x">x</b>', "attribute 'class' is not allowed"),
        ("<code><b>x</b></code>", "no formatting inside"),
        ("<blockquote><blockquote>x</blockquote></blockquote>", "cannot be nested"),
        ('<tg-emoji emoji-id="abc">x</tg-emoji>', "numeric emoji-id"),
        ("&#0;", "not a valid character"),
        ("<b></b>  ", "empty"),
        ("x" * 4097, "Telegram allows 4096"),
    ],
)
def test_invalid_telegram_html_is_refused_with_the_reason(text, reason):
    with pytest.raises(HtmlError, match=reason.replace("(", r"\(").replace(")", r"\)").replace("'", "'")):
        check_html(text)


def test_limits_count_the_visible_text_only():
    assert check_html("<b>" + "x" * 4096 + "</b>") == 4096
    service.check_text(text="x" * 1024, with_photo=True)
    with pytest.raises(BroadcastError, match="Telegram allows 1024"):
        service.check_text(text="x" * 1025, with_photo=True)
    service.check_text(text="x" * 1025, with_photo=False)


# --- photos and buttons ---------------------------------------------------------------------------------
def image_file(size: tuple[int, int], name: str = "p.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("1", size).save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def test_photo_limits():
    service.check_photo(file=image_file((1280, 720)))
    service.check_photo(file=image_file((5000, 5000)))  # exactly 10000 in total
    with pytest.raises(BroadcastError, match="width \\+ height is at most 10000"):
        service.check_photo(file=image_file((5001, 5000)))
    with pytest.raises(BroadcastError, match="ratio of at most 20"):
        service.check_photo(file=image_file((2100, 100)))
    big = image_file((10, 10))
    big.size = 10 * 1024 * 1024 + 1
    with pytest.raises(BroadcastError, match="up to 10 MB"):
        service.check_photo(file=big)
    with pytest.raises(BroadcastError, match="cannot be read as an image"):
        service.check_photo(file=SimpleUploadedFile("x.png", b"not an image"))


@pytest.mark.parametrize(
    "text, url, screen, reason",
    [
        ("", "", "", None),
        ("Open", "https://example.com", "", None),
        ("", "", "top", None),
        ("Top up now", "", "top", None),
        ("Open", "https://example.com", "top", "not both"),
        ("", "https://example.com", "", "needs a text"),
        ("Open", "", "", "opens nothing"),
        ("Open", "ftp://example.com", "", "must start with"),
        ("Open", "", "nope", "unknown bot screen"),
    ],
)
def test_button_checks(text, url, screen, reason):
    if reason is None:
        service.check_button(text=text, url=url, screen=screen)
    else:
        with pytest.raises(BroadcastError, match=reason):
            service.check_button(text=text, url=url, screen=screen)


def test_every_screen_is_a_screen_callback_the_bot_handles():
    from botapp.callbacks import MenuAction, ScreenCb
    from botapp.handlers.screens import SCREENS

    for screen in Broadcast.Screen.values:
        if screen:
            broadcast = Broadcast(text="x", button_screen=screen)
            markup = service.keyboard(broadcast=broadcast, lang="ru")
            data = markup.inline_keyboard[0][0].callback_data
            assert ScreenCb.unpack(data).screen == MenuAction(screen)
            assert MenuAction(screen) in SCREENS


# --- the audience -----------------------------------------------------------------------------------------


def ids(broadcast: Broadcast) -> set[int]:
    return set(selectors.audience(broadcast=broadcast).values_list("pk", flat=True))


@pytest.fixture
def crowd(make_user, nano):
    now = timezone.now()
    users = {
        "fresh": make_user(language_code="en"),
        "idle": make_user(language_code="en"),
        "payer": make_user(balance=30),
        "rich_bonus": make_user(bonus=5),
        "creator": make_user(balance=10, language_code="en"),
        "veteran": make_user(level=5),
        "blocked": make_user(bot_blocked=True),
        "banned": make_user(is_banned=True),
    }
    users["invited"] = make_user(referred_by=users["payer"])
    TgUser.objects.filter(pk=users["idle"].pk).update(last_seen_at=now - timedelta(days=40))
    TgUser.objects.filter(pk=users["veteran"].pk).update(created_at=now - timedelta(days=100))
    Payment.objects.create(
        user=users["payer"], provider="telegram_stars", status="succeeded", amount=50, currency="XTR",
        invoice_payload="p-1",
    )  # fmt: skip
    Payment.objects.create(
        user=users["fresh"], provider="telegram_stars", status="pending", amount=50, currency="XTR",
        invoice_payload="p-2",
    )  # fmt: skip
    GenerationService.create_request(user_id=users["creator"].pk, ai_model_id=nano.pk, prompt="a cat")
    return {name: user.pk for name, user in users.items()}


@pytest.mark.django_db
def test_each_segment(crowd):
    everyone = set(crowd.values()) - {crowd["blocked"], crowd["banned"]}
    now = timezone.now()
    cases = {
        (): everyone,
        (("active_within_days", 30),): everyone - {crowd["idle"]},
        (("paid", "paid"),): {crowd["payer"]},
        (("paid", "never"),): everyone - {crowd["payer"]},
        (("has_balance", True),): {crowd["payer"], crowd["rich_bonus"], crowd["creator"]} - set(),
        (("language", "en"),): {crowd["fresh"], crowd["idle"], crowd["creator"]},
        (("language", "ru"),): everyone - {crowd["fresh"], crowd["idle"], crowd["creator"]},
        (("level_min", 2),): {crowd["veteran"]},
        (("level_max", 1),): everyone - {crowd["veteran"]},
        (("never_generated", True),): everyone - {crowd["creator"]},
        (("joined_before", now - timedelta(days=50)),): {crowd["veteran"]},
        (("joined_after", now - timedelta(days=50)),): everyone - {crowd["veteran"]},
        (("referred_only", True),): {crowd["invited"]},
    }
    for fields, expected in cases.items():
        assert ids(Broadcast(text="x", **dict(fields))) == expected, fields


@pytest.mark.django_db
def test_segments_combine(crowd):
    assert ids(Broadcast(text="x", language="en", has_balance=True)) == {crowd["creator"]}
    assert ids(Broadcast(text="x", language="en", has_balance=True, never_generated=True)) == set()
    assert ids(Broadcast(text="x", paid="never", active_within_days=30, language="en")) == {
        crowd["fresh"], crowd["creator"],
    }  # fmt: skip
    assert selectors.audience_count(broadcast=Broadcast(text="x", language="en")) == 3


@pytest.mark.django_db
def test_the_language_is_the_bots_setting(crowd):
    UserSettings.objects.filter(user_id=crowd["veteran"]).update(language="en")
    assert crowd["veteran"] in ids(Broadcast(text="x", language="en"))


def test_paid_broadcast_cost():
    assert selectors.paid_cost_stars(recipients=12_345) == Decimal("1234.5")
    assert selectors.paid_cost_stars(recipients=0) == Decimal("0.0")


# --- state changes -------------------------------------------------------------------------------------------
@pytest.fixture
def no_dispatch(monkeypatch):
    dispatched: list[int] = []
    monkeypatch.setattr(service, "_dispatch", lambda broadcast_id, countdown=None: dispatched.append(broadcast_id))
    return dispatched


@pytest.mark.django_db
def test_start_once_only(make_user, no_dispatch):
    make_user()
    broadcast = Broadcast.objects.create(text="Hello")
    started = service.start(broadcast_id=broadcast.pk, by="alice")
    assert (started.status, started.created_by) == ("sending", "alice") and started.started_at
    assert no_dispatch == [broadcast.pk]
    with pytest.raises(BroadcastError, match="not a draft"):
        service.start(broadcast_id=broadcast.pk)
    assert no_dispatch == [broadcast.pk]


@pytest.mark.django_db
def test_a_concurrent_start_is_refused(make_user, no_dispatch, monkeypatch):
    """Two operators press Start at once: the conditional UPDATE lets one through."""
    make_user()
    broadcast = Broadcast.objects.create(text="Hello")
    original = service.check

    def meanwhile(**kwargs):
        original(**kwargs)
        Broadcast.objects.filter(pk=broadcast.pk).update(status="sending")  # the other operator won

    monkeypatch.setattr(service, "check", meanwhile)
    with pytest.raises(BroadcastError, match="started by someone else"):
        service.start(broadcast_id=broadcast.pk)
    assert no_dispatch == []


@pytest.mark.django_db
def test_an_empty_audience_cannot_be_started(make_user, no_dispatch):
    make_user(language_code="ru", bot_blocked=True)
    make_user(language_code="en", is_banned=True)
    broadcast = Broadcast.objects.create(text="Hello")
    with pytest.raises(BroadcastError, match="audience is empty"):
        service.start(broadcast_id=broadcast.pk)
    assert Broadcast.objects.get(pk=broadcast.pk).status == "draft" and no_dispatch == []


@pytest.mark.django_db
def test_invalid_text_cannot_be_started(make_user, no_dispatch):
    make_user()
    broadcast = Broadcast.objects.create(text="<b>unclosed")
    with pytest.raises(BroadcastError, match="never closed"):
        service.start(broadcast_id=broadcast.pk)
    assert Broadcast.objects.get(pk=broadcast.pk).status == "draft"


@pytest.mark.django_db
def test_scheduled_broadcast_starts_when_due(make_user, no_dispatch):
    make_user()
    later = timezone.now() + timedelta(hours=1)
    broadcast = Broadcast.objects.create(text="Hello", send_at=later)
    assert service.start(broadcast_id=broadcast.pk).status == "scheduled"
    assert no_dispatch == []
    assert service.tick() == {"started": 0, "dispatched": 0}
    assert service.begin_due(now=later + timedelta(seconds=1)) == [broadcast.pk]
    assert Broadcast.objects.get(pk=broadcast.pk).status == "sending" and no_dispatch == [broadcast.pk]
    assert service.begin_due(now=later + timedelta(seconds=2)) == []  # once


@pytest.mark.django_db
def test_tick_gives_a_runnerless_broadcast_a_runner(make_user, no_dispatch):
    make_user()
    broadcast = Broadcast.objects.create(text="Hello")
    service.start(broadcast_id=broadcast.pk)
    assert service.tick() == {"started": 0, "dispatched": 1}
    Broadcast.objects.filter(pk=broadcast.pk).update(runner_token="x", runner_until=timezone.now() + timedelta(60))
    assert service.tick() == {"started": 0, "dispatched": 0}


@pytest.mark.django_db
def test_pause_resume_cancel_transitions(make_user, no_dispatch, monkeypatch):
    alerted: list[str] = []
    from botapp.services import alerts

    monkeypatch.setattr(alerts, "alert_operators", lambda **kw: alerted.append(kw["key"]) or True)
    make_user()
    broadcast = Broadcast.objects.create(text="Hello")
    assert not service.pause(broadcast_id=broadcast.pk)  # a draft is not running
    assert not service.cancel(broadcast_id=broadcast.pk)
    service.start(broadcast_id=broadcast.pk)
    assert service.pause(broadcast_id=broadcast.pk) and not service.pause(broadcast_id=broadcast.pk)
    assert service.resume(broadcast_id=broadcast.pk) and not service.resume(broadcast_id=broadcast.pk)
    assert no_dispatch == [broadcast.pk, broadcast.pk]
    assert service.cancel(broadcast_id=broadcast.pk) and not service.cancel(broadcast_id=broadcast.pk)
    assert not service.resume(broadcast_id=broadcast.pk)
    assert alerted == ["broadcast_cancelled"]
    broadcast.refresh_from_db()
    assert broadcast.status == "cancelled" and broadcast.finished_at
