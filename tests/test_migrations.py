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
    assert AIModel.objects.count() == 4


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
