"""Broadcasts, write side: check, start, send, pause, resume, cancel, finish.

    start(id)            draft -> sending (or scheduled, with a future send_at): one conditional UPDATE,
                         so a broadcast cannot be started twice; an empty audience is refused
    tick()               beat: due scheduled -> sending; a sending broadcast without a live runner gets one
    run(id)              the runner (Celery task run_broadcast): takes the broadcast's lease, creates the
                         recipient rows in batches, then sends through the one sender, within
                         BROADCAST_RATE (BROADCAST_PAID_RATE for a paid broadcast), with BROADCAST_THREADS
                         concurrent sends
    pause / resume / cancel    conditional status updates; the runner notices within half a second

The guarantee, as for generation delivery (engine/delivery.py): nobody gets a broadcast twice, and
nobody is skipped silently.

- One runner at a time holds a broadcast (`runner_token`, a lease renewed every third of
  BROADCAST_LEASE_SECONDS by a heartbeat thread); a killed worker's broadcast is taken over by the next
  runner once the lease has expired (beat dispatches one).
- Each recipient is claimed right before its send by a conditional UPDATE `pending -> sending` (with
  the runner's token), committed before the request goes out.
- Telegram took it: `sent` (with the message id). 403: `blocked` (the sender marks the user
  bot_blocked). Refused (400): `failed` with the reason (redacted). Flood control / Telegram
  unreachable before the request went out (RetryLater): back to `pending`, not before `retry_in`.
- Outcome unknown (the answer was lost, a 5xx, or the runner died between the claim and the answer):
  `unknown`, never sent again. A new runner marks every row left in `sending` by another runner
  `unknown` when it takes over.
- When nothing is pending or sending, the runner moves it to `done` (conditional: once) and alerts
  the operators; a cancel alerts at once with the figures so far.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from botapp.i18n import normalize_language, t
from botapp.models import Broadcast, BroadcastRecipient, TgUser
from botapp.redaction import error_text
from botapp.selectors import broadcasts as selectors
from botapp.telegram.html import CAPTION_LIMIT, MESSAGE_LIMIT, HtmlError, check_html
from botapp.telegram.media import PHOTO
from botapp.telegram.ratelimit import Bucket
from botapp.telegram.sender import (
    BotBlocked,
    OutcomeUnknown,
    RetryLater,
    SendRejected,
    SentMessage,
    TelegramSender,
    get_sender,
)

log = logging.getLogger(__name__)
Status = Broadcast.Status
R = BroadcastRecipient.Status

PHOTO_MAX_BYTES = 10 * 1024 * 1024  # Telegram: a photo is at most 10 MB...
PHOTO_MAX_SIDES = 10_000  # ... width + height at most 10000...
PHOTO_MAX_RATIO = 20  # ... and the sides' ratio at most 20
PREPARE_BATCH = 2000  # recipient rows created per INSERT
SEND_BATCH = 500  # pending rows read per query by the runner
SLICE_SECONDS = 120.0  # a runner hands over to a fresh task after this (a worker can stop warmly)
MONITOR_SECONDS = 0.5  # how often the runner looks at the broadcast's status (pause / cancel)
ERROR_CHARS = 255


class BroadcastError(Exception):
    """An operator's request that cannot be done (the message says why, in plain English)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --------------------------------------------------------------------------------------------------
# Checks (the admin form shows them on the fields; start() refuses a broadcast that fails one)
# --------------------------------------------------------------------------------------------------
def check_text(*, text: str, with_photo: bool) -> None:
    """Telegram HTML, at most 4096 visible characters (1024 under a photo). Raises BroadcastError."""
    try:
        check_html(text or "", limit=CAPTION_LIMIT if with_photo else MESSAGE_LIMIT)
    except HtmlError as exc:
        raise BroadcastError(str(exc)) from None


