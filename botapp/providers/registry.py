"""Pick a provider by the family string stored in `AIModel.provider`.

Model ids are data (`AIModel.provider_model_id`, passed in `ProviderRequest`), never constants here.
"""

from __future__ import annotations

import threading

from .base import PermanentError, Provider
from .demo import DemoProvider
from .google import GoogleConfig, NanoBananaProvider, OmniProvider, VeoProvider

GEMINI_IMAGE = "google-gemini-image"
IMAGEN = "google-imagen"
VEO = "google-veo"
OMNI = "google-omni"
DEMO = "demo"

PROVIDERS: dict[str, type[Provider]] = {
    GEMINI_IMAGE: NanoBananaProvider,
    VEO: VeoProvider,
    OMNI: OmniProvider,
    DEMO: DemoProvider,
}
# Families whose models Google shut down: known (old requests name them), but nothing runs them.
RETIRED: dict[str, str] = {
    IMAGEN: "Imagen 4 was shut down by Google (2026-08-17, Gemini API and Vertex AI); use Nano Banana 2.1",
}

_cache: dict[tuple[str, GoogleConfig, float], Provider] = {}
_lock = threading.Lock()


def get_provider(provider: str, *, config: GoogleConfig, demo_delay_seconds: float = 3.0) -> Provider:
    """The provider for a family string ("google-gemini-image", "google-veo", "google-omni", "demo").

    Instances are cached per (family, config); they are stateless and thread-safe. Raises
    `PermanentError(code="model_retired")` for a retired family ("google-imagen") and
    `PermanentError(code="unknown_provider")` for anything else.
    """
    key = (provider, config, demo_delay_seconds)
    found = _cache.get(key)
    if found is not None:
        return found
    if provider in RETIRED:
        raise PermanentError(f"{provider!r}: {RETIRED[provider]}", code="model_retired")
    cls = PROVIDERS.get(provider)
    if cls is None:
        raise PermanentError(f"unknown provider {provider!r}", code="unknown_provider")
    with _lock:
        found = _cache.get(key)
        if found is None:
            demo = cls is DemoProvider
            found = DemoProvider(delay_seconds=demo_delay_seconds) if demo else cls(config)  # type: ignore[call-arg]
            _cache[key] = found
    return found
