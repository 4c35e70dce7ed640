"""The emulator tests need no Django: neutralise the project-wide autouse database/settings fixtures."""

from __future__ import annotations

import pytest

from tests.fake_google import _fresh_fake_google, server  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def _seed_catalogue() -> None:
    """No database seeding for emulator tests."""


@pytest.fixture(autouse=True)
def _no_dispatch() -> None:
    """No Django settings for emulator tests."""