def check_photo(*, file: IO[bytes] | Any) -> None:
    """Within Telegram's limits for a photo: 10 MB, width + height <= 10000, ratio <= 20."""
    from PIL import Image, UnidentifiedImageError

    size = getattr(file, "size", None)
    if size is not None and size > PHOTO_MAX_BYTES:
        raise BroadcastError(f"the photo is {size / 1024 / 1024:.1f} MB; Telegram takes photos up to 10 MB")
    try:
        file.seek(0)
        with Image.open(file) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise BroadcastError(f"the photo cannot be read as an image ({exc.__class__.__name__})") from None
    finally:
        try:
            file.seek(0)
        except Exception:
            pass
    if width + height > PHOTO_MAX_SIDES:
        raise BroadcastError(
            f"the photo is {width}x{height}; Telegram takes photos whose width + height is at most {PHOTO_MAX_SIDES}"
        )
    if max(width, height) > PHOTO_MAX_RATIO * max(1, min(width, height)):
        raise BroadcastError(f"the photo is {width}x{height}; Telegram takes a side ratio of at most {PHOTO_MAX_RATIO}")


def check_button(*, text: str, url: str, screen: str) -> None:
    """A button opens a URL or a bot screen (not both); a URL button needs its text."""
    if url and screen:
        raise BroadcastError("a button opens either a URL or a bot screen, not both")
    if url and not text.strip():
        raise BroadcastError("a URL button needs a text")
    if text.strip() and not (url or screen):
        raise BroadcastError("the button text is set, but the button opens nothing: set a URL or a bot screen")
    if url and not url.lower().startswith(("https://", "http://", "tg://")):
        raise BroadcastError("the button URL must start with https://, http:// or tg://")
    if screen and screen not in Broadcast.Screen.values:
        raise BroadcastError(f"unknown bot screen {screen!r}")


def check(*, broadcast: Broadcast) -> None:
    """Everything Telegram would refuse, before anything is sent. Raises BroadcastError."""
    check_text(text=broadcast.text, with_photo=bool(broadcast.photo))
    if broadcast.photo:
        try:
            with broadcast.photo.open("rb") as fh:
                check_photo(file=fh)
        except FileNotFoundError:
            raise BroadcastError("the photo file is missing from storage") from None
    check_button(text=broadcast.button_text, url=broadcast.button_url, screen=broadcast.button_screen)
    low, high = broadcast.level_min, broadcast.level_max
    if low is not None and high is not None and low > high:
        raise BroadcastError("the lowest level is above the highest one")
    if broadcast.joined_after and broadcast.joined_before and broadcast.joined_after >= broadcast.joined_before:
        raise BroadcastError("'joined after' is not before 'joined before'")


# --------------------------------------------------------------------------------------------------
# The message
# --------------------------------------------------------------------------------------------------
def keyboard(*, broadcast: Broadcast, lang: str) -> Any:
    """The broadcast's button (a URL, or a bot screen through the bot's ScreenCb, which opens the screen
    as a new message and leaves the broadcast as it is), or None."""
    from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

    from botapp.callbacks import MenuAction, ScreenCb

    if broadcast.button_url:
        button = InlineKeyboardButton(text=broadcast.button_text, url=broadcast.button_url)
    elif broadcast.button_screen:
        screen = MenuAction(broadcast.button_screen)
        label = broadcast.button_text or t(f"broadcast.buttons.{broadcast.button_screen}", lang)
        button = InlineKeyboardButton(text=label, callback_data=ScreenCb(screen=screen).pack())
    else:
        return None
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


def _photo_bytes(broadcast: Broadcast) -> bytes:
    with broadcast.photo.open("rb") as fh:
        return fh.read()


def send_to(
    *,
    sender: TelegramSender,
    broadcast: Broadcast,
    chat_id: int,
    lang: str,
    photo: bytes | str | None = None,
    paid: bool = False,
    repeatable: bool = False,
    markup: Any = None,
) -> SentMessage | None:
    """One copy of the broadcast to one chat (`photo`: the bytes to upload, or the Telegram file_id;
    `markup`: the keyboard, if already built for `lang`)."""
    if markup is None:
        markup = keyboard(broadcast=broadcast, lang=lang)
    if broadcast.photo:
        if photo is None:
            photo = broadcast.photo_file_id or _photo_bytes(broadcast)
        return sender.send_file(
            chat_id,
            PHOTO,
            photo,
            filename=f"broadcast-{broadcast.pk}.jpg",
            caption=broadcast.text,
            reply_markup=markup,
            allow_paid_broadcast=paid,
        )
    return sender.send_message(
        chat_id, broadcast.text, reply_markup=markup, repeatable=repeatable, allow_paid_broadcast=paid
    )


