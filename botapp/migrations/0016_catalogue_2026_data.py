"""The catalogue, current (November 2026).

- Nano Banana: `gemini-2.5-flash-image` (past its announced shutdown) becomes Nano Banana 2,
  `gemini-3.1-flash-image` (GA since 2026-05-28): 1K/2K/4K, up to 14 photos, 14 aspect ratios
  (with the extreme 1:4, 4:1, 1:8, 8:1), up to 4 variants, 2K and 4K priced higher.
- Nano Banana Pro (`gemini-3-pro-image`) is added inactive, for the operator to price and switch on.
- Veo 3.1 Fast and Veo 3.1: 4K, audio on/off, first and last frame, up to 3 reference images (8 s),
  extension of their own clips, and a price per second of video (the 8 s price is unchanged).
- Imagen (shut down on the Gemini API; Vertex only) is left as it is: inactive, on Vertex.

A seeded row moves only where the operator has not changed what this migration rewrites (its model
id, name, capabilities, default parameters and descriptions are still the seed's); an edited row is
left alone. Backwards restores the seed's values on the rows this migration moved (by the same test
against the new values) and deletes Nano Banana Pro if nothing was generated with it.
"""

from decimal import Decimal

from django.db import migrations

NANO_RATIOS_2025 = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
NANO_RATIOS_2026 = NANO_RATIOS_2025 + ["1:4", "4:1", "1:8", "8:1"]
VEO_2025_CAPS = {
    "max_input_images": 1,
    "aspect_ratios": ["16:9", "9:16"],
    "durations": [4, 6, 8],
    "resolutions": ["720p", "1080p"],
    "max_prompt_length": 1500,
    "supports_negative_prompt": True,
}
VEO_2025_DEFAULTS = {"aspect_ratio": "16:9", "duration_seconds": 8, "resolution": "720p"}


def veo_caps_2026() -> dict:
    return {
        "max_input_images": 1,
        "aspect_ratios": ["16:9", "9:16"],
        "durations": [4, 6, 8],
        "resolutions": ["720p", "1080p", "4k"],
        "resolution_durations": {"1080p": [8], "4k": [8]},
        "max_prompt_length": 1500,
        "negative_prompt": True,
        "audio": True,
        "last_frame": True,
        "max_reference_images": 3,
        "reference_durations": [8],
        "extension": True,
        "extension_seconds": 7,
    }


# slug -> (the seed's values, the current values, pricing to set with the move)
MOVES = {
    "nano-banana": (
        {
            "provider_model_id": "gemini-2.5-flash-image",
            "name": "Nano Banana",
            "capabilities": {"max_input_images": 3, "aspect_ratios": NANO_RATIOS_2025, "max_prompt_length": 2000},
            "default_params": {"aspect_ratio": "1:1"},
            "description": "Быстрая генерация и редактирование изображений: до 3 фото на входе.",
            "description_en": "Fast image generation and editing with up to 3 input photos.",
        },
        {
            "provider_model_id": "gemini-3.1-flash-image",
            "name": "Nano Banana 2",
            "capabilities": {
                "max_input_images": 14,
                "aspect_ratios": NANO_RATIOS_2026,
                "resolutions": ["1K", "2K", "4K"],
                "max_variants": 4,
                "max_prompt_length": 2000,
            },
            "default_params": {"aspect_ratio": "1:1", "resolution": "1K"},
            "description": "Быстрые изображения до 4K и редактирование: до 14 фото на входе, до 4 вариантов.",
            "description_en": "Fast images up to 4K and editing: up to 14 input photos, up to 4 variants.",
        },
        {"resolution": {"2K": "1.5", "4K": "2.25"}},
    ),
    "veo-3-1-fast": (
        {
            "provider_model_id": "veo-3.1-fast-generate-001",
            "name": "Veo 3.1 Fast",
            "capabilities": VEO_2025_CAPS,
            "default_params": VEO_2025_DEFAULTS,
            "description": "Видео со звуком по описанию или из фото, быстро.",
            "description_en": "Video with sound from a description or a photo, fast.",
        },
        {
            "provider_model_id": "veo-3.1-fast-generate-001",
            "name": "Veo 3.1 Fast",
            "capabilities": veo_caps_2026(),
            "default_params": {**VEO_2025_DEFAULTS, "generate_audio": True},
            "description": "Видео со звуком до 4K: по описанию, из фото, между двумя кадрами, по референсам. Быстро.",
            "description_en": "Video with sound up to 4K: from text, a photo, two frames or references. Fast.",
        },
        {"per_second": {"720p": "2.375", "1080p": "2.375", "4k": "4.75"}, "audio_off": "0.67"},
    ),
    "veo-3-1-pro": (
        {
            "provider_model_id": "veo-3.1-generate-001",
            "name": "Veo 3.1 Pro",
            "capabilities": VEO_2025_CAPS,
            "default_params": VEO_2025_DEFAULTS,
            "description": "Максимальное качество видео со звуком.",
            "description_en": "The highest-quality video with sound.",
        },
        {
            "provider_model_id": "veo-3.1-generate-001",
            "name": "Veo 3.1 Pro",
            "capabilities": veo_caps_2026(),
            "default_params": {**VEO_2025_DEFAULTS, "generate_audio": True},
            "description": "Максимальное качество видео со звуком, до 4K: кадры, референсы, продолжение.",
            "description_en": "The highest-quality video with sound, up to 4K: frames, references, extension.",
        },
        {"per_second": {"720p": "6.125", "1080p": "6.125", "4k": "12.25"}, "audio_off": "0.5"},
    ),
}

