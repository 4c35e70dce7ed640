"""A Gemini text model through google-genai's `generate_content` (the "Improve my prompt" rewrite).

Django-free and synchronous like the other providers: the bot calls it in a thread
(`asyncio.to_thread`). It reuses the Google provider's cached clients (`get_client`, one per config
and backend) and its error mapping (`map_exception`), so a text call fails with the same typed
errors as a generation: SafetyBlocked, RateLimited, Transient / ProviderBusy, PermanentError.

The request (checked against google-genai 3.4.0):
    client.models.generate_content(
        model=<id>, contents=[<the user's text>],
        config=GenerateContentConfig(system_instruction=<what to do>, max_output_tokens=..., store=False),
    )
-> `POST /{v}/models/{id}:generateContent` with `systemInstruction` and `contents`. `store=False` (do not
keep the user's prompt in the project's logs) exists on the Gemini API only: the SDK refuses it on
Vertex AI, so it is sent on the Gemini backend alone.

Refusals come back as HTTP 200: `prompt_feedback.block_reason` (the input was blocked) or a candidate
whose `finish_reason` is a safety reason (the output was blocked); both raise SafetyBlocked.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from google.genai import types

from .base import PermanentError, SafetyBlocked
from .google import GEMINI, GoogleConfig, get_client, map_exception

logger = logging.getLogger(__name__)

# finish_reason values of a text candidate that mean "blocked", not "finished".
SAFETY_FINISH_REASONS = frozenset(
    {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "MODEL_ARMOR", "IMAGE_SAFETY"}
)


@dataclass(frozen=True, slots=True)
class TextRequest:
    """One text generation: `instruction` goes as the system instruction, `text` as the content."""

    model: str
    instruction: str
    text: str
    backend: str = GEMINI
    max_output_tokens: int = 2048


def _name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def generate_text(config: GoogleConfig, req: TextRequest) -> str:
    """The model's answer as plain text. Raises a ProviderError (see the module docstring)."""
    if not req.model:
        raise PermanentError("no text model id is configured", code="not_configured")
    client = get_client(config, req.backend)
    generation_config = types.GenerateContentConfig(
        system_instruction=req.instruction,
        max_output_tokens=req.max_output_tokens,
        store=False if req.backend == GEMINI else None,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    started = time.monotonic()
    try:
        response = client.models.generate_content(model=req.model, contents=[req.text], config=generation_config)
    except Exception as exc:
        mapped = map_exception(exc, context="generate_content (text)")
        logger.warning(
            "google text generate_content failed: model=%s backend=%s after %.2fs: %r",
            req.model,
            req.backend,
            time.monotonic() - started,
            mapped,
        )
        raise mapped from exc
    logger.info(
        "google text generate_content: model=%s backend=%s in %.2fs", req.model, req.backend, time.monotonic() - started
    )
    return parse_text(response)


def parse_text(response: Any) -> str:
    """The text of the first candidate (thought parts skipped); SafetyBlocked for a refusal."""
    feedback = getattr(response, "prompt_feedback", None)
    block = _name(getattr(feedback, "block_reason", None)) if feedback else None
    if block and block != "BLOCKED_REASON_UNSPECIFIED":
        raise SafetyBlocked(block, f"text prompt blocked: {block}", details={"stage": "prompt"})
    candidates = getattr(response, "candidates", None) or []
    if not candidates:
        raise PermanentError("the text model returned no candidates", code="empty_result")
    candidate = candidates[0]
    finish = _name(getattr(candidate, "finish_reason", None))
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text = "".join(part.text for part in parts if part.text and not getattr(part, "thought", None)).strip()
    if finish in SAFETY_FINISH_REASONS:
        raise SafetyBlocked(finish, f"text output blocked: finish_reason={finish}", details={"stage": "output"})
    if not text:
        raise PermanentError(f"the text model returned no text (finish_reason={finish})", code="empty_result")
    return text
