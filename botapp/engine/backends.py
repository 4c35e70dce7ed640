"""Which provider runs a request: Google (the Gemini API or Vertex AI, per model) or the offline demo."""

from __future__ import annotations

from django.conf import settings

from botapp.models import AIModel, GenRequest
from botapp.providers import GoogleConfig, PermanentError, Provider, get_provider
from botapp.providers.demo import OPERATION_PREFIX as DEMO_OPERATION_PREFIX


def google_config() -> GoogleConfig:
    return GoogleConfig(
        api_key=settings.GOOGLE_API_KEY or None,
        use_vertex=settings.GOOGLE_GENAI_USE_VERTEXAI,
        project=settings.GOOGLE_CLOUD_PROJECT or None,
        location=settings.GOOGLE_CLOUD_LOCATION or None,
        vertex_api_key=settings.GOOGLE_VERTEX_API_KEY or None,
        gemini_base_url=settings.GOOGLE_GEMINI_BASE_URL or None,
        vertex_base_url=settings.GOOGLE_VERTEX_BASE_URL or None,
        http_timeout=settings.GOOGLE_HTTP_TIMEOUT_SECONDS,
        download_timeout=settings.GOOGLE_DOWNLOAD_TIMEOUT_SECONDS,
        http_pool=settings.GOOGLE_HTTP_POOL_SIZE,
    )


def google_backend(ai_model: AIModel) -> str:
    if ai_model.api_backend:
        return ai_model.api_backend
    if ai_model.provider == AIModel.Provider.VEO:  # the SDK sends generate_videos to Vertex only
        return "vertex"
    return "vertex" if settings.GOOGLE_GENAI_USE_VERTEXAI else "gemini"


def google_ready(ai_model: AIModel) -> bool:
    """Are there credentials for the backend this model uses?"""
    if google_backend(ai_model) == "vertex":
        return bool(settings.GOOGLE_VERTEX_API_KEY or settings.GOOGLE_CLOUD_PROJECT)
    return bool(settings.GOOGLE_API_KEY)


def uses_demo(ai_model: AIModel) -> bool:
    mode = settings.GENERATION_PROVIDER_MODE
    if ai_model.provider == AIModel.Provider.DEMO or mode == "demo":
        return True
    return mode == "auto" and not google_ready(ai_model)


def demo_provider() -> Provider:
    if not settings.GENERATION_ALLOW_DEMO:
        raise PermanentError(
            "the demo provider is disabled here (GENERATION_ALLOW_DEMO) and Google is not configured for "
            "this model: set the Google credentials (see the README)",
            code="not_configured",
        )
    return get_provider("demo", config=google_config(), demo_delay_seconds=settings.DEMO_VIDEO_SECONDS)


def provider_for(request: GenRequest) -> Provider:
    """The provider that runs (or runs on) this request: Google, or the offline demo."""
    ai_model = request.ai_model
    if ai_model is None:
        raise PermanentError("the request has no model", code="model_missing")
    if request.provider_operation_id.startswith(DEMO_OPERATION_PREFIX):
        return demo_provider()
    if uses_demo(ai_model):
        return demo_provider()
    return get_provider(ai_model.provider, config=google_config())
