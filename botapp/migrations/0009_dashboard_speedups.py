"""Dashboard: the distinct active users of each built day kept on its DashboardDay row (filled in for
the days built before), and an index on Payment.paid_at (revenue, paying users, activity)."""

from django.db import migrations, models
from django.db.models import Count


def count_active_users(apps, schema_editor):
    DashboardDay = apps.get_model("botapp", "DashboardDay")
    DailyActiveUser = apps.get_model("botapp", "DailyActiveUser")
    counts = DailyActiveUser.objects.order_by().values("day").annotate(n=Count("id")).values_list("day", "n")
    for day, n in counts:
        DashboardDay.objects.filter(day=day).update(active_users=n)


class Migration(migrations.Migration):

    dependencies = [
        ('botapp', '0008_dashboard'),
    ]

    operations = [
        migrations.AddField(
            model_name='dashboardday',
            name='active_users',
            field=models.PositiveIntegerField(default=0, help_text='Distinct users active on the day.'),
        ),
        migrations.AddIndex(
            model_name='payment',
            index=models.Index(fields=['paid_at'], name='payment_paid_at'),
        ),
        migrations.RunPython(count_active_users, migrations.RunPython.noop),
    ]
