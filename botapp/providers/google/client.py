"""The google-genai clients: credentials and endpoints (`GoogleConfig`), one cached `genai.Client` per
(config, backend), where "gemini" is the Gemini API (API key) and "vertex" Vertex AI (express-mode key,
or project + location + ADC)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from google.genai import types

from ..base import PermanentError, ProviderError

logger = logging.getLogger(__name__)

GEMINI = "gemini"
VERTEX = "vertex"

# One attempt per call: the engine retries itself (with its own backoff, attempts and deadline).
# The SDK's own calls already make one attempt when `retry_options` is unset, but the Interactions
# client (a generated client inside the SDK) then retries 408/409/429/5xx 4 times with backoff;
# `attempts=1` turns that off too (google/genai/_gaos/google_genai.py, `_translate_retry_config`).
NO_RETRIES = types.HttpRetryOptions(attempts=1)


@dataclass(frozen=True)
class GoogleConfig:
    """Credentials and endpoints; one `genai.Client` is cached per (config, backend).

    - `api_key`: Gemini API key (AI Studio).
    - `use_vertex`: default backend for models whose `api_backend` is empty (Nano Banana).
    - Vertex: `vertex_api_key` (express mode) and/or `project` + `location` (with ADC or `credentials`).
    - `gemini_base_url` / `vertex_base_url`: endpoint overrides (the fake server in tests); when None
      the SDK also honours GOOGLE_GEMINI_BASE_URL / GOOGLE_VERTEX_BASE_URL.
    - `http_timeout`: seconds for one HTTP call; `download_timeout`: seconds for a video download.
    - `http_pool`: connections the client keeps open to Google (kept alive, not re-opened): at least
      the threads that call it at once (the poller's, the worker's), or every call past the pool's
      keep-alive size opens and closes a connection, under the pool's lock.
    """

    api_key: str | None = None
    use_vertex: bool = False
    project: str | None = None
    location: str | None = None
    vertex_api_key: str | None = None
    gemini_base_url: str | None = None
    vertex_base_url: str | None = None
    http_timeout: float = 120.0
    download_timeout: float = 300.0
    http_pool: int = 64
    credentials: Any = None  # google.auth credentials for project/location mode (else ADC)

    def __repr__(self) -> str:  # never print keys
        return (
            f"GoogleConfig(use_vertex={self.use_vertex}, project={self.project!r}, "
            f"location={self.location!r}, api_key={'set' if self.api_key else None}, "
            f"vertex_api_key={'set' if self.vertex_api_key else None}, "
            f"gemini_base_url={self.gemini_base_url!r}, vertex_base_url={self.vertex_base_url!r})"
        )

    @property
    def default_backend(self) -> str:
        return VERTEX if self.use_vertex else GEMINI


_clients: dict[tuple[GoogleConfig, str], Any] = {}
_clients_lock = threading.Lock()


def get_client(config: GoogleConfig, backend: str) -> Any:
    """The cached `genai.Client` for a backend ("gemini" | "vertex"); raises PermanentError if unset."""
    key = (config, backend)
    client = _clients.get(key)
    if client is not None:
        return client
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _build_client(config, backend)
            _clients[key] = client
    return client


def clear_client_cache() -> None:
    """Forget cached clients (tests, or after a credentials change)."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        try:
            client.close()
        except Exception:  # pragma: no cover - best effort
            logger.debug("closing a genai client failed", exc_info=True)


def _pool_limits(size: int) -> dict[str, Any]:
    """`client_args` giving the SDK's HTTP client a pool of `size` kept-alive connections, in the
    classes of the backend the SDK picks (httpx2 when installed, unless GOOGLE_GENAI_HTTP_CLIENT says
    httpx; httpx's own default keeps only 20 alive)."""
    import os

    module: Any = None
    if os.environ.get("GOOGLE_GENAI_HTTP_CLIENT", "").strip().lower() != "httpx":
        try:
            import httpx2 as module
        except ImportError:
            module = None
    if module is None:
        import httpx as module
    return {"limits": module.Limits(max_connections=size, max_keepalive_connections=size)}


def _build_client(config: GoogleConfig, backend: str) -> Any:
    from google import genai

    timeout_ms = int(config.http_timeout * 1000) if config.http_timeout else None
    pool = _pool_limits(max(1, config.http_pool))
    try:
        if backend == GEMINI:
            if not config.api_key:
                raise PermanentError("the Gemini API backend needs an API key (GOOGLE_API_KEY)", code="not_configured")
            options = types.HttpOptions(
                base_url=config.gemini_base_url or None, timeout=timeout_ms, retry_options=NO_RETRIES, client_args=pool
            )
            return genai.Client(vertexai=False, api_key=config.api_key, http_options=options)
        if backend == VERTEX:
            options = types.HttpOptions(
                base_url=config.vertex_base_url or None, timeout=timeout_ms, retry_options=NO_RETRIES, client_args=pool
            )
            if config.vertex_api_key:
                # Express mode; with project AND location too, paths are project-scoped.
                scoped = bool(config.project and config.location)
                return genai.Client(
                    vertexai=True,
                    api_key=config.vertex_api_key,
                    project=config.project if scoped else None,
                    location=config.location if scoped else None,
                    http_options=options,
                )
            if config.project:
                return genai.Client(
                    vertexai=True,
                    project=config.project,
                    location=config.location or "global",
                    credentials=config.credentials,
                    http_options=options,
                )
            raise PermanentError(
                "Vertex AI is not configured: set a Vertex API key (express mode) or project + location",
                code="not_configured",
            )
    except ProviderError:
        raise
    except Exception as exc:
        raise PermanentError(f"cannot create the {backend} client: {exc}", code="not_configured") from exc
    raise PermanentError(f"unknown backend {backend!r}", code="not_configured")
