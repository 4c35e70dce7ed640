"""What the fake Google received: `RecordedRequest`, and readers of a request body (prompt, images,
aspect ratio, text-model calls, an interaction's content blocks) shared by the answers and the tests."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    backend: str  # "gemini" | "vertex" | ""
    # generateContent | predict | predictLongRunning | fetchPredictOperation | getOperation | download |
    # createInteraction | getInteraction | deleteInteraction | listModels | getModel | unknown
    action: str
    model: str | None
    at: float = field(default_factory=time.time)

    @property
    def api_key(self) -> str | None:
        return self.headers.get("x-goog-api-key") or self.headers.get("X-Goog-Api-Key")

    @property
    def prompt(self) -> str:
        return prompt_of(self.action, self.json)

    @property
    def input_images(self) -> list[tuple[str, bytes]]:
        """(mime type, bytes) of every image the SDK sent."""
        return images_of(self.action, self.json)

    @property
    def generation_config(self) -> dict[str, Any]:
        """`generationConfig` (generateContent) or `generation_config` (an interaction)."""
        body = self.json if isinstance(self.json, dict) else {}
        return body.get("generationConfig") or body.get("generation_config") or {}

    @property
    def parameters(self) -> dict[str, Any]:
        return (self.json or {}).get("parameters") or {}

    @property
    def aspect_ratio(self) -> str | None:
        return aspect_of(self.action, self.json)

    @property
    def is_text(self) -> bool:
        """A generateContent call to a text model (no image output asked for)."""
        return self.action == "generateContent" and is_text_request(self.json)

    @property
    def image_size(self) -> str | None:
        """Nano Banana's `generationConfig.imageConfig.imageSize` ("1K", "2K", "4K")."""
        return (self.generation_config.get("imageConfig") or {}).get("imageSize")

    # Veo (`:predictLongRunning`): instances[0] holds the media, `parameters` the options.
    @property
    def instance(self) -> dict[str, Any]:
        return instance_of(self.json)

    @property
    def first_frame(self) -> tuple[str, bytes] | None:
        return media_of(self.instance.get("image"))

    @property
    def last_frame(self) -> tuple[str, bytes] | None:
        return media_of(self.instance.get("lastFrame"))

    @property
    def reference_images(self) -> list[tuple[str, bytes, str]]:
        """(mime type, bytes, referenceType) of every reference image."""
        found = []
        for ref in self.instance.get("referenceImages") or []:
            media = media_of((ref or {}).get("image"))
            if media is not None:
                found.append((*media, str(ref.get("referenceType") or "")))
        return found

    @property
    def source_video(self) -> tuple[str, bytes] | None:
        """(mime type, bytes) of the video to extend (Veo's instance `video`, an interaction's video block)."""
        if self.action == "createInteraction":
            videos = blocks_media(self.json, "video")
            return videos[0] if videos else None
        return media_of(self.instance.get("video"))

    # Interactions (`POST /{v}/interactions`): content blocks, the video format, the task.
    @property
    def content(self) -> list[dict[str, Any]]:
        """The content blocks of the user's input, as sent."""
        return interaction_blocks(self.json)

    @property
    def response_format(self) -> dict[str, Any]:
        """The video entry of `response_format` ({} if none)."""
        value = (self.json or {}).get("response_format") if isinstance(self.json, dict) else None
        for entry in value if isinstance(value, list) else [value]:
            if isinstance(entry, dict) and entry.get("type") == "video":
                return entry
        return {}

    @property
    def video_task(self) -> str | None:
        """`generation_config.video_config.task`."""
        return (self.generation_config.get("video_config") or {}).get("task")

    @property
    def previous_interaction_id(self) -> str | None:
        return (self.json or {}).get("previous_interaction_id") if isinstance(self.json, dict) else None


