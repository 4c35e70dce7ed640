"""Google providers on the official google-genai SDK (3.x): Nano Banana, Imagen, Veo.

Backends, as decided by the installed SDK (google-genai 3.4.0):

- `generate_content` (Nano Banana) works on both the Gemini API (API key) and Vertex AI.
- `generate_images` (Imagen) and `generate_videos` (Veo) raise `ValueError` before any request on
  the Gemini API: they need Vertex AI (express-mode API key, or project + location + ADC).
  Imagen and Veo therefore default to the Vertex backend; Nano Banana follows `GoogleConfig.use_vertex`.
- Veo operations are polled with `client.operations.get(GenerateVideosOperation(name=...))`:
  on Vertex that is `POST {resource}:fetchPredictOperation`; on the Gemini API `GET /{v}/{name}`.
  The backend of a poll is inferred from the operation name (`models/...` = Gemini API).

Video download: the providers never ask for a GCS output (`output_gcs_uri`), so Vertex returns the
video inline (`bytesBase64Encoded`). If a URI comes back instead, an `http(s)` URI is fetched with
httpx (the API key is only sent to Google hosts or the configured base URL's host); a `gs://` URI is
returned as `MediaItem(uri=..., data=None)` because the SDK cannot download from GCS.

The package, a module per part: `client` (GoogleConfig, the cached clients), `errors` (Google's
answers as typed errors), `common` (shared request checks, GoogleProvider), `nano_banana`, `imagen`, `veo`.
"""

from .client import GEMINI, VERTEX, GoogleConfig, clear_client_cache, get_client
from .common import GoogleProvider, sniff_image_mime
from .errors import map_api_error, map_exception, map_operation_error
from .imagen import ImagenProvider
from .nano_banana import NanoBananaProvider
from .veo import VeoProvider, backend_of_operation

__all__ = [
    "GEMINI",
    "VERTEX",
    "GoogleConfig",
    "GoogleProvider",
    "ImagenProvider",
    "NanoBananaProvider",
    "VeoProvider",
    "backend_of_operation",
    "clear_client_cache",
    "get_client",
    "map_api_error",
    "map_exception",
    "map_operation_error",
    "sniff_image_mime",
]
