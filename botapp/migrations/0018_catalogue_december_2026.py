"""The catalogue, current (December 2026), with each model's lifecycle and Google's cost by resolution.

- Nano Banana 2.1 (`gemini-nano-banana-2.1`, GA since 2026-10-06) becomes the active Nano Banana: a new row that
  takes the price and pricing rule of the Nano Banana 2 row (the operator's, if changed), with a thinking level
  (minimal / medium / high) and a "⚡ Draft" on Nano Banana 2 Lite.
- Nano Banana 2 (`gemini-3.1-flash-image`, deprecated since 2026-10-06) is retired, its successor Nano Banana 2.1:
  it stays in history and is never offered.
- Nano Banana 2 Lite (`gemini-3.1-flash-lite-image`, GA): 1K only, about half the price: an active "fast draft" model.
- Imagen 4 (shut down on 2026-08-17 on the Gemini API and on Vertex) is retired, its successor Nano Banana 2.1.
- Gemini Omni Flash (`gemini-omni-1.2-flash`, 2026-11-05), Google's default video model, on the Interactions API:
  3–15 s, 360p to 4K, 16:9 or 9:16, sound, a first frame or up to 6 references, Extend up to 30 s, editing by
  conversation, and a 360p draft. Active, first among the video models.
- Every seeded model gets its lifecycle status and Google's cost in USD by resolution (the dashboard's margin).

A row the operator has edited is left alone: Nano Banana 2 moves only while its model id is still
`gemini-3.1-flash-image`, Imagen only while it is `imagen-4.0-generate-001`; a model id already in the catalogue is
not added twice. Backwards deletes the rows this migration added when nothing was generated with them (else they
are switched off) and puts back the rows it retired.
"""

from datetime import date
from decimal import Decimal

from django.db import migrations

NANO_RATIOS = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "1:4", "4:1", "1:8", "8:1"]
LITE_RATIOS = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
NB2_ID = "gemini-3.1-flash-image"
NB21_ID = "gemini-nano-banana-2.1"
LITE_ID = "gemini-3.1-flash-lite-image"
IMAGEN_ID = "imagen-4.0-generate-001"
OMNI_ID = "gemini-omni-1.2-flash"
NB2_DEPRECATED = date(2026, 10, 6)
IMAGEN_SHUTDOWN = date(2026, 8, 17)

NANO_COSTS = {"1K": "0.067", "2K": "0.101", "4K": "0.151"}

LITE = {
    "slug": "nano-banana-2-lite",
    "name": "Nano Banana 2 Lite",
    "emoji": "⚡",
    "kind": "image",
    "provider": "google-gemini-image",
    "provider_model_id": LITE_ID,
    "api_backend": "",
    "price": Decimal("0.75"),
    "is_active": True,
    "sort_order": 12,
    "status": "ga",
    "description": "Черновик за пару секунд: 1K, вдвое дешевле Nano Banana 2.1.",
    "description_en": "A draft in a couple of seconds: 1K, half the price of Nano Banana 2.1.",
    "capabilities": {
        "max_input_images": 3,
        "aspect_ratios": LITE_RATIOS,
        "resolutions": ["1K"],
        "max_variants": 4,
        "max_prompt_length": 2000,
    },
    "default_params": {"aspect_ratio": "1:1", "resolution": "1K"},
    "pricing": {},
    "cost_per_image_usd": Decimal("0.034"),
    "costs_usd": {"1K": "0.034"},
}

NB21_CAPS = {
    "max_input_images": 14,
    "aspect_ratios": NANO_RATIOS,
    "resolutions": ["1K", "2K", "4K"],
    "max_variants": 4,
    "max_prompt_length": 4000,
    "thinking_levels": ["minimal", "medium", "high"],
    "draft": {"model": LITE["slug"], "resolution": "1K"},
}

OMNI = {
    "slug": "gemini-omni-flash",
    "name": "Gemini Omni Flash",
    "emoji": "🌀",
    "kind": "video",
    "provider": "google-omni",
    "provider_model_id": OMNI_ID,
    "api_backend": "",
    "price": Decimal("8.00"),
    "is_active": True,
    "sort_order": 5,
    "status": "ga",
    "description": "Видео со звуком 3–15 с до 4K; реплики в кавычках звучат. Правьте готовый ролик словами.",
    "description_en": "Video with sound, 3–15 s, up to 4K; lines in quotes are spoken. Edit a clip by telling it what to change.",
    "capabilities": {
        "max_input_images": 1,
        "max_reference_images": 6,
        "aspect_ratios": ["16:9", "9:16"],
        "durations": [3, 4, 5, 6, 8, 10, 12, 15],
        "resolutions": ["360p", "720p", "1080p", "4k"],
        "audio": True,
        "extension": True,
        "extension_seconds": 5,
        "extension_keeps_resolution": True,
        "max_video_seconds": 30,
        "edit": True,
        "draft": {"resolution": "360p"},
        "max_prompt_length": 2000,
    },
    "default_params": {"aspect_ratio": "16:9", "duration_seconds": 8, "resolution": "720p", "generate_audio": True},
    "pricing": {"per_second": {"360p": "0.35", "720p": "1", "1080p": "1.75", "4k": "3.5"}},
    "cost_per_video_second_usd": Decimal("0.05"),
    "costs_usd": {"360p": "0.023", "720p": "0.05", "1080p": "0.10", "4k": "0.21"},
}

