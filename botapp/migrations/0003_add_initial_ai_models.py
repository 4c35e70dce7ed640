"""Initial data: the four AI models of the catalogue, two promocodes, the top-up ladder and levels.

Reversible: the reverse function removes exactly what the forward one created.
"""

from decimal import Decimal

from django.db import migrations

NANO_RATIOS = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]

AI_MODELS = [
    {
        "slug": "nano-banana",
        "name": "Nano Banana",
        "emoji": "🍌",
        "kind": "image",
        "provider": "google-gemini-image",
        "provider_model_id": "gemini-2.5-flash-image",
        "api_backend": "",
        "price": Decimal("1.50"),
        "is_active": True,
        "sort_order": 10,
        "description": "Быстрая генерация и редактирование изображений: до 3 фото на входе.",
        "description_en": "Fast image generation and editing with up to 3 input photos.",
        "capabilities": {
            "max_input_images": 3,
            "aspect_ratios": NANO_RATIOS,
            "max_prompt_length": 2000,
        },
        "default_params": {"aspect_ratio": "1:1"},
    },
    {
        "slug": "imagen",
        "name": "Imagen",
        "emoji": "🎨",
        "kind": "image",
        "provider": "google-imagen",
        "provider_model_id": "imagen-4.0-generate-001",
        "api_backend": "vertex",
        "price": Decimal("3.00"),
        "is_active": False,
        "sort_order": 20,
        "description": "Фотореалистичные изображения высокого качества по описанию.",
        "description_en": "High-quality photorealistic images from a description.",
        "capabilities": {
            "max_input_images": 0,
            "aspect_ratios": ["1:1", "3:4", "4:3", "9:16", "16:9"],
            "max_prompt_length": 1000,
            "supports_negative_prompt": True,
        },
        "default_params": {"aspect_ratio": "1:1"},
    },
    {
        "slug": "veo-3-1-fast",
        "name": "Veo 3.1 Fast",
        "emoji": "⚡",
        "kind": "video",
        "provider": "google-veo",
        "provider_model_id": "veo-3.1-fast-generate-001",
        "api_backend": "vertex",
        "price": Decimal("19.00"),
        "is_active": True,
        "sort_order": 30,
        "description": "Видео со звуком по описанию или из фото, быстро.",
        "description_en": "Video with sound from a description or a photo, fast.",
        "capabilities": {
            "max_input_images": 1,
            "aspect_ratios": ["16:9", "9:16"],
            "durations": [4, 6, 8],
            "resolutions": ["720p", "1080p"],
            "max_prompt_length": 1500,
            "supports_negative_prompt": True,
        },
        "default_params": {"aspect_ratio": "16:9", "duration_seconds": 8, "resolution": "720p"},
    },
    {
        "slug": "veo-3-1-pro",
        "name": "Veo 3.1 Pro",
        "emoji": "🎬",
        "kind": "video",
        "provider": "google-veo",
        "provider_model_id": "veo-3.1-generate-001",
        "api_backend": "vertex",
        "price": Decimal("49.00"),
        "is_active": False,
        "sort_order": 40,
        "description": "Максимальное качество видео со звуком.",
        "description_en": "The highest-quality video with sound.",
        "capabilities": {
            "max_input_images": 1,
            "aspect_ratios": ["16:9", "9:16"],
            "durations": [4, 6, 8],
            "resolutions": ["720p", "1080p"],
            "max_prompt_length": 1500,
            "supports_negative_prompt": True,
        },
        "default_params": {"aspect_ratio": "16:9", "duration_seconds": 8, "resolution": "720p"},
    },
]

PROMOCODES = [
    {
        "code": "WELCOME2025",
        "kind": "bonus_tokens",
        "value": Decimal("10"),
        "description": "10 бонусных токенов для новых пользователей",
    },
    {
        "code": "FIRST50",
        "kind": "topup_discount",
        "value": Decimal("50"),
        "first_topup_only": True,
        "description": "Скидка 50% на первое пополнение",
    },
]

# Larger packages are cheaper per token.
PACKAGES = [
    {"name": "Start", "tokens": Decimal("10"), "price_stars": 50, "price_rub": Decimal("99"), "sort_order": 10},
    {"name": "Basic", "tokens": Decimal("50"), "price_stars": 225, "price_rub": Decimal("449"), "sort_order": 20},
    {"name": "Pro", "tokens": Decimal("100"), "price_stars": 400, "price_rub": Decimal("799"), "sort_order": 30},
    {"name": "Studio", "tokens": Decimal("300"), "price_stars": 1050, "price_rub": Decimal("2090"),
     "bonus_percent": Decimal("5"), "sort_order": 40},
    {"name": "Business", "tokens": Decimal("1000"), "price_stars": 3000, "price_rub": Decimal("5990"),
     "bonus_percent": Decimal("10"), "sort_order": 50},
]

LEVELS = [
    {"number": 1, "name": "Новичок", "name_en": "Newcomer", "xp_required": 0},
    {"number": 2, "name": "Любитель", "name_en": "Enthusiast", "xp_required": 150},
    {"number": 3, "name": "Мастер", "name_en": "Master", "xp_required": 500, "topup_bonus_percent": Decimal("3")},
    {"number": 4, "name": "Профи", "name_en": "Pro", "xp_required": 1500, "topup_bonus_percent": Decimal("5")},
    {"number": 5, "name": "Легенда", "name_en": "Legend", "xp_required": 5000, "topup_bonus_percent": Decimal("10")},
]


def forward(apps, schema_editor):
    AIModel = apps.get_model("botapp", "AIModel")
    Promocode = apps.get_model("botapp", "Promocode")
    TopUpPackage = apps.get_model("botapp", "TopUpPackage")
    Level = apps.get_model("botapp", "Level")
    for row in AI_MODELS:
        AIModel.objects.update_or_create(slug=row["slug"], defaults=row)
    for row in PROMOCODES:
        Promocode.objects.update_or_create(code=row["code"], defaults=row)
    for row in PACKAGES:
        TopUpPackage.objects.update_or_create(name=row["name"], defaults=row)
    for row in LEVELS:
        Level.objects.update_or_create(number=row["number"], defaults=row)


def backward(apps, schema_editor):
    apps.get_model("botapp", "AIModel").objects.filter(slug__in=[m["slug"] for m in AI_MODELS]).delete()
    apps.get_model("botapp", "Promocode").objects.filter(code__in=[p["code"] for p in PROMOCODES]).delete()
    apps.get_model("botapp", "TopUpPackage").objects.filter(name__in=[p["name"] for p in PACKAGES]).delete()
    apps.get_model("botapp", "Level").objects.filter(number__in=[lv["number"] for lv in LEVELS]).delete()


class Migration(migrations.Migration):
    dependencies = [("botapp", "0002_aimodel_promocode_transaction_userbalance_and_more")]

    operations = [migrations.RunPython(forward, backward)]
