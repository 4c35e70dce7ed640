"""GenRequest.xp_awarded: the XP a succeeded request gave, taken back once if it is refunded.

Requests that succeeded before this field existed and are still undelivered (the only succeeded ones
that can still be refunded) get the XP they were given, so a later refund takes it back too."""

from decimal import ROUND_FLOOR

from django.conf import settings
from django.db import migrations, models


def backfill(apps, schema_editor):
    GenRequest = apps.get_model("botapp", "GenRequest")
    pending = GenRequest.objects.filter(status="succeeded", delivered_at__isnull=True, refunded_at__isnull=True)
    for request in pending.only("pk", "price").iterator():
        xp = int((request.price * settings.XP_PER_TOKEN).to_integral_value(rounding=ROUND_FLOOR))
        GenRequest.objects.filter(pk=request.pk).update(xp_awarded=xp)


class Migration(migrations.Migration):
    dependencies = [("botapp", "0005_promo_reservation")]

    operations = [
        migrations.AddField(
            model_name="genrequest",
            name="xp_awarded",
            field=models.PositiveIntegerField(
                default=0, help_text="XP this request gave when it succeeded; taken back (once) if it is refunded."
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
