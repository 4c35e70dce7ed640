"""Create the admin login named by ADMIN_USERNAME / ADMIN_PASSWORD, once.

A login that exists is never touched: a password the operator changed in the admin stays (every
`make run` and every deploy runs this). A new login's password must pass Django's validators
(AUTH_PASSWORD_VALIDATORS: at least 12 characters, not common, not all digits, not like the
username): a weak ADMIN_PASSWORD is refused. A newcomer (no ADMIN_PASSWORD, no admin login in the
database yet) gets one: `admin` (or ADMIN_USERNAME) with a random password, saved into `.env` so that
it stays the same and `make run` can show it.
"""

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from config.env import write_env_value


class Command(BaseCommand):
    help = "Create the admin login from ADMIN_USERNAME/ADMIN_PASSWORD (a newcomer gets a generated one in .env)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--env-file", default=str(settings.BASE_DIR / ".env"), help="where to save a new login")

    def handle(self, *args, **options):
        users = get_user_model()
        username, password = settings.ADMIN_USERNAME or "admin", settings.ADMIN_PASSWORD
        if not password:
            if users.objects.filter(is_superuser=True).exists():
                self.stdout.write(
                    "No ADMIN_PASSWORD set; the admin logins in the database are kept "
                    "(`.venv/bin/python manage.py changepassword <name>` resets one)."
                )
                return
            password = secrets.token_urlsafe(12)
            env_file = Path(options["env_file"])
            write_env_value(env_file, "ADMIN_USERNAME", username, comment="The admin login made by `make run`.")
            write_env_value(env_file, "ADMIN_PASSWORD", password)
            self.stdout.write(f"Generated an admin login, saved in {env_file}: {username} / {password}")
        existing = users.objects.filter(username=username).first()
        if existing is not None:
            self.stdout.write(
                f"Admin login {username} exists: kept as it is (its password is changed in the admin, or with "
                f"`.venv/bin/python manage.py changepassword {username}`)."
            )
            return
        user = users(username=username, is_staff=True, is_superuser=True)
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError(
                f"ADMIN_PASSWORD is too weak for the admin login {username}: " + " ".join(exc.messages)
            ) from None
        user.set_password(password)
        user.save()
        self.stdout.write(f"Admin login created: {username}")