def b64decode_any(value: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not (the SDK sends `inlineData` URL-safe)."""
    text = value.strip().replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4))


def interaction_blocks(body: Any) -> list[dict[str, Any]]:
    """The content blocks of an interaction's user input: every user_input step's content (a list of
    blocks, as the SDK sends one), bare blocks, or a string as one text block."""
    value = body.get("input") if isinstance(body, dict) else None
    if isinstance(value, str):
        return [{"type": "text", "text": value}]
    blocks: list[dict[str, Any]] = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict):
            continue
        content = item.get("content")
        if item.get("type") == "user_input" or content is not None:
            if isinstance(content, str):
                blocks.append({"type": "text", "text": content})
            elif isinstance(content, list):
                blocks += [block for block in content if isinstance(block, dict)]
        else:
            blocks.append(item)
    return blocks


def blocks_media(body: Any, kind: str) -> list[tuple[str, bytes]]:
    """(mime type, bytes) of an interaction's inline `image` or `video` blocks."""
    found = []
    for block in interaction_blocks(body):
        if block.get("type") == kind and isinstance(block.get("data"), str):
            found.append((str(block.get("mime_type") or ""), b64decode_any(block["data"])))
    return found


def prompt_of(action: str, body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    if action == "createInteraction":
        return "\n".join(str(b.get("text") or "") for b in interaction_blocks(body) if b.get("type") == "text")
    if action == "generateContent":
        texts = []
        for content in body.get("contents") or []:
            for part in content.get("parts") or []:
                if isinstance(part, dict) and part.get("text"):
                    texts.append(part["text"])
        return "\n".join(texts)
    instances = body.get("instances") or [{}]
    return str((instances[0] or {}).get("prompt") or "")


def images_of(action: str, body: Any) -> list[tuple[str, bytes]]:
    images: list[tuple[str, bytes]] = []
    if not isinstance(body, dict):
        return images
    if action == "createInteraction":
        return blocks_media(body, "image")
    if action == "generateContent":
        for content in body.get("contents") or []:
            for part in content.get("parts") or []:
                blob = part.get("inlineData") or part.get("inline_data") if isinstance(part, dict) else None
                if blob and blob.get("data"):
                    mime = blob.get("mimeType") or blob.get("mime_type") or ""
                    images.append((mime, b64decode_any(blob["data"])))
        return images
    for instance in body.get("instances") or []:
        instance = instance or {}
        candidates = [instance.get("image"), instance.get("lastFrame")]
        candidates += [(ref or {}).get("image") for ref in instance.get("referenceImages") or []]
        images += [media for media in map(media_of, candidates) if media is not None]
    return images


def instance_of(body: Any) -> dict[str, Any]:
    """instances[0] of a `:predict` / `:predictLongRunning` body ({} if none)."""
    instances = body.get("instances") if isinstance(body, dict) else None
    first = instances[0] if isinstance(instances, list) and instances else None
    return first if isinstance(first, dict) else {}


def media_of(value: Any) -> tuple[str, bytes] | None:
    """(mime type, bytes) of a Vertex `{bytesBase64Encoded, mimeType}` image or video, else None."""
    if isinstance(value, dict) and value.get("bytesBase64Encoded"):
        return str(value.get("mimeType") or ""), b64decode_any(value["bytesBase64Encoded"])
    return None


TEXT_FINISH_REASONS = {"IMAGE_SAFETY": "SAFETY", "IMAGE_PROHIBITED_CONTENT": "PROHIBITED_CONTENT", "NO_IMAGE": "OTHER"}


def is_text_request(body: Any) -> bool:
    """A generateContent call to a text model: responseModalities absent or only TEXT."""
    if not isinstance(body, dict):
        return True
    modalities = (body.get("generationConfig") or {}).get("responseModalities") or []
    return all(str(m).upper() == "TEXT" for m in modalities)


def last_user_text(body: Any) -> str:
    """The last text part of the last user turn (a content without a role counts as the user's)."""
    if not isinstance(body, dict):
        return ""
    for content in reversed(body.get("contents") or []):
        if not isinstance(content, dict) or content.get("role", "user") not in ("user", None):
            continue
        for part in reversed(content.get("parts") or []):
            if isinstance(part, dict) and part.get("text"):
                return str(part["text"])
    return ""


def rewrite_text(text: str) -> str:
    """The fake text model's deterministic "rewrite" of a prompt."""
    return f"Improved: {text}"


def aspect_of(action: str, body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    if action == "generateContent":
        return ((body.get("generationConfig") or {}).get("imageConfig") or {}).get("aspectRatio")
    return (body.get("parameters") or {}).get("aspectRatio")
