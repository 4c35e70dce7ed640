"""Scripted outcomes of the fake Google: `Scenario` (what to answer), the base one, and the `[[marker]]`
words a prompt may carry to ask for one."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

IMAGEN_RAI_MESSAGE = (
    "Unable to show generated images. All images were filtered out because they violated Vertex AI's "
    "usage guidelines. You will not be charged for blocked images. Try rephrasing the prompt. If you "
    "think this was an error, send feedback. Support codes: 39322892, 29310472"
)
VEO_RAI_MESSAGE = (
    "Unable to generate videos because the prompt or image violated Vertex AI's usage guidelines. "
    "Support codes: 58061214"
)


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """How the fake answers. `None` fields fall through: prompt markers > model > server default.

    Errors: `http_error` (answer every matching call with this status and Google's error body),
    `fail_first` (only the first N calls with the same model+prompt fail, with `http_error` or 503),
    `error_message`, `retry_delay` (RetryInfo seconds for 429), `latency` (seconds, every call).
    generateContent: `finish_reason` (candidate without content), `block_reason` (promptFeedback,
    no candidates), `text_only` (STOP with text and no image), `text` (extra text part).
    Veo / Omni: `rai_filtered` (message; Veo raiMediaFilteredCount/Reasons and no videos, an Omni
    interaction `failed` with a SAFETY error); `block_reason` and `finish_reason` fail an Omni
    interaction too, with that code.
    Operations and interactions: `op_polls` (done at the N-th poll; 0 = no poll limit), `op_seconds`
    (done T s after creation), `op_never_done`, `op_error` ({code, message}), `poll_http_error`,
    `poll_fail_first`, `video_uri` (the finished one returns a URI on this server), `download_error`
    (that URI's status).
    """

    http_error: int | None = None
    error_message: str | None = None
    retry_delay: float | None = None
    fail_first: int | None = None
    latency: float | None = None
    finish_reason: str | None = None
    block_reason: str | None = None
    text_only: bool | None = None
    text: str | None = None
    rai_filtered: str | None = None
    op_polls: int | None = None
    op_seconds: float | None = None
    op_never_done: bool | None = None
    op_error: dict[str, Any] | None = None
    poll_http_error: int | None = None
    poll_fail_first: int | None = None
    video_uri: bool | None = None
    download_error: int | None = None

    def merged(self, over: Scenario | None) -> Scenario:
        """This scenario with every non-None field of `over` applied on top."""
        if over is None:
            return self
        changes = {f.name: getattr(over, f.name) for f in dataclasses.fields(over) if getattr(over, f.name) is not None}
        return dataclasses.replace(self, **changes) if changes else self

    # Shorthands -------------------------------------------------------------------------
    @classmethod
    def error(cls, status: int, message: str | None = None, *, retry_delay: float | None = None) -> Scenario:
        return cls(http_error=status, error_message=message, retry_delay=retry_delay)

    @classmethod
    def safety(cls, finish_reason: str = "IMAGE_SAFETY") -> Scenario:
        return cls(finish_reason=finish_reason, rai_filtered=IMAGEN_RAI_MESSAGE)

    @classmethod
    def slow(cls, *, polls: int = 0, seconds: float | None = None) -> Scenario:
        return cls(op_polls=polls, op_seconds=seconds)

    def run_done(self, *, polls: int, age: float) -> bool:
        """Is an operation or an interaction run by this scenario done, after `polls` polls and `age` s?"""
        if self.op_never_done:
            return False
        if self.op_polls and polls < self.op_polls:
            return False
        return not (self.op_seconds and age < self.op_seconds)


BASE_SCENARIO = Scenario(op_polls=2)  # a video is done at the second poll unless scripted otherwise

_MARKER = re.compile(r"\[\[([a-zA-Z_]+)(?::([^\]]*))?\]\]")


def parse_markers(prompt: str, custom: dict[str, Scenario] | None = None) -> Scenario | None:
    """The scenario asked for by `[[marker]]` / `[[marker:arg]]` words in a prompt.

    `[[safety]]` (IMAGE_SAFETY / the Veo RAI filter / an Omni SAFETY failure), `[[finish:REASON]]`, `[[blocked]]` /
    `[[block:REASON]]` (promptFeedback), `[[no_image]]` (finish NO_IMAGE), `[[text_only]]`,
    `[[rai]]` / `[[rai:message]]`, `[[error:CODE]]`, `[[fail_first:N]]` (503 unless `[[error:...]]`),
    `[[retry_after:S]]`, `[[latency:S]]`, `[[polls:N]]`, `[[seconds:T]]`, `[[never]]`,
    `[[op_error]]` / `[[op_error:CODE]]`, `[[poll_error:CODE]]`, `[[poll_fail_first:N]]`,
    `[[video_uri]]`, `[[download_error:CODE]]`; plus custom words registered with `add_marker`.
    """
    values: dict[str, Any] = {}
    result: Scenario | None = None
    for match in _MARKER.finditer(prompt or ""):
        name, arg = match.group(1).lower(), match.group(2)
        if custom and name in custom:
            result = (result or Scenario()).merged(custom[name])
            continue
        if name == "safety":
            values.update(finish_reason="IMAGE_SAFETY", rai_filtered=arg or IMAGEN_RAI_MESSAGE)
        elif name == "finish" and arg:
            values["finish_reason"] = arg.upper()
        elif name in ("blocked", "block"):
            values["block_reason"] = (arg or "PROHIBITED_CONTENT").upper()
        elif name == "no_image":
            values["finish_reason"] = "NO_IMAGE"
        elif name == "text_only":
            values["text_only"] = True
        elif name == "rai":
            values["rai_filtered"] = arg or IMAGEN_RAI_MESSAGE
        elif name == "error" and arg:
            values["http_error"] = int(arg)
        elif name == "fail_first" and arg:
            values["fail_first"] = int(arg)
        elif name == "retry_after" and arg:
            values["retry_delay"] = float(arg)
        elif name == "latency" and arg:
            values["latency"] = float(arg)
        elif name == "polls" and arg:
            values["op_polls"] = int(arg)
        elif name == "seconds" and arg:
            values.update(op_seconds=float(arg), op_polls=values.get("op_polls", 0))
        elif name == "never":
            values["op_never_done"] = True
        elif name == "op_error":
            code = int(arg) if arg else 13
            values["op_error"] = {"code": code, "message": f"Video generation failed (fake error {code})."}
        elif name == "poll_error" and arg:
            values["poll_http_error"] = int(arg)
        elif name == "poll_fail_first" and arg:
            values["poll_fail_first"] = int(arg)
        elif name == "video_uri":
            values["video_uri"] = True
        elif name == "download_error":
            values.update(video_uri=True, download_error=int(arg) if arg else 500)
    if values:
        result = (result or Scenario()).merged(Scenario(**values))
    return result
