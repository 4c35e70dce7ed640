"""Generation providers (Django-free, synchronous): Google Nano Banana / Imagen / Veo and an offline demo.

Typical use from a worker::

    provider = get_provider(ai_model.provider, config=google_config)
    submission = provider.submit(ProviderRequest(provider_model_id=..., kind="image", prompt=...))
    if submission.is_pending:
        store(submission.operation_id)          # later: provider.poll(operation_id, req)
    else:
        deliver(submission.result)
"""

from .base import (
    InputImage,
    InputVideo,
    InvalidInput,
    MediaItem,
    OperationTimeout,
    PermanentError,
    PollOutcome,
    Provider,
    ProviderBusy,
    ProviderError,
    ProviderRequest,
    ProviderResult,
    RateLimited,
    SafetyBlocked,
    Submission,
    Transient,
)
from .demo import DemoProvider
from .google import GoogleConfig, ImagenProvider, NanoBananaProvider, VeoProvider, clear_client_cache
from .registry import DEMO, GEMINI_IMAGE, IMAGEN, PROVIDERS, VEO, get_provider

__all__ = [
    "DEMO",
    "GEMINI_IMAGE",
    "IMAGEN",
    "PROVIDERS",
    "VEO",
    "DemoProvider",
    "GoogleConfig",
    "ImagenProvider",
    "InputImage",
    "InputVideo",
    "InvalidInput",
    "MediaItem",
    "NanoBananaProvider",
    "OperationTimeout",
    "PermanentError",
    "PollOutcome",
    "Provider",
    "ProviderBusy",
    "ProviderError",
    "ProviderRequest",
    "ProviderResult",
    "RateLimited",
    "SafetyBlocked",
    "Submission",
    "Transient",
    "VeoProvider",
    "clear_client_cache",
    "get_provider",
]
