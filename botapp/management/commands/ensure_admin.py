"""Create (or update the password of) the admin login named by ADMIN_USERNAME / ADMIN_PASSWORD."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the admin login from ADMIN_USERNAME/ADMIN_PASSWORD, or print how to create one."

    def handle(self, *args, **options):
        username, password = settings.ADMIN_USERNAME, settings.ADMIN_PASSWORD
        if not username or not password:
            self.stdout.write(
                "No ADMIN_USERNAME/ADMIN_PASSWORD set: create an admin login with "
                "`.venv/bin/python manage.py createsuperuser`, or set both in .env and run `make run` again."
            )
            return
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"Admin login {'created' if created else 'updated'}: {username}")
