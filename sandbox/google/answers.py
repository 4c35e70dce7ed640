"""The fake's answers to generation calls, as JSON payloads: an image model's and a text model's
generateContent (each following its `Scenario`)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from .media import make_png
from .records import TEXT_FINISH_REASONS, aspect_of, images_of, last_user_text, rewrite_text
from .scenarios import Scenario


def image_content(model: str, body: Any, prompt: str, s: Scenario, long_side: int) -> dict[str, Any]:
    """generateContent of an image model: an image part (PNG), or the scripted refusal."""
    images = [data for _, data in images_of("generateContent", body)]
    usage = {
        "promptTokenCount": 8 + len(prompt) // 4 + 258 * len(images),
        "candidatesTokenCount": 0,
        "totalTokenCount": 0,
    }
    payload: dict[str, Any] = {"modelVersion": model, "responseId": uuid.uuid4().hex[:20], "usageMetadata": usage}
    if s.block_reason:
        payload["promptFeedback"] = {
            "blockReason": s.block_reason,
            "blockReasonMessage": f"The prompt was blocked ({s.block_reason}).",
        }
    elif s.finish_reason and s.finish_reason not in ("STOP", "FINISH_REASON_UNSPECIFIED"):
        payload["candidates"] = [
            {
                "index": 0,
                "finishReason": s.finish_reason,
                "finishMessage": f"Generation stopped: {s.finish_reason}.",
            }
        ]
    elif s.text_only:
        payload["candidates"] = [
            {
                "index": 0,
                "finishReason": "STOP",
                "content": {"role": "model", "parts": [{"text": s.text or "I can't draw that, sorry."}]},
            }
        ]
    else:
        size = ((body.get("generationConfig") or {}).get("imageConfig") or {}).get("imageSize")
        png = make_png(prompt, aspect_of("generateContent", body), images, long_side, size)
        parts: list[dict[str, Any]] = []
        if s.text:
            parts.append({"text": s.text})
        parts.append({"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}})
        payload["candidates"] = [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": parts}}]
        usage["candidatesTokenCount"] = 1290
    usage["totalTokenCount"] = usage["promptTokenCount"] + usage["candidatesTokenCount"]
    return payload


def text_content(model: str, body: Any, prompt: str, s: Scenario) -> dict[str, Any]:
    """A Gemini text model (no IMAGE in responseModalities): one candidate with one text part,
    `Scenario.text` or "Improved: " + the last user text part."""
    usage = {"promptTokenCount": 8 + len(prompt) // 4, "candidatesTokenCount": 0, "totalTokenCount": 0}
    payload: dict[str, Any] = {"modelVersion": model, "responseId": uuid.uuid4().hex[:20], "usageMetadata": usage}
    if s.block_reason:
        payload["promptFeedback"] = {
            "blockReason": s.block_reason,
            "blockReasonMessage": f"The prompt was blocked ({s.block_reason}).",
        }
    elif s.finish_reason and s.finish_reason not in ("STOP", "FINISH_REASON_UNSPECIFIED"):
        reason = TEXT_FINISH_REASONS.get(s.finish_reason, s.finish_reason)
        payload["candidates"] = [{"index": 0, "finishReason": reason, "finishMessage": f"Stopped: {reason}."}]
    else:
        text = s.text if s.text is not None else rewrite_text(last_user_text(body))
        payload["candidates"] = [
            {"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [{"text": text}]}}
        ]
        usage["candidatesTokenCount"] = 1 + len(text) // 4
    usage["totalTokenCount"] = usage["promptTokenCount"] + usage["candidatesTokenCount"]
    return payload
