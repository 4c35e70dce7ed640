"""The admin dashboard: the provider's cost on each AI model (per image, per second of video, in USD;
the catalogue's Google models get Google's list prices, edit them in the admin) and the daily
rollups of the ledger, the generation requests and the users' activity (botapp/services/rollups.py)."""

from decimal import Decimal

from django.db import migrations, models

# Google's list prices when this was written (Vertex AI / Gemini API, USD): per image, per video second.
LIST_PRICES = {
    "nano-banana": ("cost_per_image_usd", Decimal("0.039")),
    "imagen": ("cost_per_image_usd", Decimal("0.04")),
    "veo-3-1-fast": ("cost_per_video_second_usd", Decimal("0.15")),
    "veo-3-1-pro": ("cost_per_video_second_usd", Decimal("0.40")),
}


def set_list_prices(apps, schema_editor):
    AIModel = apps.get_model("botapp", "AIModel")
    for slug, (field, price) in LIST_PRICES.items():
        AIModel.objects.filter(slug=slug, **{field: 0}).update(**{field: price})


class Migration(migrations.Migration):

    dependencies = [
        ('botapp', '0007_broadcast_sending'),
    ]

    operations = [
        migrations.CreateModel(
            name='DailyActiveUser',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('user_id', models.BigIntegerField()),
            ],
        ),
        migrations.CreateModel(
            name='DailyGenerations',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('ai_model_id', models.BigIntegerField(null=True)),
                ('status', models.CharField(max_length=16)),
                ('error_code', models.CharField(blank=True, max_length=64)),
                ('requests', models.PositiveIntegerField()),
                ('refunded', models.PositiveIntegerField(default=0)),
                ('units', models.PositiveBigIntegerField(default=0, help_text='Images, or seconds of video, made.')),
                ('durations', models.JSONField(blank=True, default=dict, help_text="{bucket's upper bound in s: count}")),
            ],
        ),
        migrations.CreateModel(
            name='DailyLedger',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('kind', models.CharField(max_length=20)),
                ('bucket', models.CharField(max_length=8)),
                ('ai_model_id', models.BigIntegerField(null=True)),
                ('rows', models.PositiveIntegerField()),
                ('amount', models.DecimalField(decimal_places=2, max_digits=16)),
            ],
        ),
        migrations.CreateModel(
            name='DashboardDay',
            fields=[
                ('day', models.DateField(primary_key=True, serialize=False)),
                ('built_at', models.DateTimeField()),
            ],
        ),
        migrations.AddField(
            model_name='aimodel',
            name='cost_per_image_usd',
            field=models.DecimalField(decimal_places=4, default=Decimal('0'), help_text="The provider's price of one generated image (e.g. 0.039). For the dashboard's margin.", max_digits=10, verbose_name='Cost per image, USD'),
        ),
        migrations.AddField(
            model_name='aimodel',
            name='cost_per_video_second_usd',
            field=models.DecimalField(decimal_places=4, default=Decimal('0'), help_text="The provider's price of one second of generated video (e.g. 0.15). For the dashboard's margin.", max_digits=10, verbose_name='Cost per video second, USD'),
        ),
        migrations.AddConstraint(
            model_name='aimodel',
            constraint=models.CheckConstraint(condition=models.Q(('cost_per_image_usd__gte', 0), ('cost_per_video_second_usd__gte', 0)), name='aimodel_costs_non_negative'),
        ),
        migrations.AddConstraint(
            model_name='dailyactiveuser',
            constraint=models.UniqueConstraint(fields=('day', 'user_id'), name='dailyactive_day_user'),
        ),
        migrations.AddIndex(
            model_name='dailygenerations',
            index=models.Index(fields=['day'], name='dailygen_day'),
        ),
        migrations.AddIndex(
            model_name='dailyledger',
            index=models.Index(fields=['day'], name='dailyledger_day'),
        ),
        migrations.RunPython(set_list_prices, migrations.RunPython.noop),
    ]
