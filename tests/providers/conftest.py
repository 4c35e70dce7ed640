"""The provider tests are Django-free (no database, no settings): the project-wide autouse fixtures
that need them are neutralised here."""

from __future__ import annotations

import pytest

from tests.fake_google import _fresh_fake_google, server  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def _no_dispatch():
    """Overrides the parent autouse fixture of the same name, which needs pytest-django's `settings`."""
    yield
