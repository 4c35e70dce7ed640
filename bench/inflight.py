"""Benchmark: many video generations in flight in ONE Celery worker process.

Run:
    .venv/bin/python bench/inflight.py [--requests 1000] [--op-seconds 60] [--concurrency 16]
                                       [--naive | --no-naive] [--naive-requests 48] [--naive-op-seconds 20]

What it does: starts the fake Google server (every Veo operation takes --op-seconds) and the Bot API
emulator in this process, creates --requests users with one paid Veo request each (through
GenerationService: charged, queued), starts ONE worker process (`celery -A config worker --pool
threads`, the production command) and a beat process (`celery -A config beat`, as in the Procfile),
hands all requests to the worker at once and watches until every request is delivered (or failed).
The worker submits the operations and frees its threads; the poller (a beat tick) polls every due
operation at once; finished videos are stored, marked succeeded and sent to the emulator within
Telegram's limits (TELEGRAM_GLOBAL_RATE: 25 messages/s by default, --telegram-rate to change).

It prints the wall time until every video was generated and until every one was delivered, against
the ideal (one operation time), the worker's peak memory (VmHWM of the worker process tree from
/proc; beat's is printed apart), and the polls per second the fake server received.

The baseline ("naive") is the pattern we avoid: one task per video that sleeps in its worker thread
between polls, so a worker with C threads has at most C videos in flight. A full naive run of 1,000
one-minute videos takes ~1 hour, so by default it runs scaled down (--naive-requests, --naive-op-seconds)
and prints the measured figures and what they extrapolate to; pass the full numbers to measure it.

Databases: PostgreSQL (postgres://postgres@127.0.0.1:5432/bench_inflight, re-created) and Redis
(redis://127.0.0.1:6379/13: broker and rate limits) when they answer, else SQLite in a temporary folder
and the file-system broker (`--sqlite`, `--no-redis` force those). Figures only; nothing is asserted.

Measured on the 2-core development VM (1,000 x 60 s, 16 threads; see the report of issue 4):
  PostgreSQL + Redis: all generated in 78.5 s (1.31x), all delivered in 102.5 s (1.71x: 1,000 messages
  at 25/s need 40 s), worker peak 285 MB, ~105 polls/s; SQLite + file-system broker: 85.8 s (1.43x),
  111.1 s, 286 MB; naive: 48 x 20 s took 61.8 s (3.09x), i.e. 63 waves = ~3,780 s for 1,000 x 60 s.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from celery import shared_task

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.services import postgres_available, recreate_postgres_database, redis_available  # noqa: E402

PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "bench_inflight"
REDIS_BENCH_URL = "redis://127.0.0.1:6379/13"
TOKEN = "7200000002:AAbench-inflight-token"


# --------------------------------------------------------------------------------------------------
# The naive pattern (imported by the worker with `-I bench.inflight`)
# --------------------------------------------------------------------------------------------------
@shared_task(name="bench.naive_video", ignore_result=True)
def naive_video(request_id: int) -> str:
    """What we avoid: submit, then sleep in the worker thread between polls until the video is ready."""
    from botapp.engine import backends, common, delivery, inputs, lease, results
    from botapp.models import GenRequest
    from botapp.services.generation import GenerationService

    if not GenerationService.mark_running(request_id=request_id):
        return "not-claimed"
    request = common.load(request_id)
    provider = backends.provider_for(request)
    provider_request = inputs.build_provider_request(request, with_images=False)
    submission = provider.submit(provider_request)
    GenRequest.objects.filter(pk=request_id).update(provider_operation_id=submission.operation_id)
    from django.conf import settings
    from django.utils import timezone

    time.sleep(settings.VIDEO_FIRST_POLL_SECONDS)
    while True:
        outcome = provider.poll(submission.operation_id, provider_request)
        if outcome.is_done:
            break
        time.sleep(lease.next_poll_delay(request, timezone.now()))  # the thread is held meanwhile
    stored, cache = results.store_media(request, outcome.result)
    GenerationService.mark_succeeded(request_id=request_id, results=stored)
    GenRequest.objects.filter(pk=request_id).update(next_poll_at=None)
    delivery.deliver(request_id, cache=cache)
    return "done"


# --------------------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------------------


@dataclass
class Environment:
    folder: Path
    database_url: str
    redis_url: str
    broker_url: str
    queue: str
    description: str
    env: dict[str, str] = field(default_factory=dict)


def prepare_environment(args: argparse.Namespace) -> Environment:
    folder = Path(tempfile.mkdtemp(prefix="bench-inflight-"))
    use_pg = not args.sqlite and postgres_available(PG_ADMIN_URL)
    use_redis = not args.no_redis and redis_available(REDIS_BENCH_URL)
    sqlite_url = f"sqlite:///{folder / 'bench.sqlite3'}"
    database_url = recreate_postgres_database(PG_ADMIN_URL, PG_BENCH_DB) if use_pg else sqlite_url
    redis_url = REDIS_BENCH_URL if use_redis else ""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    description = (
        f"database: {'PostgreSQL ' + PG_BENCH_DB if use_pg else 'SQLite (temporary file)'}; "
        f"broker: {'Redis ' + REDIS_BENCH_URL if use_redis else 'file-system (kombu filesystem://)'}; "
        f"rate limits: {'Redis' if use_redis else 'in process'}"
    )
    return Environment(folder, database_url, redis_url, redis_url or "filesystem://", queue, description)


def configure_django(envd: Environment, args: argparse.Namespace, emulator_url: str, google_url: str) -> None:
    values = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": envd.database_url,
        "DB_CONN_MAX_AGE": "600",
        "REDIS_URL": envd.redis_url,
        "CELERY_BROKER_URL": envd.broker_url,
        "CELERY_BROKER_FOLDER": str(envd.folder / "broker"),
        "CELERY_TASK_DEFAULT_QUEUE": envd.queue,
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": emulator_url,
        "GOOGLE_VERTEX_API_KEY": "bench-key",
        "GOOGLE_API_KEY": "bench-key",
        "GOOGLE_VERTEX_BASE_URL": google_url,
        "GOOGLE_GEMINI_BASE_URL": google_url,
        "GENERATION_PROVIDER_MODE": "google",
        "GENERATION_DISPATCH": "",  # requests wait in "queued" until the bench hands them over at t0
        "MEDIA_ROOT": str(envd.folder / "media"),
        "VIDEO_TIMEOUT_SECONDS": str(int(args.op_seconds * 6 + 600)),
        "MAX_INFLIGHT_PER_USER": "5",
        "CELERY_WORKER_CONCURRENCY": str(args.concurrency),
        "GENERATION_POLL_TICK_SECONDS": str(args.tick),
        "TELEGRAM_GLOBAL_RATE": str(args.telegram_rate),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(values)
    envd.env = {**os.environ, **values, "LOG_LEVEL": "INFO"}
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --------------------------------------------------------------------------------------------------
# Worker process and memory
# --------------------------------------------------------------------------------------------------
def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def memory_kb(pid: int, field_name: str) -> int:
    """Sum of a /proc/<pid>/status field (VmHWM: peak RSS; VmRSS: now) over the process tree."""
    total = 0
    for proc in descendants(pid):
        try:
            with open(f"/proc/{proc}/status") as fh:
                for line in fh:
                    if line.startswith(field_name + ":"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


class Worker:
    def __init__(self, envd: Environment, args: argparse.Namespace, *, naive: bool) -> None:
        self.envd = envd
        self.naive = naive
        self.log = envd.folder / ("worker-naive.log" if naive else "worker.log")
        command = [
            str(Path(sys.executable).with_name("celery")), "-A", "config", "worker",
            "--pool", "threads", "--concurrency", str(args.concurrency), "--loglevel", "INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-n", f"bench-{'naive' if naive else 'inflight'}@%h",
        ]  # fmt: skip
        if naive:
            command += ["-I", "bench.inflight"]  # the naive task; no beat: nothing polls for it
        self.command = command
        # As in production (Procfile), beat is its own small process: it only sends the poller's
        # and the sweep's ticks. Its memory is reported apart from the worker's.
        self.beat_command = None if naive else [
            str(Path(sys.executable).with_name("celery")), "-A", "config", "beat", "--loglevel", "INFO",
            "-s", str(envd.folder / "beat-schedule"),
        ]  # fmt: skip
        self.proc: subprocess.Popen | None = None
        self.beat: subprocess.Popen | None = None
        self.peak_kb = 0
        self.beat_peak_kb = 0

    def _spawn(self, command: list[str], log_path: Path) -> subprocess.Popen:
        with open(log_path, "w") as log:
            return subprocess.Popen(
                command, cwd=ROOT, env=self.envd.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def start(self) -> None:
        self.proc = self._spawn(self.command, self.log)
        deadline = time.monotonic() + 60
        while " ready." not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start; see {self.log}")
            time.sleep(0.2)
        if self.beat_command:
            self.beat = self._spawn(self.beat_command, self.envd.folder / "beat.log")

    def sample(self) -> tuple[int, int]:
        """(current RSS, peak RSS) of the worker tree, in kB."""
        if self.proc is None:
            return 0, self.peak_kb
        rss = memory_kb(self.proc.pid, "VmRSS")
        self.peak_kb = max(self.peak_kb, memory_kb(self.proc.pid, "VmHWM"))
        if self.beat is not None:
            self.beat_peak_kb = max(self.beat_peak_kb, memory_kb(self.beat.pid, "VmHWM"))
        return rss, self.peak_kb

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.sample()
        for proc in (self.beat, self.proc):
            if proc is None or proc.poll() is not None:
                continue
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


# --------------------------------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------------------------------
# --model: the catalogue's video model and the fake Google's action its worker polls.
MODELS = {"veo": ("veo-3-1-fast", "fetchPredictOperation"), "omni": ("gemini-omni-flash", "getInteraction")}


def create_requests(count: int, emulator, label: str, slug: str = "veo-3-1-fast") -> list[int]:
    from decimal import Decimal

    from botapp.models import AIModel
    from botapp.services.balance import BalanceService
    from botapp.services.generation import GenerationService
    from botapp.services.users import TelegramProfile, upsert_user

    veo = AIModel.objects.get(slug=slug)
    ids = []
    for i in range(count):
        emu_user = emulator.user(first_name=f"{label}{i}", language_code="en")
        user, _ = upsert_user(TelegramProfile(telegram_id=emu_user.id, first_name=f"{label}{i}", language_code="en"))
        BalanceService.admin_adjust(
            user_id=user.pk, amount=Decimal(50), reason="bench", key=f"bench:{label}:{user.pk}", notify=False
        )
        request = GenerationService.create_request(
            user_id=user.pk, ai_model_id=veo.pk, prompt=f"bench video {label} {i}", chat_id=emu_user.chat_id
        )
        GenerationService.mark_queued(request_id=request.pk)
        ids.append(request.pk)
    return ids


@dataclass
class RunResult:
    name: str
    requests: int
    op_seconds: float
    all_submitted: float | None = None
    all_generated: float | None = None
    all_delivered: float | None = None
    failed: int = 0
    peak_mb: float = 0.0
    beat_peak_mb: float = 0.0
    polls: int = 0
    poll_span: float = 0.0
    overshoot: list[float] = field(default_factory=list)
    timed_out: bool = False


def run(name: str, envd: Environment, args: argparse.Namespace, fake, emulator, *, naive: bool, count: int, op: float):
    from django.db.models import Count, Max, Min, Q

    from botapp import tasks
    from botapp.models import GenRequest
    from sandbox.google import Scenario

    fake.reset()
    fake.default = fake.default.merged(Scenario(op_seconds=op, op_polls=0))
    print(f"\n== {name}: {count} video requests, operation time {op:g} s ==", flush=True)
    started = time.monotonic()
    slug, poll_action = MODELS[args.model]
    ids = create_requests(count, emulator, "naive" if naive else "fast", slug)
    print(f"   created and charged {count} requests in {time.monotonic() - started:.1f} s", flush=True)
    worker = Worker(envd, args, naive=naive)
    worker.start()
    result = RunResult(name, count, op)
    polls_before = fake.counts[poll_action]
    t0 = time.monotonic()
    from django.utils import timezone

    t0_wall = timezone.now()
    task = naive_video if naive else tasks.run_generation
    for pk in ids:
        task.delay(pk)
    print(f"   handed over to the worker in {time.monotonic() - t0:.1f} s", flush=True)
    limit = t0 + (op * math.ceil(count / args.concurrency) if naive else op) * 1.5 + 600
    first_poll = last_poll = None
    last_print = 0.0
    while True:
        now = time.monotonic()
        counts = GenRequest.objects.filter(pk__in=ids).aggregate(
            submitted=Count("pk", filter=~Q(provider_operation_id="")),
            generated=Count("pk", filter=Q(status__in=("succeeded", "failed"))),
            delivered=Count("pk", filter=Q(delivered_at__isnull=False) | Q(status="failed")),
            failed=Count("pk", filter=Q(status="failed")),
        )
        polls = fake.counts[poll_action] - polls_before
        if polls and first_poll is None:
            first_poll = now
        if polls:
            last_poll = now
        rss, peak = worker.sample()
        if result.all_submitted is None and counts["submitted"] >= count:
            result.all_submitted = now - t0
        if result.all_generated is None and counts["generated"] >= count:
            result.all_generated = now - t0
        if counts["delivered"] >= count:
            result.all_delivered = now - t0
        if now - last_print >= 5 or result.all_delivered is not None:
            last_print = now
            print(
                f"   t={now - t0:6.1f}s submitted {counts['submitted']:5d}  generated {counts['generated']:5d}  "
                f"delivered {counts['delivered']:5d}  failed {counts['failed']:3d}  polls {polls:6d}  "
                f"worker RSS {rss / 1024:6.1f} MB (peak {peak / 1024:6.1f})",
                flush=True,
            )
        if result.all_delivered is not None:
            break
        if now > limit:
            result.timed_out = True
            print("   !! gave up waiting", flush=True)
            break
        time.sleep(0.5)
    worker.stop()
    result.peak_mb = worker.peak_kb / 1024
    result.beat_peak_mb = worker.beat_peak_kb / 1024
    result.failed = GenRequest.objects.filter(pk__in=ids, status="failed").count()
    result.polls = fake.counts[poll_action] - polls_before
    result.poll_span = (last_poll - first_poll) if first_poll and last_poll and last_poll > first_poll else 0.0
    rows = GenRequest.objects.filter(pk__in=ids, status="succeeded").values_list("started_at", "finished_at")
    result.overshoot = sorted((f - s).total_seconds() - op for s, f in rows if s and f)
    span = GenRequest.objects.filter(pk__in=ids).aggregate(first=Min("started_at"), last=Max("finished_at"))
    if span["first"] and span["last"]:
        print(f"   first start {(span['first'] - t0_wall).total_seconds():.1f} s after t0", flush=True)
    return result


def report(result: RunResult, args: argparse.Namespace, *, naive_extrapolation: bool = False) -> None:
    ideal = result.op_seconds

    def ratio(value: float | None) -> str:
        return f"{value:7.1f} s = {value / ideal:5.2f}x the ideal" if value is not None else "   n/a"

    print(f"\n-- {result.name}: {result.requests} requests x {ideal:g} s operations --")
    print(f"   ideal (one operation time):   {ideal:7.1f} s")
    print(f"   all operations submitted:     {result.all_submitted or float('nan'):7.1f} s")
    print(f"   all videos generated:         {ratio(result.all_generated)}")
    print(f"   all videos delivered:         {ratio(result.all_delivered)}")
    if not naive_extrapolation:
        floor = result.requests / args.telegram_rate
        print(f"     (sending {result.requests} messages at {args.telegram_rate:g}/s takes >= {floor:.0f} s by itself)")
    print(f"   failed:                       {result.failed}")
    print(f"   worker peak memory (VmHWM):   {result.peak_mb:7.1f} MB (one process, {args.concurrency} threads)")
    if result.beat_peak_mb:
        print(f"   beat process peak (VmHWM):    {result.beat_peak_mb:7.1f} MB (sends the ticks; not counted above)")
    rate = result.polls / result.poll_span if result.poll_span else 0.0
    print(f"   polls:                        {result.polls} ({rate:.1f}/s while polling)")
    if result.overshoot:
        p50 = statistics.median(result.overshoot)
        p95 = result.overshoot[min(len(result.overshoot) - 1, int(len(result.overshoot) * 0.95))]
        print(f"   generation latency over the operation time: median {p50:.1f} s, p95 {p95:.1f} s")
    if result.timed_out:
        print("   (the run was cut short: figures are lower bounds)")
    if naive_extrapolation:
        waves = math.ceil(args.requests / args.concurrency)
        print(
            f"   extrapolated to {args.requests} x {args.op_seconds:g} s with {args.concurrency} threads: "
            f"{waves} waves x {args.op_seconds:g} s >= {waves * args.op_seconds:.0f} s = {waves:.0f}x the ideal"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="video requests (default 1000)")
    parser.add_argument("--op-seconds", type=float, default=60.0, help="simulated operation time (default 60)")
    parser.add_argument("--concurrency", type=int, default=16, help="worker threads (default 16, as in production)")
    parser.add_argument("--tick", type=float, default=2.0, help="poller tick in seconds (default 2, as in production)")
    parser.add_argument("--telegram-rate", type=float, default=25.0, help="messages/s overall (default 25)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--naive", action="store_true", help="run only the naive baseline")
    mode.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    parser.add_argument("--naive-requests", type=int, default=48, help="naive baseline requests (default 48)")
    parser.add_argument("--naive-op-seconds", type=float, default=20.0, help="naive operation time (default 20)")
    parser.add_argument(
        "--model", choices=sorted(MODELS), default="veo", help="Veo 3.1 Fast (operations) or Gemini Omni (interactions)"
    )
    parser.add_argument("--sqlite", action="store_true", help="use SQLite even if PostgreSQL is available")
    parser.add_argument("--no-redis", action="store_true", help="use the file-system broker even if Redis answers")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    envd = prepare_environment(args)
    from sandbox.google import FakeGoogleServer, Scenario
    from sandbox.telegram import BotAPIEmulator

    fake = FakeGoogleServer(default=Scenario(op_seconds=args.op_seconds, op_polls=0), record=False).start_in_thread()
    emulator = BotAPIEmulator(TOKEN).start_in_thread()
    configure_django(envd, args, emulator.base_url, fake.base_url)
    if envd.redis_url:
        import redis

        redis.Redis.from_url(envd.redis_url).flushdb()  # the bench's own Redis database (/13)
    print(f"bench/inflight.py: {envd.description}; {args.concurrency} worker threads; {os.cpu_count()} CPUs")
    print(f"work folder: {envd.folder}")
    results = []
    try:
        if not args.naive:
            results.append(
                (run("poller", envd, args, fake, emulator, naive=False, count=args.requests, op=args.op_seconds), False)
            )
        if not args.no_naive:
            count = args.requests if args.naive else args.naive_requests
            op = args.op_seconds if args.naive else args.naive_op_seconds
            scaled = count != args.requests or op != args.op_seconds
            naive = run("naive (sleep while polling)", envd, args, fake, emulator, naive=True, count=count, op=op)
            results.append((naive, scaled))
    finally:
        emulator.stop_in_thread()
        fake.stop_thread()
    print("\n================ results ================")
    print(envd.description)
    for result, scaled in results:
        report(result, args, naive_extrapolation=scaled)


if __name__ == "__main__":
    main()