@dataclass
class PreviewResult:
    sent: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def preview(*, broadcast_id: int) -> PreviewResult:
    """Send the broadcast to the operators (ADMIN_IDS) as the users will see it (admin language)."""
    from botapp.services.alerts import admin_language

    broadcast = Broadcast.objects.get(pk=broadcast_id)
    check(broadcast=broadcast)
    admin_ids = [int(chat_id) for chat_id in settings.ADMIN_IDS]
    if not admin_ids:
        raise BroadcastError("ADMIN_IDS is empty: there is nobody to send a preview to")
    sender = get_sender()
    if sender is None:
        raise BroadcastError("BOT_TOKEN is not set: nothing can be sent")
    result = PreviewResult()
    photo = _photo_bytes(broadcast) if broadcast.photo else None
    for chat_id in admin_ids:
        try:
            send_to(
                sender=sender, broadcast=broadcast, chat_id=chat_id, lang=admin_language(), photo=photo, repeatable=True
            )
        except BotBlocked:
            result.failed[chat_id] = "blocked the bot (or never started it)"
        except (SendRejected, RetryLater, OutcomeUnknown) as exc:
            result.failed[chat_id] = error_text(exc)[:ERROR_CHARS]
        else:
            result.sent.append(chat_id)
    return result


# --------------------------------------------------------------------------------------------------
# State changes
# --------------------------------------------------------------------------------------------------
def _now() -> datetime:
    return timezone.now()


def _dispatch(broadcast_id: int, countdown: float | None = None) -> None:
    from botapp.tasks import run_broadcast

    def enqueue() -> None:
        try:
            if countdown:
                run_broadcast.apply_async((broadcast_id,), countdown=countdown)
            else:
                run_broadcast.delay(broadcast_id)
        except Exception:  # the beat tick dispatches it again
            log.exception("broadcast #%s: could not queue its runner", broadcast_id)

    transaction.on_commit(enqueue)


def start(*, broadcast_id: int, by: str = "") -> Broadcast:
    """Start now, or schedule it for `send_at`. Refused (BroadcastError) when it is not a draft (it
    cannot be started twice), fails a check, or reaches nobody."""
    broadcast = Broadcast.objects.get(pk=broadcast_id)
    if broadcast.status != Status.DRAFT:
        raise BroadcastError(f"broadcast #{broadcast_id} is {broadcast.get_status_display().lower()}, not a draft")
    check(broadcast=broadcast)
    if not selectors.audience(broadcast=broadcast).exists():
        raise BroadcastError("the audience is empty: no user matches these segments")
    now = _now()
    scheduled = broadcast.send_at is not None and broadcast.send_at > now
    changes: dict[str, Any] = {"status": Status.SCHEDULED if scheduled else Status.SENDING}
    if not scheduled:
        changes["started_at"] = now
    if by:
        changes["created_by"] = by
    with transaction.atomic():
        if not Broadcast.objects.filter(pk=broadcast_id, status=Status.DRAFT).update(**changes):
            raise BroadcastError(f"broadcast #{broadcast_id} was started by someone else meanwhile")
        if not scheduled:
            _dispatch(broadcast_id)
    log.info("broadcast #%s %s by %s", broadcast_id, "scheduled" if scheduled else "started", by or "?")
    broadcast.refresh_from_db()
    return broadcast


def begin_due(*, now: datetime | None = None) -> list[int]:
    """Scheduled broadcasts whose time has come -> sending (each once)."""
    now = now or _now()
    started = []
    due = Broadcast.objects.filter(status=Status.SCHEDULED, send_at__lte=now).values_list("pk", flat=True)
    for broadcast_id in list(due):
        with transaction.atomic():
            if Broadcast.objects.filter(pk=broadcast_id, status=Status.SCHEDULED).update(
                status=Status.SENDING, started_at=now
            ):
                _dispatch(broadcast_id)
                started.append(broadcast_id)
    return started


