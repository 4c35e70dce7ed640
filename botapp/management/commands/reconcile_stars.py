"""`python manage.py reconcile_stars [--days 30] [--no-alert]`: Telegram's Stars ledger against our payments.

Prints the report of botapp.services.reconcile (every finding, and what was fixed: an uncredited charge
credited, a refund Telegram made recorded) and exits non-zero when there was any finding; the operators
get one alert summarising them (unless --no-alert). Safe to run again: nothing is credited or taken
back twice.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from botapp.services.reconcile import ReconcileError, reconcile_stars
from botapp.telegram.sender import close_sender


class Command(BaseCommand):
    help = "Compare Telegram's Stars ledger (getStarTransactions) with our payments; credit uncredited charges."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=settings.STARS_RECONCILE_DAYS,
            help="compare the transactions and payments of the last N days (default: STARS_RECONCILE_DAYS)",
        )
        parser.add_argument("--no-alert", action="store_true", help="do not alert the operators")

    def handle(self, *args, **options) -> None:
        if options["days"] < 1:
            raise CommandError("--days must be at least 1")
        try:
            report = reconcile_stars(days=options["days"], alert=not options["no_alert"])
        except ReconcileError as exc:
            raise CommandError(exc.message) from exc
        finally:
            close_sender()  # its HTTP session, closed before the process ends (no "Unclosed connector")
        for line in report.lines():
            self.stdout.write(line)
        if not report.ok:
            raise CommandError(f"Stars reconciliation: {len(report.findings)} finding(s), {report.fixed} fixed")