NANO_BANANA_PRO = {
    "slug": "nano-banana-pro",
    "name": "Nano Banana Pro",
    "emoji": "💎",
    "kind": "image",
    "provider": "google-gemini-image",
    "provider_model_id": "gemini-3-pro-image",
    "api_backend": "",
    "price": Decimal("4.00"),
    "is_active": False,
    "sort_order": 15,
    "description": "Лучшее качество, точный текст на изображениях, до 4K; до 14 фото на входе.",
    "description_en": "The best quality and legible text in images, up to 4K; up to 14 input photos.",
    "capabilities": {
        "max_input_images": 14,
        "aspect_ratios": NANO_RATIOS_2025,
        "resolutions": ["1K", "2K", "4K"],
        "max_variants": 4,
        "max_prompt_length": 4000,
    },
    "default_params": {"aspect_ratio": "1:1", "resolution": "1K"},
    "pricing": {"resolution": {"4K": "1.8"}},
    "cost_per_image_usd": Decimal("0.134"),
}


def _matches(row, values: dict) -> bool:
    return all(getattr(row, field) == value for field, value in values.items())


def forward(apps, schema_editor):
    AIModel = apps.get_model("botapp", "AIModel")
    for slug, (seed, current, pricing) in MOVES.items():
        row = AIModel.objects.filter(slug=slug).first()
        if row is None or not _matches(row, seed) or row.pricing:
            continue  # gone, or edited by the operator: theirs to keep
        for field, value in current.items():
            setattr(row, field, value)
        row.pricing = pricing
        row.save()
    if not AIModel.objects.filter(slug=NANO_BANANA_PRO["slug"]).exists():
        AIModel.objects.create(**NANO_BANANA_PRO)


def backward(apps, schema_editor):
    AIModel = apps.get_model("botapp", "AIModel")
    GenRequest = apps.get_model("botapp", "GenRequest")
    for slug, (seed, current, pricing) in MOVES.items():
        row = AIModel.objects.filter(slug=slug).first()
        if row is None or not _matches(row, current) or row.pricing != pricing:
            continue
        for field, value in seed.items():
            setattr(row, field, value)
        row.pricing = {}
        row.save()
    pro = AIModel.objects.filter(slug=NANO_BANANA_PRO["slug"], provider_model_id="gemini-3-pro-image").first()
    if pro is not None and not GenRequest.objects.filter(ai_model=pro).exists():
        pro.delete()


class Migration(migrations.Migration):
    dependencies = [("botapp", "0015_catalogue_2026")]

    operations = [migrations.RunPython(forward, backward)]
