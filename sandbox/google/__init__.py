"""A fake Google generative AI server for tests, the local sandbox and benchmarks (Django-free)."""

from .server import (
    BASE_SCENARIO,
    IMAGEN_RAI_MESSAGE,
    VEO_RAI_MESSAGE,
    FakeGoogleServer,
    RecordedRequest,
    Scenario,
    fake_video,
    make_png,
    parse_markers,
)

__all__ = [
    "BASE_SCENARIO",
    "IMAGEN_RAI_MESSAGE",
    "VEO_RAI_MESSAGE",
    "FakeGoogleServer",
    "RecordedRequest",
    "Scenario",
    "fake_video",
    "make_png",
    "parse_markers",
]
