"""Request bodies are capped before Django reads them (config/bodylimit.py): a body over its path's
limit gets 413 and leaves nothing in the temporary folder, whether it declares its length or streams."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
CHUNK = 64 * 1024


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def _call(path: str, chunks: int, *, method: str = "POST", length: int | None = None, chunk: bytes = b"x" * CHUNK):
    """Run the project's ASGI application on one request; returns (status, body, chunks read)."""
    from config.asgi import application

    read = 0
    sent: list[dict] = []
    headers = [(b"host", b"testserver"), (b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }

    empty_sent = False

    async def receive():
        nonlocal read, empty_sent
        if chunks == 0 and not empty_sent:  # a request without a body
            empty_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if read < chunks:
            read += 1
            return {"type": "http.request", "body": chunk, "more_body": read < chunks}
        await asyncio.sleep(3600)  # the client waits for the answer

    async def send(message):
        sent.append(message)

    async def run():
        await asyncio.wait_for(application(scope, receive, send), timeout=60)

    asyncio.run(run())
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, read


@pytest.fixture
def temp_folder(tmp_path, monkeypatch):
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.django_db(transaction=True)
def test_a_streamed_50_mb_body_to_the_webhook_is_refused_and_leaves_nothing(temp_folder, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 100 * 1024  # Django would spool past this to the folder
    status, body, read = _call("/telegram/webhook/", chunks=50 * MIB // CHUNK)
    assert status == 413 and b"too large" in body
    assert read <= MIB // CHUNK + 1  # it stopped reading just past the 1 MiB limit
    assert _files_under(temp_folder) == []


@pytest.mark.django_db(transaction=True)
def test_a_declared_length_over_the_limit_is_refused_unread(temp_folder):
    for path, length in [
        ("/yookassa/webhook/", MIB + 1),
        ("/admin/login/", 12 * MIB + 1),
        ("/healthz", 64 * 1024 + 1),
        ("/nowhere/", 300 * MIB),
    ]:
        status, _, read = _call(path, chunks=1, length=length)
        assert (status, read) == (413, 0), path


@pytest.mark.django_db(transaction=True)
def test_bodies_within_their_limit_reach_django(temp_folder, settings):
    settings.WEBHOOK_SECRET = "s" * 40
    status, _, read = _call("/telegram/webhook/", chunks=4, length=4 * CHUNK)  # 256 KiB: under 1 MiB
    assert status == 401 and read == 4  # Django answered: no secret
    status, _, _ = _call("/admin/login/", chunks=2 * MIB // CHUNK)  # 2 MiB to the admin: allowed
    assert status != 413
    settings.BODY_LIMIT_BYTES = 10
    status, _, _ = _call("/healthz", chunks=1, method="POST", chunk=b"0123456789a")
    assert status == 413  # the limits are settings
    status, _, read = _call("/healthz", chunks=0, method="GET")
    assert status in (200, 503) and read == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_uvicorn_refuses_a_chunked_50_mb_post_and_the_temporary_folder_stays_empty(tmp_path):
    """The deployed shape: uvicorn (as in the Procfile) with the project's application, a chunked
    50 MB POST without the webhook secret, and TMPDIR watched."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    port = _free_port()
    env = {
        **os.environ,
        "TMPDIR": str(folder),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "WEBHOOK_SECRET": "w" * 40,
        "FILE_UPLOAD_MAX_MEMORY_SIZE": "65536",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port), "--lifespan", "off"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "uvicorn did not start"
                time.sleep(0.2)
        conn.settimeout(30)
        conn.sendall(
            b"POST /telegram/webhook/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        piece = b"%x\r\n%s\r\n" % (CHUNK, b"x" * CHUNK)
        sent = 0
        try:
            while sent < 50 * MIB:
                conn.sendall(piece)
                sent += CHUNK
        except OSError:
            pass  # the server answered and closed the connection before the end
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                data = conn.recv(65536)
                if not data:
                    break
                answer += data
        except OSError:
            pass
        conn.close()
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert _files_under(folder) == []
    finally:
        server.terminate()
        server.wait(timeout=10)
