"""Configuration that must do something: every variable in .env.example changes a setting, every
`getattr(settings, ...)` in the code names a defined setting, SECRET_KEY is required with DEBUG off
(and `make run` generates one for a newcomer), and logging in at /admin/login/ lands on the admin."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
import warnings
from pathlib import Path
from unittest import mock

import environ
import pytest

from config.secret_key import ensure_secret_key, is_public

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_FILE = ROOT / "config" / "settings.py"
ENV_EXAMPLE = ROOT / ".env.example"
ENV_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)
PROBE_KEY = "probe-secret-key-not-public-0123456789-abcdefghijklmnop"
PG_URL = "postgres://probe:secret@db.example:5432/probe"
# A few settings only matter together with another one (as in production); probed with it set.
PREREQUISITES = {
    "DB_CONN_MAX_AGE": {"DATABASE_URL": PG_URL},
    "AWS_S3_ENDPOINT_URL": {"AWS_STORAGE_BUCKET_NAME": "probe-bucket"},
    "AWS_S3_REGION_NAME": {"AWS_STORAGE_BUCKET_NAME": "probe-bucket"},
}


def env_example_names() -> list[str]:
    return sorted(set(ENV_LINE.findall(ENV_EXAMPLE.read_text())))


def load_settings(env: dict[str, str]) -> dict[str, str]:
    """config/settings.py executed afresh with exactly `env` (no .env file): its settings, as repr."""
    with (
        mock.patch.dict(os.environ, env, clear=True),
        mock.patch.object(environ.Env, "read_env"),
        mock.patch("sentry_sdk.init"),  # a probed SENTRY_DSN must not start error reporting in the tests
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("error", UserWarning)  # e.g. "Engine not recognized": not a valid value
        namespace = runpy.run_path(str(SETTINGS_FILE), run_name="settings_probe")
    return {name: repr(value) for name, value in namespace.items() if name.isupper()}


def test_env_example_is_parsed():
    names = env_example_names()
    assert {"SECRET_KEY", "BOT_TOKEN", "ADMIN_IDS", "GENERATION_SWEEP_SECONDS", "PORT"} <= set(names)
    assert len(names) > 60


def test_every_env_example_variable_changes_a_setting(tmp_path):
    """Each variable, set alone to a distinctive value, changes at least one setting (a variable the
    settings do not read, or read but ignore, fails here)."""
    candidates = ["true", "false", "7", "0.25", "ru", "json", "x9-probe", PG_URL, "redis://probe.example:6379/3",
                  str(tmp_path / "probe")]  # fmt: skip
    without_effect = []
    for name in env_example_names():
        base_env = {"SECRET_KEY": PROBE_KEY, **PREREQUISITES.get(name, {})}
        baseline = load_settings(base_env)
        for value in candidates:
            try:
                probed = load_settings({**base_env, name: value})
            except Exception:  # not a valid value for this variable: try the next one
                continue
            if probed != baseline:
                break
        else:
            without_effect.append(name)
    assert without_effect == [], f"in .env.example but no effect on the settings: {without_effect}"


def test_every_getattr_of_settings_is_a_defined_setting():
    """`getattr(settings, "X", default)` hides a missing setting behind its default: each X must be
    defined in config/settings.py (and so be configurable)."""
    pattern = re.compile(r"getattr\(\s*settings\s*,\s*[\"']([A-Z][A-Z0-9_]*)[\"']")
    used: dict[str, list[str]] = {}
    for path in sorted([*ROOT.glob("botapp/**/*.py"), *ROOT.glob("config/**/*.py")]):
        for name in pattern.findall(path.read_text()):
            used.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert used, "the pattern finds the getattr calls"
    defined = set(load_settings({"SECRET_KEY": PROBE_KEY}))
    missing = {name: paths for name, paths in used.items() if name not in defined}
    assert missing == {}, f"read with getattr but not defined in config/settings.py: {missing}"


def test_support_username_and_card_payments_are_settings():
    probed = load_settings({"SECRET_KEY": PROBE_KEY, "SUPPORT_USERNAME": "@help_desk", "PAYMENT_CARD_ENABLED": "true"})
    assert probed["SUPPORT_USERNAME"] == repr("help_desk")
    assert probed["PAYMENT_CARD_ENABLED"] == "True"


# --- SECRET_KEY ------------------------------------------------------------------------------------------
def manage_check(**env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    # Explicit values win over a developer's .env (read without overwriting the environment).
    environment.update({"DJANGO_SETTINGS_MODULE": "config.settings", **env})
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "key",
    [
        "",
        "change-me",
        "insecure-dev-key-change-me",
        "collectstatic-only-not-a-runtime-key-5d1f0c9e7b",  # the Dockerfile's old build-time key
        "a-real-random-key-9f8e7d6c5b4a3f2e1d0c",  # 38 characters: too short
        "ab" * 40,  # long, but 2 distinct characters
    ],
)
def test_debug_off_refuses_a_missing_public_or_weak_secret_key(key):
    result = manage_check(DEBUG="false", SECRET_KEY=key)
    assert result.returncode != 0
    assert "SECRET_KEY is not set (or is a public placeholder, or weak" in result.stderr


@pytest.mark.slow
def test_debug_off_starts_with_a_real_secret_key():
    result = manage_check(DEBUG="false", SECRET_KEY="a-real-random-key-9f8e7d6c5b4a3f2e1d0c-0a1b2c3d4e5f6a7b8c9d")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.slow
def test_debug_on_runs_without_a_secret_key():
    result = manage_check(DEBUG="true", SECRET_KEY="")
    assert result.returncode == 0, result.stderr


def test_newcomer_gets_a_random_key_written_into_env(tmp_path):
    env_file = tmp_path / ".env"
    key = ensure_secret_key(env_file, environ={})
    assert key and not is_public(key) and len(key) >= 50
    assert f"SECRET_KEY={key}" in env_file.read_text().splitlines()
    assert env_file.stat().st_mode & 0o077 == 0  # a new .env is private
    # The next run keeps it (sessions stay valid across restarts).
    assert ensure_secret_key(env_file, environ={}) is None
    assert env_file.read_text().count("SECRET_KEY=") == 1


def test_a_placeholder_line_from_env_example_is_replaced_in_place(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=false\nSECRET_KEY=change-me\nBOT_TOKEN=\n")
    key = ensure_secret_key(env_file, environ={})
    assert env_file.read_text().splitlines() == ["DEBUG=false", f"SECRET_KEY={key}", "BOT_TOKEN="]


def test_an_existing_key_is_never_replaced(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY='my-own-production-key-abcdef-0123456789-ghijklmnopqrstuv'\n")
    assert ensure_secret_key(env_file, environ={}) is None
    strong = "from-the-environment-123-" + "kLmN0pQ" * 4
    assert ensure_secret_key(tmp_path / "other.env", environ={"SECRET_KEY": strong}) is None
    assert not (tmp_path / "other.env").exists()
    weak = tmp_path / "weak.env"
    weak.write_text("SECRET_KEY=short-key-of-a-newcomer\n")  # refused with DEBUG off: make run replaces it
    key = ensure_secret_key(weak, environ={})
    assert key and len(key) >= 50 and weak.read_text().count("SECRET_KEY=") == 1


def test_make_run_generates_the_key_before_anything_loads_the_settings():
    lines = [line.strip() for line in (ROOT / "Makefile").read_text().split("\nrun:", 1)[1].splitlines()]
    steps = [line for line in lines[1:6] if line.startswith("$(PY)")]
    assert steps[0] == "$(PY) -m config.secret_key .env"


# --- the admin login --------------------------------------------------------------------------------------
def test_admin_login_without_next_lands_on_the_admin(client, django_user_model):
    django_user_model.objects.create_superuser("operator", "op@example.com", "a-long-password-1")
    response = client.post("/admin/login/", {"username": "operator", "password": "a-long-password-1"})
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get(response["Location"]).status_code == 200


def test_the_secret_key_rule_is_djangos_deploy_rule():
    from config.secret_key import is_public

    assert is_public("x" * 60) and is_public("abcd" * 20)  # fewer than 5 distinct characters
    assert is_public("django-insecure-" + "k3y!" * 20)
    assert is_public("Aa1-" * 12)  # 48 characters
    assert not is_public("Aa1-b" * 10)  # 50 characters, 5 distinct


@pytest.mark.slow
def test_debug_off_refuses_a_short_webhook_secret():
    key = "a-real-random-key-9f8e7d6c5b4a3f2e1d0c-0a1b2c3d4e5f6a7b8c9d"
    result = manage_check(DEBUG="false", SECRET_KEY=key, WEBHOOK_SECRET="hook-31-characters-long-abcdefg")
    assert result.returncode != 0 and "WEBHOOK_SECRET has 31 characters: at least 32" in result.stderr
    assert manage_check(DEBUG="false", SECRET_KEY=key, WEBHOOK_SECRET="h" * 32).returncode == 0


@pytest.mark.django_db
def test_setwebhook_refuses_a_short_webhook_secret(settings):
    from django.core.management import CommandError, call_command

    settings.BOT_TOKEN = "123456789:" + "A" * 35
    settings.WEBHOOK_URL = "https://bot.example.com"
    settings.WEBHOOK_SECRET = "short-secret"
    with pytest.raises(CommandError, match=r"too short \(12 characters; at least 32\)"):
        call_command("setwebhook")


# --- TLS, cookies and hosts with DEBUG off ------------------------------------------------------------------
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": PROBE_KEY,
    "ALLOWED_HOSTS": "bot.example.com,healthcheck.railway.app",
    "CSRF_TRUSTED_ORIGINS": "https://bot.example.com",
    "TRUST_FORWARDED_PROTO": "true",
    "TRUST_FORWARDED_FOR": "1",
    "WEBHOOK_SECRET": "w" * 43,
}


def test_check_deploy_is_clean_for_the_documented_production_settings():
    environment = {k: v for k, v in os.environ.items() if k not in PRODUCTION}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings", **PRODUCTION)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "no issues" in result.stdout, result.stdout + result.stderr


def test_debug_off_refuses_a_wildcard_host():
    with pytest.raises(Exception, match=r"ALLOWED_HOSTS .* is a wildcard and DEBUG is off"):
        load_settings({"SECRET_KEY": PROBE_KEY, "DEBUG": "false", "ALLOWED_HOSTS": "*"})
    loaded = load_settings({"SECRET_KEY": PROBE_KEY, "DEBUG": "false"})
    assert loaded["ALLOWED_HOSTS"] == repr(["localhost", "127.0.0.1", "[::1]"])  # make run's: this machine only
    assert loaded["SESSION_COOKIE_SECURE"] == loaded["CSRF_COOKIE_SECURE"] == "True"
    assert loaded["SECURE_HSTS_SECONDS"] == "31536000"
    assert loaded["SECURE_SSL_REDIRECT"] == "False"  # no proxy said the scheme: nothing to redirect by
    behind = load_settings({**PRODUCTION})
    assert behind["SECURE_PROXY_SSL_HEADER"] == repr(("HTTP_X_FORWARDED_PROTO", "https"))
    assert behind["SECURE_SSL_REDIRECT"] == "True"


@pytest.mark.django_db
def test_behind_the_proxy_http_is_redirected_but_not_the_health_check(settings):
    from django.test import Client

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    client = Client()
    plain = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="http")
    assert plain.status_code == 301 and plain["Location"] == "https://testserver/admin/login/"
    secure = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200 and "max-age=31536000" in secure["Strict-Transport-Security"]
    assert secure.cookies["csrftoken"]["secure"] is True  # DEBUG is off in the tests
    assert client.get("/healthz").status_code in (200, 503)  # the platform's check over plain HTTP
