"""Google providers on the official google-genai SDK (3.x): Nano Banana, Veo, Gemini Omni.

Backends, as decided by the installed SDK (google-genai 3.6.1):

- `generate_content` (Nano Banana) works on both the Gemini API (API key) and Vertex AI.
- `generate_videos` (Veo) raises `ValueError` before any request on the Gemini API: it needs Vertex
  AI (express-mode API key, or project + location + ADC), so Veo defaults to the Vertex backend.
- `interactions.create` / `interactions.get` (Gemini Omni) work on both: `POST /v1/interactions` on
  the Gemini API, `/v1beta1/interactions` on Vertex (project-scoped with project + location). Omni,
  like Nano Banana, follows `GoogleConfig.use_vertex`. Its client is a generated one with its own
  exceptions (`map_interactions_error`) and its own retries, turned off (`client.NO_RETRIES`).
- Imagen (`generate_images`) is gone: Imagen 4 was shut down on both backends (2026-08-17); the
  "google-imagen" family answers PermanentError(code="model_retired") (see registry).
- Veo operations are polled with `client.operations.get(GenerateVideosOperation(name=...))`:
  on Vertex that is `POST {resource}:fetchPredictOperation`; on the Gemini API `GET /{v}/{name}`.
  The backend of a poll is inferred from the operation name (`models/...` = Gemini API).

Video download: the providers never ask for a GCS output (`output_gcs_uri`), so Vertex returns the
video inline (`bytesBase64Encoded`). If a URI comes back instead, an `http(s)` URI is fetched with
httpx (the API key is only sent to Google hosts or the configured base URL's host); a `gs://` URI is
returned as `MediaItem(uri=..., data=None)` because the SDK cannot download from GCS.

The package, a module per part: `client` (GoogleConfig, the cached clients), `errors` (Google's
answers as typed errors), `common` (shared request checks, GoogleProvider), `nano_banana`, `veo`, `omni`.
"""

from .client import GEMINI, VERTEX, GoogleConfig, clear_client_cache, get_client
from .common import GoogleProvider, sniff_image_mime
from .errors import map_api_error, map_exception, map_interactions_error, map_operation_error
from .nano_banana import NanoBananaProvider
from .omni import OmniProvider
from .veo import VeoProvider, backend_of_operation

__all__ = [
    "GEMINI",
    "VERTEX",
    "GoogleConfig",
    "GoogleProvider",
    "NanoBananaProvider",
    "OmniProvider",
    "VeoProvider",
    "backend_of_operation",
    "clear_client_cache",
    "get_client",
    "map_api_error",
    "map_exception",
    "map_interactions_error",
    "map_operation_error",
    "sniff_image_mime",
]
