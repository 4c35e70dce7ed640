"""Benchmarks that cannot rot: every `bench/` script runs at a tiny size (seconds), as `make bench` runs it at
full size, and must end cleanly with its figures printed. The figures themselves are never judged here: a
benchmark measures, a test only proves it still runs."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

# script, its tiny arguments, a line its report always prints, whether it needs PostgreSQL
BENCHES = [
    ("ledger.py", ["--charges", "20", "--threads", "2", "--users", "5"], "total time", True),
    ("updates.py", ["--users", "5", "--think", "0"], "handling latency", False),
    ("inflight.py", ["--requests", "5", "--op-seconds", "2", "--no-naive"], "all videos delivered", False),
    (
        "inflight.py",
        ["--requests", "5", "--op-seconds", "2", "--no-naive", "--model", "omni"],
        "all videos delivered",
        False,
    ),
    ("broadcast.py", ["--users", "60", "--rate", "100", "--floods", "1"], "duplicates", False),
    (
        "dashboard.py",
        ["--users", "200", "--ledger", "2000", "--days", "7", "--runs", "1", "--fresh"],
        "without rollups",
        False,
    ),
]


def _postgres() -> bool:
    from bench.services import postgres_available

    return postgres_available("postgres://postgres@127.0.0.1:5432/postgres")


@pytest.mark.parametrize(("script", "args", "reported", "needs_postgres"), BENCHES, ids=lambda v: str(v))
def test_the_benchmark_runs_at_a_tiny_size(script, args, reported, needs_postgres, tmp_path):
    if needs_postgres and not _postgres():
        pytest.skip("this benchmark measures PostgreSQL, which does not answer on 127.0.0.1:5432")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(SECRET_KEY=secrets.token_urlsafe(50), PYTHONPATH=str(ROOT), SCREENSHOTS_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert reported in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert "Unclosed client session" not in output, output[-3000:]
