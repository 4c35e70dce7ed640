"""A fake Google generative AI server for tests, the local sandbox and benchmarks (Django-free).

Modules: `server` (FakeGoogleServer: routes, scripting, answers), `interaction_routes` (its
Interactions API and models.list part), `interactions` (Omni's checks and interaction state),
`catalogue` (the model ids it knows), `validation` (Google's field checks), `scenarios` (Scenario,
prompt markers), `records` (RecordedRequest and body readers), `media` (fake PNGs and MP4s), `errors`
(Google's error bodies)."""

from .media import fake_video, make_png
from .records import RecordedRequest
from .scenarios import BASE_SCENARIO, IMAGEN_RAI_MESSAGE, VEO_RAI_MESSAGE, Scenario, parse_markers
from .server import FakeGoogleServer

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