# The existing seeded rows: lifecycle and cost by resolution (where the operator has not set a cost table).
COSTS = {
    "nano-banana-pro": {"1K": "0.134", "2K": "0.134", "4K": "0.24"},
    "veo-3-1-fast": {"720p": "0.15", "1080p": "0.15", "4k": "0.35"},
    "veo-3-1-pro": {"720p": "0.40", "1080p": "0.40", "4k": "0.60"},
}


def forward(apps, schema_editor):
    AIModel = apps.get_model("botapp", "AIModel")
    nb2 = AIModel.objects.filter(slug="nano-banana", provider_model_id=NB2_ID).first()

    lite = AIModel.objects.filter(provider_model_id=LITE_ID).first()
    if lite is None and not AIModel.objects.filter(slug=LITE["slug"]).exists():
        lite = AIModel.objects.create(**LITE)

    nb21 = AIModel.objects.filter(provider_model_id=NB21_ID).first()
    if nb21 is None and not AIModel.objects.filter(slug="nano-banana-2-1").exists():
        nb21 = AIModel.objects.create(
            slug="nano-banana-2-1",
            name="Nano Banana 2.1",
            emoji="🍌",
            kind="image",
            provider="google-gemini-image",
            provider_model_id=NB21_ID,
            api_backend=nb2.api_backend if nb2 else "",
            price=nb2.price if nb2 else Decimal("1.50"),
            pricing=nb2.pricing if nb2 else {"resolution": {"2K": "1.5", "4K": "2.25"}},
            is_active=True,
            sort_order=nb2.sort_order if nb2 else 10,
            status="ga",
            description="Изображения до 4K и редактирование: до 14 фото, лучше держит персонажей; глубина обдумывания.",
            description_en="Images up to 4K and editing: up to 14 photos, better character consistency; a thinking level.",
            capabilities=NB21_CAPS if lite is not None else {k: v for k, v in NB21_CAPS.items() if k != "draft"},
            default_params={"aspect_ratio": "1:1", "resolution": "1K", "thinking_level": "medium"},
            cost_per_image_usd=Decimal("0.067"),
            costs_usd=NANO_COSTS,
        )
    if nb2 is not None:
        nb2.status = "retired"
        nb2.is_active = False
        nb2.deprecation_date = nb2.deprecation_date or NB2_DEPRECATED
        nb2.successor = nb2.successor or nb21
        nb2.costs_usd = nb2.costs_usd or NANO_COSTS
        nb2.save()

    imagen = AIModel.objects.filter(slug="imagen", provider_model_id=IMAGEN_ID).first()
    if imagen is not None:
        imagen.status = "retired"
        imagen.is_active = False
        imagen.shutdown_date = imagen.shutdown_date or IMAGEN_SHUTDOWN
        imagen.successor = imagen.successor or nb21
        imagen.save()

    if not AIModel.objects.filter(provider_model_id=OMNI_ID).exists() and not AIModel.objects.filter(
        slug=OMNI["slug"]
    ).exists():
        AIModel.objects.create(**OMNI)

    for slug, costs in COSTS.items():
        AIModel.objects.filter(slug=slug, costs_usd={}).update(costs_usd=costs)


def backward(apps, schema_editor):
    AIModel = apps.get_model("botapp", "AIModel")
    GenRequest = apps.get_model("botapp", "GenRequest")
    added = AIModel.objects.filter(
        slug__in=["nano-banana-2-1", LITE["slug"], OMNI["slug"]],
        provider_model_id__in=[NB21_ID, LITE_ID, OMNI_ID],
    )
    AIModel.objects.filter(successor__in=added).update(successor=None)
    for row in added:
        if GenRequest.objects.filter(ai_model=row).exists():
            row.is_active = False
            row.save(update_fields=["is_active"])
        else:
            row.delete()
    nb2 = AIModel.objects.filter(slug="nano-banana", provider_model_id=NB2_ID, status="retired").first()
    if nb2 is not None and nb2.switched_at is None:
        nb2.is_active = True
        nb2.status = "ga"
        nb2.save()


class Migration(migrations.Migration):
    dependencies = [("botapp", "0017_model_lifecycle")]

    operations = [migrations.RunPython(forward, backward)]
