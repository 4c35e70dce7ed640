"""The provider tests are Django-free: they run with and without `-p no:django`."""

from __future__ import annotations

import pytest

from tests.fake_google import _fresh_fake_google, server  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def _no_dispatch():
    """Overrides the parent autouse fixture of the same name, which needs pytest-django's `settings`."""
    yield
