"""Add a few prompt styles (🎨 Style on the bot's options screen) to start from.

Idempotent: a preset is added only when no style has its English name yet, so running it again, or
after the operator edited, renamed in Russian, deactivated or reordered a preset, changes nothing.
A preset the operator deleted comes back on the next run: deactivate it instead.

    python manage.py seed_styles            # add the missing presets
    python manage.py seed_styles --dry-run  # list what would be added
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from botapp.models import PromptStyle
from botapp.services.styles import validate_template

# (emoji, name, name_en, applies_to, template); applies_to: "" both, "image", "video".
PRESETS: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "📷",
        "Фотореализм",
        "Photorealistic",
        "image",
        "{prompt}. Photorealistic photograph, natural light, 50 mm lens, shallow depth of field, fine detail.",
    ),
    (
        "🎬",
        "Кино",
        "Cinematic",
        "",
        "Cinematic shot: {prompt}. Anamorphic lens, dramatic lighting, film grain, rich colour grading.",
    ),
    (
        "🎨",
        "Акварель",
        "Watercolour",
        "image",
        "{prompt}, watercolour painting on textured paper, soft washes, gentle colour bleeding.",
    ),
    (
        "🌸",
        "Аниме",
        "Anime",
        "",
        "{prompt}, anime style, clean line art, vivid cel shading, expressive characters.",
    ),
    (
        "🧸",
        "3D-мультфильм",
        "3D cartoon",
        "",
        "{prompt}, 3D animated film style, soft global illumination, rounded shapes, playful colours.",
    ),
    (
        "✏️",
        "Карандашный набросок",
        "Pencil sketch",
        "image",
        "{prompt}, detailed graphite pencil sketch on paper, cross-hatching, monochrome.",
    ),
    (
        "🚁",
        "Съёмка с дрона",
        "Drone shot",
        "video",
        "{prompt}. Aerial drone shot gliding smoothly forward, wide landscape, golden-hour light.",
    ),
)


class Command(BaseCommand):
    help = "Add the preset prompt styles that are missing (matched by English name; never changes existing ones)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="only list the presets that would be added")

    def handle(self, *args, **options) -> None:
        existing = set(PromptStyle.objects.values_list("name_en", flat=True))
        missing = [preset for preset in PRESETS if preset[2] not in existing]
        if options["dry_run"]:
            for emoji, _name, name_en, _applies, _template in missing:
                self.stdout.write(f"would add {emoji} {name_en}")
            self.stdout.write(f"{len(missing)} to add, {len(PRESETS) - len(missing)} present")
            return
        with transaction.atomic():
            for order, (emoji, name, name_en, applies_to, template) in enumerate(PRESETS, start=1):
                if name_en in existing:
                    continue
                validate_template(template)
                PromptStyle.objects.create(
                    emoji=emoji,
                    name=name,
                    name_en=name_en,
                    applies_to=applies_to,
                    prompt_template=template,
                    sort_order=order * 10,
                )
        self.stdout.write(f"Prompt styles: {len(missing)} added, {len(PRESETS) - len(missing)} already present.")
