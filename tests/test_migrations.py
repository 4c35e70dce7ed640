from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from botapp.models import AIModel, Promocode, TopUpPackage


@pytest.mark.django_db(transaction=True)
def test_migrate_zero_and_back():
    call_command("migrate", "botapp", "zero", verbosity=0)
    assert "botapp_aimodel" not in connection.introspection.table_names()
    call_command("migrate", "botapp", verbosity=0)
    assert AIModel.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_data_migration_is_reversible():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("botapp")
    try:
        executor.migrate([("botapp", "0002_aimodel_promocode_transaction_userbalance_and_more")])
        assert "botapp_aimodel" in connection.introspection.table_names()
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM botapp_aimodel")
            assert cursor.fetchone()[0] == 0
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate([("botapp", "0003_add_initial_ai_models")])
        assert AIModel.objects.count() == 4
    finally:  # the later migrations too, for the tests that run after this one
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)


@pytest.mark.django_db
def test_initial_data():
    models = {m.slug: (m.price, m.is_active, m.kind) for m in AIModel.objects.all()}
    assert models == {
        "nano-banana": (1.5, True, "image"),
        "nano-banana-pro": (4, False, "image"),
        "imagen": (3, False, "image"),
        "veo-3-1-fast": (19, True, "video"),
        "veo-3-1-pro": (49, False, "video"),
    }
    assert Promocode.objects.get(code="WELCOME2025").value == 10
    first50 = Promocode.objects.get(code="FIRST50")
    assert (first50.kind, first50.value, first50.first_topup_only) == ("topup_discount", 50, True)
    packages = list(TopUpPackage.objects.filter(is_active=True).order_by("tokens"))
    per_token = [p.price_stars / p.tokens for p in packages]
    assert len(packages) >= 3 and per_token == sorted(per_token, reverse=True)


@pytest.mark.django_db
def test_no_missing_migrations():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def _migrate(target: str) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("botapp", target)])


@pytest.mark.django_db(transaction=True)
def test_catalogue_2026_forward_and_back_leaves_an_edited_model_alone():
    """0016 moves the seeded models to Google's current ids and capabilities, adds Nano Banana Pro
    inactive, and leaves a model the operator edited as it is; backwards restores the seed."""
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("botapp")
    try:
        _migrate("0015_catalogue_2026")
        with connection.cursor() as cursor:  # the state 0015 knows: no Nano Banana Pro yet
            cursor.execute("DELETE FROM botapp_aimodel WHERE slug = 'nano-banana-pro'")
            # The operator changed Veo 3.1 Pro's model id before the upgrade.
            cursor.execute(
                "UPDATE botapp_aimodel SET provider_model_id = 'veo-3.1-generate-preview' WHERE slug = 'veo-3-1-pro'"
            )
        _migrate("0016_catalogue_2026_data")
        nano = AIModel.objects.get(slug="nano-banana")
        assert (nano.provider_model_id, nano.name) == ("gemini-3.1-flash-image", "Nano Banana 2")
        assert nano.caps.resolutions == ("1K", "2K", "4K") and nano.caps.max_variants == 4
        assert {"1:8", "8:1", "1:4", "4:1"} <= set(nano.caps.aspect_ratios)
        assert nano.price == Decimal("1.50") and nano.is_active
        assert nano.quote({"resolution": "4K"}).total == Decimal("3.38")  # 1.50 × 2.25, half up
        fast = AIModel.objects.get(slug="veo-3-1-fast")
        assert fast.caps.last_frame and fast.caps.extension and fast.caps.max_reference_images == 3
        assert "4k" in fast.caps.resolutions and fast.caps.audio
        assert fast.quote({"duration_seconds": 8, "resolution": "720p"}).total == Decimal("19.00")  # unchanged
        assert fast.quote({"duration_seconds": 4, "resolution": "720p"}).total == Decimal("9.50")
        pro = AIModel.objects.get(slug="veo-3-1-pro")
        assert pro.provider_model_id == "veo-3.1-generate-preview"  # the operator's edit survives
        assert pro.pricing == {} and "4k" not in pro.caps.resolutions
        new = AIModel.objects.get(slug="nano-banana-pro")
        assert (new.provider_model_id, new.is_active) == ("gemini-3-pro-image", False)

        _migrate("0015_catalogue_2026")
        nano = AIModel.objects.get(slug="nano-banana")
        assert (nano.provider_model_id, nano.name, nano.pricing) == ("gemini-2.5-flash-image", "Nano Banana", {})
        assert nano.caps.max_input_images == 3
        assert AIModel.objects.get(slug="veo-3-1-pro").provider_model_id == "veo-3.1-generate-preview"
        assert not AIModel.objects.filter(slug="nano-banana-pro").exists()
    finally:  # back to the seed's Veo 3.1 Pro, then the latest state as every other test sees it
        _migrate("0015_catalogue_2026")
        AIModel.objects.filter(slug="veo-3-1-pro").update(provider_model_id="veo-3.1-generate-001")
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)
