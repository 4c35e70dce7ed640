"""Two default Star subscription plans (the operator edits or deactivates them in the admin), seeded
like the top-up packages (0003). Both are a little cheaper per token than the packages of their size."""

from decimal import Decimal

from django.db import migrations

PERKS_RU = "Токены каждый месяц без ручных пополнений\nТокены не сгорают: копятся на балансе\nОтмена в любой момент"
PERKS_EN = "Tokens every month, no manual top-ups\nTokens never expire: they add up on your balance\nCancel at any time"

PLANS = [
    {
        "name": "Лайт",
        "name_en": "Light",
        "tokens": Decimal("150"),
        "bonus_tokens": Decimal("15"),
        "price_stars": 500,
        "description": PERKS_RU,
        "description_en": PERKS_EN,
        "sort_order": 10,
    },
    {
        "name": "Про",
        "name_en": "Pro",
        "tokens": Decimal("500"),
        "bonus_tokens": Decimal("75"),
        "price_stars": 1500,
        "description": PERKS_RU + "\nЛучшая цена за токен",
        "description_en": PERKS_EN + "\nThe best price per token",
        "sort_order": 20,
    },
]


def forward(apps, schema_editor):
    SubscriptionPlan = apps.get_model("botapp", "SubscriptionPlan")
    for row in PLANS:
        SubscriptionPlan.objects.update_or_create(name=row["name"], defaults=row)


def backward(apps, schema_editor):
    SubscriptionPlan = apps.get_model("botapp", "SubscriptionPlan")
    SubscriptionPlan.objects.filter(name__in=[p["name"] for p in PLANS], subscriptions__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("botapp", "0013_payments_complete")]

    operations = [migrations.RunPython(forward, backward)]