def pause(*, broadcast_id: int) -> bool:
    """sending -> paused: the runner stops claiming within MONITOR_SECONDS (sends in flight finish)."""
    return bool(Broadcast.objects.filter(pk=broadcast_id, status=Status.SENDING).update(status=Status.PAUSED))


def resume(*, broadcast_id: int) -> bool:
    with transaction.atomic():
        moved = Broadcast.objects.filter(pk=broadcast_id, status=Status.PAUSED).update(status=Status.SENDING)
        if moved:
            _dispatch(broadcast_id)
    return bool(moved)


def cancel(*, broadcast_id: int) -> bool:
    """Stop for good (scheduled, sending or paused): nothing more is sent; the operators are told."""
    now = _now()
    moved = Broadcast.objects.filter(
        pk=broadcast_id, status__in=(Status.SCHEDULED, Status.SENDING, Status.PAUSED)
    ).update(status=Status.CANCELLED, finished_at=now)
    if moved:
        _store_counts(broadcast_id)
        _alert(broadcast_id, "broadcast_cancelled")
    return bool(moved)


def _store_counts(broadcast_id: int) -> selectors.Progress | None:
    progress = selectors.progress(broadcast_id=broadcast_id)
    if progress is not None:
        Broadcast.objects.filter(pk=broadcast_id).update(
            total=progress.total,
            delivered=progress.delivered,
            blocked=progress.blocked,
            failed=progress.failed,
            unknown=progress.unknown,
        )
    return progress


def _alert(broadcast_id: int, key: str) -> None:
    from botapp.services.alerts import alert_operators

    progress = selectors.progress(broadcast_id=broadcast_id)
    started = Broadcast.objects.filter(pk=broadcast_id).values_list("started_at", flat=True).first()
    if progress is None:
        return
    alert_operators(
        key=key,
        dedupe=f"{broadcast_id}:{started.timestamp() if started else 0}",
        id=broadcast_id,
        delivered=progress.delivered,
        blocked=progress.blocked,
        failed=progress.failed,
        unknown=progress.unknown,
        pending=progress.pending + progress.sending,
        total=progress.total,
    )


def tick(*, now: datetime | None = None) -> dict[str, int]:
    """Beat: start due scheduled broadcasts; give every sending broadcast without a live runner one."""
    now = now or _now()
    started = begin_due(now=now)
    orphans = list(
        Broadcast.objects.filter(status=Status.SENDING)
        .filter(Q(runner_until__isnull=True) | Q(runner_until__lt=now))
        .exclude(pk__in=started)
        .values_list("pk", flat=True)
    )
    for broadcast_id in orphans:
        _dispatch(broadcast_id)
    return {"started": len(started), "dispatched": len(orphans)}


# --------------------------------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------------------------------
def _lease() -> timedelta:
    return timedelta(seconds=float(settings.BROADCAST_LEASE_SECONDS))


def _take(broadcast_id: int, token: str) -> bool:
    now = _now()
    return bool(
        Broadcast.objects.filter(pk=broadcast_id, status=Status.SENDING)
        .filter(Q(runner_until__isnull=True) | Q(runner_until__lt=now))
        .update(runner_token=token, runner_until=now + _lease())
    )


def _release(broadcast_id: int, token: str) -> None:
    Broadcast.objects.filter(pk=broadcast_id, runner_token=token).update(runner_token="", runner_until=None)


def _settle_orphans(broadcast_id: int, token: str) -> int:
    """Rows another runner left in `sending`: their outcome is unknown, they are never sent again."""
    settled = (
        BroadcastRecipient.objects.filter(broadcast_id=broadcast_id, status=R.SENDING)
        .exclude(claim_token=token)
        .update(status=R.UNKNOWN, error="the worker stopped during the send: it may have arrived")
    )
    if settled:
        log.warning("broadcast #%s: %d sends of a stopped runner have an unknown outcome", broadcast_id, settled)
    return settled


