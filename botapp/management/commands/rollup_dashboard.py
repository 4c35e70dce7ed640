"""Build the admin dashboard's daily rollups (the beat task `rollup_dashboard` keeps them current).

python manage.py rollup_dashboard                  # what the beat task does: recent days, backfill, today
python manage.py rollup_dashboard --days 400       # build the 400 days before today that have none
python manage.py rollup_dashboard --days 30 --rebuild   # rebuild the last 30 days
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from botapp.services import rollups


class Command(BaseCommand):
    help = "Build the admin dashboard's daily rollups (recent days and missing ones)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=0, help="build the N days before today")
        parser.add_argument("--rebuild", action="store_true", help="with --days: rebuild days already built")

    def handle(self, *args, days: int, rebuild: bool, **options):
        if days < 0:
            raise CommandError("--days must be positive")
        started = time.perf_counter()
        built = rollups.rebuild(days=days, only_missing=not rebuild) if days else rollups.roll_up()
        took = time.perf_counter() - started
        self.stdout.write(f"built {len(built)} day(s) of dashboard rollups in {took:.1f} s")
