"""Generation providers (Django-free, synchronous): Google Nano Banana / Veo / Gemini Omni and an offline demo.

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
from .google import GoogleConfig, NanoBananaProvider, OmniProvider, VeoProvider, clear_client_cache
from .registry import DEMO, GEMINI_IMAGE, IMAGEN, OMNI, PROVIDERS, RETIRED, VEO, get_provider

__all__ = [
    "DEMO",
    "GEMINI_IMAGE",
    "IMAGEN",
    "OMNI",
    "PROVIDERS",
    "RETIRED",
    "VEO",
    "DemoProvider",
    "GoogleConfig",
    "InputImage",
    "InputVideo",
    "InvalidInput",
    "MediaItem",
    "NanoBananaProvider",
    "OmniProvider",
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