class _Monitor(threading.Thread):
    """Looks at the broadcast every MONITOR_SECONDS (pause, cancel, a lost lease stop the run) and
    renews the runner's lease every third of BROADCAST_LEASE_SECONDS."""

    def __init__(self, broadcast_id: int, token: str, stop: threading.Event) -> None:
        super().__init__(name=f"broadcast-{broadcast_id}-monitor", daemon=True)
        self.broadcast_id, self.token, self.stop = broadcast_id, token, stop
        self.finished = threading.Event()
        self.reason = ""

    def run(self) -> None:
        renew_every = max(0.2, float(settings.BROADCAST_LEASE_SECONDS) / 3)
        renewed = time.monotonic()
        try:
            while not self.finished.wait(MONITOR_SECONDS):
                try:
                    status = (
                        Broadcast.objects.filter(pk=self.broadcast_id, runner_token=self.token)
                        .values_list("status", flat=True)
                        .first()
                    )
                    if status != Status.SENDING:
                        self.reason = status or "lost the lease"
                        self.stop.set()
                        return
                    if time.monotonic() - renewed >= renew_every:
                        if not Broadcast.objects.filter(pk=self.broadcast_id, runner_token=self.token).update(
                            runner_until=_now() + _lease()
                        ):
                            self.reason = "lost the lease"
                            self.stop.set()
                            return
                        renewed = time.monotonic()
                except Exception:
                    log.exception("broadcast #%s: monitor failed; the run continues", self.broadcast_id)
        finally:
            connection.close()


@dataclass
class _Run:
    broadcast: Broadcast
    token: str
    sender: TelegramSender
    bucket: Bucket
    stop: threading.Event
    photo: bytes | str | None = None
    paid: bool = False
    retry_in: float | None = None  # set when the run should end and come back later (flood control)
    lock: threading.Lock = field(default_factory=threading.Lock)
    markups: dict[str, Any] = field(default_factory=dict)  # the keyboard per language, built once

    def markup(self, lang: str) -> Any:
        if lang not in self.markups:
            self.markups[lang] = keyboard(broadcast=self.broadcast, lang=lang)
        return self.markups[lang]

    def come_back(self, seconds: float) -> None:
        with self.lock:
            self.retry_in = max(self.retry_in or 0.0, seconds)


