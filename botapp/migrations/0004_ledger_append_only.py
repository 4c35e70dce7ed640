"""The ledger is append-only in the database: triggers refuse UPDATE and DELETE (and TRUNCATE on
PostgreSQL) of `botapp_transaction` rows. See `botapp.ledger_guard`. Reversible: drops them."""

from django.db import migrations

from botapp import ledger_guard


def forward(apps, schema_editor):
    ledger_guard.install(schema_editor.connection)


def backward(apps, schema_editor):
    ledger_guard.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("botapp", "0003_add_initial_ai_models")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
