"""The dashboard's generation rollup keeps Google's cost of what was made (`DailyGenerations.cost_usd`), priced by
resolution when a day is built (botapp/services/rollups.py), so the margin per model reads it instead of a flat
rate times the units.

The days already built get their cost here, from their succeeded requests, with the models' costs as they are
now: per request `AIModel.costs_usd[params.resolution]` (else the flat cost of the model's kind) times its units
(images: `params.number_of_images`, default 1; seconds: `params.duration_seconds`, default the model's). One
GROUP BY over the succeeded requests of the built days, then their rollup rows updated in batches (requests are
never deleted: the ledger protects them).

This is a frozen copy of `AIModel.unit_cost_usd` and `botapp.selectors.daily.units_of` as of this migration
(a migration cannot call the app's code, which will change). Backwards drops the column.
"""

from collections import defaultdict
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db import migrations, models
from django.db.models import Count
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import TruncDate
from django.utils import timezone

ZERO = Decimal("0")
PLACES = Decimal("0.000001")
DEFAULT_VIDEO_SECONDS = 8
BATCH = 1000


def _positive(value, default):
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default


def _flat(model):
    return model.cost_per_video_second_usd if model.kind == "video" else model.cost_per_image_usd


def _unit_cost(model, resolution):
    table = model.costs_usd if isinstance(model.costs_usd, dict) else {}
    if resolution in table:
        try:
            return Decimal(str(table[resolution]))
        except ArithmeticError:
            pass
    return _flat(model)


def _units(model, images, seconds):
    if model.kind != "video":
        return _positive(images, 1)
    default = _positive((model.default_params or {}).get("duration_seconds"), 0)
    if not default:
        caps = model.capabilities if isinstance(model.capabilities, dict) else {}
        durations = [_positive(d, 0) for d in caps.get("durations") or []]
        default = max([d for d in durations if d] or [DEFAULT_VIDEO_SECONDS])
    return _positive(seconds, default)


def fill_costs(apps, schema_editor):
    AIModel = apps.get_model("botapp", "AIModel")
    GenRequest = apps.get_model("botapp", "GenRequest")
    DailyGenerations = apps.get_model("botapp", "DailyGenerations")
    DashboardDay = apps.get_model("botapp", "DashboardDay")
    built = set(DashboardDay.objects.values_list("day", flat=True))
    if not built:
        return
    since = timezone.make_aware(datetime.combine(min(built), time.min))
    until = timezone.make_aware(datetime.combine(max(built) + timedelta(days=1), time.min))
    models_ = AIModel.objects.in_bulk()
    groups = (
        GenRequest.objects.filter(status="succeeded", created_at__gte=since, created_at__lt=until)
        .order_by()
        .annotate(
            day=TruncDate("created_at"),
            images=KeyTextTransform("number_of_images", "params"),
            seconds=KeyTextTransform("duration_seconds", "params"),
            resolution=KeyTextTransform("resolution", "params"),
        )
        .values("day", "ai_model_id", "error_code", "images", "seconds", "resolution")
        .annotate(n=Count("id"))
    )
    cost = defaultdict(lambda: ZERO)
    for g in groups:
        model = models_.get(g["ai_model_id"])
        if g["day"] not in built or model is None:
            continue
        key = (g["day"], g["ai_model_id"], g["error_code"])
        cost[key] += _unit_cost(model, g["resolution"]) * g["n"] * _units(model, g["images"], g["seconds"])
    rows = DailyGenerations.objects.filter(status="succeeded", day__in=built, ai_model_id__isnull=False)
    changed = []
    for row in rows.iterator(chunk_size=BATCH):
        key = (row.day, row.ai_model_id, row.error_code)
        row.cost_usd = cost[key].quantize(PLACES)
        changed.append(row)
    DailyGenerations.objects.bulk_update(changed, ["cost_usd"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [("botapp", "0018_catalogue_december_2026")]

    operations = [
        migrations.AddField(
            model_name="dailygenerations",
            name="cost_usd",
            field=models.DecimalField(
                decimal_places=6,
                default=0,
                help_text="Google's cost of the units made: per request, the unit cost at its resolution × its units.",
                max_digits=16,
                verbose_name="provider cost, USD",
            ),
        ),
        migrations.RunPython(fill_costs, migrations.RunPython.noop),
    ]