def rate_bucket(*, paid: bool) -> Bucket:
    rate = float(settings.BROADCAST_PAID_RATE if paid else settings.BROADCAST_RATE)
    return Bucket("broadcast:paid" if paid else "broadcast", rate, max(1, min(50, int(rate // 5))))


def run(*, broadcast_id: int) -> float | None:
    """The runner's body: returns seconds after which it should run again, or None (done, paused,
    cancelled, or someone else runs it)."""
    token = uuid.uuid4().hex
    if not _take(broadcast_id, token):
        return None
    stop = threading.Event()
    monitor = _Monitor(broadcast_id, token, stop)
    monitor.start()
    try:
        _settle_orphans(broadcast_id, token)
        broadcast = Broadcast.objects.get(pk=broadcast_id)
        if not broadcast.prepared and not _prepare(broadcast, token, stop):
            return None
        sender = get_sender()
        if sender is None:
            log.warning("broadcast #%s: BOT_TOKEN is not set; retrying in a minute", broadcast_id)
            return 60.0
        state = _Run(
            broadcast=broadcast,
            token=token,
            sender=sender,
            bucket=rate_bucket(paid=broadcast.allow_paid_broadcast),
            stop=stop,
            paid=broadcast.allow_paid_broadcast,
            photo=broadcast.photo_file_id or None,
        )
        return _send_all(state)
    finally:
        monitor.finished.set()
        monitor.join(5)
        _release(broadcast_id, token)
        _store_counts(broadcast_id)
        if monitor.reason:
            log.info("broadcast #%s: runner stopped (%s)", broadcast_id, monitor.reason)


def _prepare(broadcast: Broadcast, token: str, stop: threading.Event) -> bool:
    """Create the recipient rows in batches (by user id, resuming after the last batch). True when
    all are there."""
    users = selectors.audience(broadcast=broadcast).order_by("pk")
    upto = broadcast.prepared_upto
    while not stop.is_set():
        ids = list(users.filter(pk__gt=upto).values_list("pk", flat=True)[:PREPARE_BATCH])
        with transaction.atomic():
            if ids:
                BroadcastRecipient.objects.bulk_create(
                    [BroadcastRecipient(broadcast_id=broadcast.pk, user_id=user_id) for user_id in ids],
                    ignore_conflicts=True,
                )
            changes: dict[str, Any] = {"prepared_upto": ids[-1]} if ids else {"prepared": True}
            if not Broadcast.objects.filter(pk=broadcast.pk, runner_token=token).update(**changes):
                transaction.set_rollback(True)
                return False
        if not ids:
            total = BroadcastRecipient.objects.filter(broadcast_id=broadcast.pk).count()
            Broadcast.objects.filter(pk=broadcast.pk).update(total=total)
            broadcast.prepared = True
            log.info("broadcast #%s: %d recipients", broadcast.pk, total)
            return True
        upto = ids[-1]
    return False


def _due(broadcast_id: int, after: int = 0) -> list[BroadcastRecipient]:
    now = _now()
    return list(
        BroadcastRecipient.objects.filter(broadcast_id=broadcast_id, status=R.PENDING, pk__gt=after)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .select_related("user", "user__settings")
        .order_by("pk")[:SEND_BATCH]
    )


def _send_all(state: _Run) -> float | None:
    """Feed the due rows (in id order, a batch per query) to the sending threads without stopping
    between batches; at the end of a pass, wait for the sends in flight and look again from the start
    (rows postponed by flood control, or not sent when a slot could not be had)."""
    broadcast_id = state.broadcast.pk
    deadline = time.monotonic() + SLICE_SECONDS
    threads_count = max(1, int(settings.BROADCAST_THREADS))
    work: queue.Queue[BroadcastRecipient | None] = queue.Queue(maxsize=threads_count * 4)
    threads = [
        threading.Thread(target=_worker, args=(state, work), name=f"broadcast-{broadcast_id}-{n}", daemon=True)
        for n in range(threads_count)
    ]
    for thread in threads:
        thread.start()

    def halted() -> bool:
        return state.stop.is_set() or state.retry_in is not None or time.monotonic() > deadline

    cursor = 0
    try:
        while not halted():
            rows = _due(broadcast_id, after=cursor)
            if not rows:
                work.join()  # the sends in flight
                if halted():
                    break
                if cursor == 0:
                    return _finish_or_wait(state)
                cursor = 0  # a second look from the start
                continue
            cursor = rows[-1].pk
            if state.broadcast.photo and not state.photo:
                # The photo is uploaded once (here, alone); the others reuse its file_id.
                work.join()
                _send_one(state, rows.pop(0))
            for row in rows:
                while not halted():
                    try:
                        work.put(row, timeout=0.2)
                        break
                    except queue.Full:
                        continue
        if state.retry_in is not None:
            return state.retry_in
        if not state.stop.is_set():
            return 0.5  # the slice is over: a fresh task continues (a worker can stop warmly between)
        return None
    finally:
        for _ in threads:
            work.put(None)
        for thread in threads:
            thread.join(60)


def _worker(state: _Run, work: queue.Queue) -> None:
    try:
        while True:
            row = work.get()
            try:
                if row is None:
                    return
                if not state.stop.is_set() and state.retry_in is None:
                    _send_one(state, row)  # otherwise skipped: it stays pending
            except Exception:
                log.exception("broadcast #%s: sending to recipient %s failed", state.broadcast.pk, row and row.pk)
            finally:
                work.task_done()
    finally:
        connection.close()


def _outcome(row: BroadcastRecipient, token: str, **changes: Any) -> bool:
    """Record a send's outcome (only while the row is still ours: a new runner may have settled it)."""
    if "error" in changes:
        changes["error"] = str(changes["error"])[:ERROR_CHARS]
    return bool(BroadcastRecipient.objects.filter(pk=row.pk, status=R.SENDING, claim_token=token).update(**changes))


def _send_one(state: _Run, row: BroadcastRecipient) -> None:
    user: TgUser = row.user
    pending = BroadcastRecipient.objects.filter(pk=row.pk, status=R.PENDING)
    if user.bot_blocked or user.is_banned:  # changed since the rows were created: not sent
        pending.update(
            status=R.BLOCKED if user.bot_blocked else R.FAILED,
            error="blocked the bot" if user.bot_blocked else "banned",
        )
        return
    wait = state.sender.limiter.reserve([state.bucket], float(settings.TELEGRAM_MAX_WAIT_SECONDS))
    if wait is None:
        state.come_back(float(settings.TELEGRAM_MAX_WAIT_SECONDS))
        return
    if wait > 0:
        time.sleep(wait)
    if state.stop.is_set():
        return
    now = _now()
    # The claim, committed before the request goes out: from here on, a crash means "unknown".
    claimed = pending.filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)).update(
        status=R.SENDING, claim_token=state.token, claimed_until=now + _lease()
    )
    if not claimed:
        return
    lang = normalize_language(getattr(getattr(user, "settings", None), "language", None))
    try:
        sent = send_to(
            sender=state.sender,
            broadcast=state.broadcast,
            chat_id=user.telegram_id,
            lang=lang,
            photo=state.photo,
            paid=state.paid,
            markup=state.markup(lang),
        )
    except BotBlocked as exc:
        _outcome(row, state.token, status=R.BLOCKED, error=error_text(exc))
    except SendRejected as exc:
        _outcome(row, state.token, status=R.FAILED, error=error_text(exc))
    except RetryLater as exc:
        # Not sent (flood control, or no connection at all): pending again, not before retry_in;
        # the whole broadcast backs off as long (the run ends and comes back).
        retry_in = max(1.0, float(exc.retry_in))
        _outcome(
            row,
            state.token,
            status=R.PENDING,
            claim_token="",
            claimed_until=_now() + timedelta(seconds=retry_in),
            error=error_text(exc),
        )
        state.sender.limiter.penalize(state.bucket, retry_in)
        state.come_back(retry_in)
    except OutcomeUnknown as exc:
        _outcome(row, state.token, status=R.UNKNOWN, error=error_text(exc))
    except Exception as exc:  # after the claim: it may have gone out
        log.exception("broadcast #%s: unexpected error sending to %s", state.broadcast.pk, user.telegram_id)
        _outcome(row, state.token, status=R.UNKNOWN, error=error_text(exc))
    else:
        _outcome(row, state.token, status=R.SENT, message_id=sent.message_id if sent else None, sent_at=_now())
        if state.broadcast.photo and not state.photo and sent is not None and sent.file_id:
            state.photo = sent.file_id
            Broadcast.objects.filter(pk=state.broadcast.pk).update(photo_file_id=sent.file_id)


def _finish_or_wait(state: _Run) -> float | None:
    """Nothing due now: later pending rows (flood control) -> come back then; else done, once."""
    broadcast_id = state.broadcast.pk
    _settle_orphans(broadcast_id, state.token)
    left = BroadcastRecipient.objects.filter(broadcast_id=broadcast_id, status__in=(R.PENDING, R.SENDING))
    if left.exists():
        earliest = left.filter(status=R.PENDING).aggregate(at=Min("claimed_until"))["at"]
        wait = (earliest - _now()).total_seconds() if earliest else 1.0
        return max(0.5, wait)
    progress = selectors.progress(broadcast_id=broadcast_id)
    assert progress is not None
    moved = Broadcast.objects.filter(pk=broadcast_id, status=Status.SENDING, runner_token=state.token).update(
        status=Status.DONE,
        finished_at=_now(),
        total=progress.total,
        delivered=progress.delivered,
        blocked=progress.blocked,
        failed=progress.failed,
        unknown=progress.unknown,
    )
    if moved:
        log.info(
            "broadcast #%s done: %d delivered, %d blocked, %d failed, %d unknown",
            broadcast_id,
            progress.delivered,
            progress.blocked,
            progress.failed,
            progress.unknown,
        )
        _alert(broadcast_id, "broadcast_finished")
    return None


def run_inline(*, broadcast_id: int, max_rounds: int = 1000) -> None:
    """Run to the end in this process (tests, the benchmark): run() again while it asks to."""
    for _ in range(max_rounds):
        again = run(broadcast_id=broadcast_id)
        close_old_connections()
        if again is None:
            return
        time.sleep(min(again, 2.0))
