"""The fake Google for the Django-free tests of the providers and of the stand-in itself: one server
per test module, forgotten between tests. A conftest imports both fixtures; a module may pass options
to the server with `FAKE_GOOGLE_OPTIONS = {...}` (e.g. `{"default": None}`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.google import FakeGoogleServer


@pytest.fixture(scope="module")
def server(request) -> Iterator[FakeGoogleServer]:
    with FakeGoogleServer(**getattr(request.module, "FAKE_GOOGLE_OPTIONS", {})) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _fresh_fake_google(request) -> Iterator[None]:
    """Each test that uses the server starts from a clean one (records, scripts, no expected key)."""
    if "server" in request.fixturenames:
        srv = request.getfixturevalue("server")
        srv.reset()
        srv.expected_api_key = None
    yield
