"""Admin logins (issue "Hardening II", item 3): `ensure_admin` refuses a weak password and never resets an
existing login, the admin's password forms run Django's full validators, and wrong passwords are
throttled per address and per name (django-axes) until the lockout lifts."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db(transaction=True)

STRONG = "violet-harbour-orchestra-42"
LOGIN = "/admin/login/"


def login(client: Client, username: str, password: str, *, address: str = "203.0.113.7", **meta: str):
    return client.post(
        LOGIN, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=address, **meta
    )


def logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def test_ensure_admin_refuses_a_weak_password_and_creates_nothing(settings, tmp_path):
    for weak in ("a", "12345678901234", "password1234", "administrator1"):
        settings.ADMIN_USERNAME, settings.ADMIN_PASSWORD = "administrator", weak
        with pytest.raises(CommandError, match="too weak"):
            call_command("ensure_admin", env_file=str(tmp_path / ".env"))
    assert not get_user_model().objects.exists()


def test_ensure_admin_creates_the_login_once_and_never_resets_its_password(settings, tmp_path):
    settings.ADMIN_USERNAME, settings.ADMIN_PASSWORD = "boss", STRONG
    call_command("ensure_admin", env_file=str(tmp_path / ".env"))
    user = get_user_model().objects.get(username="boss")
    assert user.is_superuser and user.is_staff and user.check_password(STRONG)
    user.set_password("changed-in-the-admin-2026")  # the operator changed it
    user.save()
    settings.ADMIN_PASSWORD = "another-strong-password-77"  # and .env still has the first (or another)
    call_command("ensure_admin", env_file=str(tmp_path / ".env"))  # every make run / deploy runs it
    user.refresh_from_db()
    assert user.check_password("changed-in-the-admin-2026")


def test_the_admins_password_form_runs_the_full_validators(django_user_model):
    admin = django_user_model.objects.create_superuser("carol", password=STRONG)
    client = Client()
    client.force_login(admin)
    url = reverse("admin:auth_user_password_change", args=(admin.pk,))
    for weak, why in [("short", "too short"), ("123456789012345", "entirely numeric"), ("password12345", "too common")]:
        page = client.post(url, {"password1": weak, "password2": weak, "usable_password": "true"})
        assert page.status_code == 200 and why in page.content.decode(), weak
    admin.refresh_from_db()
    assert admin.check_password(STRONG)


def test_sixty_wrong_logins_lock_the_address_and_the_lockout_lifts(django_user_model, settings):
    django_user_model.objects.create_superuser("dave", password=STRONG)
    client = Client()
    answers = [login(client, "dave", f"guess-{n}").status_code for n in range(60)]
    limit = settings.AXES_FAILURE_LIMIT
    assert answers[: limit - 1] == [200] * (limit - 1)  # the form again, "wrong password"
    assert set(answers[limit:]) == {429}, answers  # locked out
    assert login(client, "dave", STRONG).status_code == 429  # even the right password, while locked
    assert login(Client(), "dave", STRONG, address="198.51.100.9").status_code == 429  # the name is locked too
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    time.sleep(1.2)
    assert logged_in(login(Client(), "dave", STRONG))  # the lockout lifted


def test_one_address_guessing_many_names_is_locked_and_others_are_not(django_user_model, settings):
    django_user_model.objects.create_superuser("erin", password=STRONG)
    client = Client()
    for n in range(settings.AXES_FAILURE_LIMIT):
        login(client, f"user{n}", "nope-nope-nope")
    assert login(client, "erin", STRONG).status_code == 429  # this address is locked
    assert logged_in(login(Client(), "erin", STRONG, address="198.51.100.10"))  # another one is not


def test_behind_a_proxy_the_callers_address_is_the_key(django_user_model, settings):
    """TRUST_FORWARDED_FOR=1: the proxy's own address (REMOTE_ADDR) is shared by every caller; the
    address the proxy appended to X-Forwarded-For is the one locked."""
    settings.TRUST_FORWARDED_FOR = 1
    django_user_model.objects.create_superuser("frank", password=STRONG)
    proxy = "10.0.0.2"
    for n in range(settings.AXES_FAILURE_LIMIT):
        login(Client(), f"x{n}", "wrong-wrong-wrong", address=proxy, HTTP_X_FORWARDED_FOR="1.2.3.4, 192.0.2.66")
    locked = login(Client(), "frank", STRONG, address=proxy, HTTP_X_FORWARDED_FOR="192.0.2.66")
    assert locked.status_code == 429
    other = login(Client(), "frank", STRONG, address=proxy, HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.77")
    assert logged_in(other)  # another caller behind the same proxy logs in
