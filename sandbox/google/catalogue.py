"""The model ids the fake Google knows, per backend, and its answers to `client.models.list()` /
`client.models.get()`.

The SDK's calls (google-genai 3.6.1, `models.list` with the default `query_base=True`):

- Gemini API: `GET /v1/models` (`pageSize`, `pageToken`) -> `{"models": [{"name": "models/<id>", ...}],
  "nextPageToken": ...}`; `models.get`: `GET /v1/models/<id>`.
- Vertex AI: the base models are `GET /v1beta1/publishers/google/models` (even with project +
  location) -> `{"publisherModels": [{"name": "publishers/google/models/<id>", ...}], "nextPageToken"}`;
  `models.get`: `GET /v1beta1/publishers/google/models/<id>`.

The list is the December 2026 lineup as the team's Google notes give it (a stand-in, not Google's word):
Imagen 4 is gone (shut down 2026-08-17), Veo is on Vertex only (its Gemini API previews shut down on
2026-10-22), Gemini Omni and the image and text models are on both. A test adds ids (`add_model`) or
takes them away (`retire_model`).
"""

from __future__ import annotations

from typing import Any

BOTH = ("gemini", "vertex")
VERTEX_ONLY = ("vertex",)
IMAGE, VIDEO, INTERACTIONS, TEXT = "image", "video", "interactions", "text"

# id -> (backends, display name, kind)
MODELS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "gemini-nano-banana-2.1": (BOTH, "Nano Banana 2.1", IMAGE),
    "gemini-3.1-flash-image": (BOTH, "Nano Banana 2 (deprecated)", IMAGE),
    "gemini-3.1-flash-lite-image": (BOTH, "Nano Banana 2 Lite", IMAGE),
    "gemini-3-pro-image": (BOTH, "Nano Banana Pro", IMAGE),
    "gemini-2.5-flash-image": (BOTH, "Nano Banana", IMAGE),
    "veo-3.1-generate-001": (VERTEX_ONLY, "Veo 3.1", VIDEO),
    "veo-3.1-fast-generate-001": (VERTEX_ONLY, "Veo 3.1 Fast", VIDEO),
    "gemini-omni-1.2-flash": (BOTH, "Gemini Omni Flash", INTERACTIONS),
    "gemini-omni-1.1-flash": (BOTH, "Gemini Omni Flash 1.1", INTERACTIONS),
    "gemini-3.5-flash-lite": (BOTH, "Gemini 3.5 Flash-Lite", TEXT),
    "gemini-2.5-flash": (BOTH, "Gemini 2.5 Flash", TEXT),
    "gemini-2.5-pro": (BOTH, "Gemini 2.5 Pro", TEXT),
    "gemini-2.5-flash-lite": (BOTH, "Gemini 2.5 Flash-Lite", TEXT),
}
METHODS = {
    IMAGE: ["generateContent", "countTokens"],
    VIDEO: ["predictLongRunning"],
    INTERACTIONS: ["createInteraction"],
    TEXT: ["generateContent", "countTokens", "createInteraction"],
}
DEFAULT_PAGE_SIZE = 50


def model_entry(model: str, backend: str, display: str = "", kind: str = "") -> dict[str, Any]:
    """One model as models.list / models.get answer it on a backend."""
    if backend == "gemini":
        return {
            "name": f"models/{model}",
            "baseModelId": model,
            "version": "001",
            "displayName": display or model,
            "description": f"{display or model} (fake Google)",
            "supportedGenerationMethods": METHODS.get(kind, ["generateContent"]),
        }
    return {
        "name": f"publishers/google/models/{model}",
        "versionId": "001",
        "launchStage": "GA",
        "openSourceCategory": "PROPRIETARY",
    }


def list_page(entries: list[dict[str, Any]], backend: str, page_size: Any, page_token: Any) -> dict[str, Any]:
    """A page of models.list: `models` (Gemini API) or `publisherModels` (Vertex), `nextPageToken`
    while more are left (the token is the next page's offset)."""
    try:
        size = max(1, int(page_size)) if page_size else DEFAULT_PAGE_SIZE
    except ValueError:
        size = DEFAULT_PAGE_SIZE
    try:
        start = int(str(page_token or "0").removeprefix("offset-"))
    except ValueError:
        start = len(entries)
    page: dict[str, Any] = {"models" if backend == "gemini" else "publisherModels": entries[start : start + size]}
    if start + size < len(entries):
        page["nextPageToken"] = f"offset-{start + size}"
    return page
