"""The provider interface: plain dataclasses in, plain dataclasses out, typed errors.

Django-free and synchronous: providers are called from Celery worker threads. A provider either
finishes in one call (`Submission.done(result)`) or starts a long-running operation
(`Submission.pending(operation_id)`) that the caller stores and later passes to `poll()` (from any
process: nothing is kept in memory between `submit` and `poll`).
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Kind = Literal["image", "video"]
Backend = Literal["gemini", "vertex"]


@dataclass(frozen=True, slots=True)
class InputImage:
    """An image sent to the model (to edit, a video's first or last frame, or a reference)."""

    data: bytes
    mime_type: str = "image/png"


@dataclass(frozen=True, slots=True)
class InputVideo:
    """A video sent to the model: the clip a video extension continues."""

    data: bytes
    mime_type: str = "video/mp4"


@dataclass(slots=True)
class ProviderRequest:
    """One generation request.

    Inputs: `input_images` are an image model's photos to edit or combine (Nano Banana 2/Pro: up to
    14), or a video's first frame (one); `last_frame` a video's last frame (with a first frame);
    `reference_images` a video's "ingredients" (Veo 3.1: up to 3 asset images, alone); `source_video`
    the clip a video extension continues (Veo: one Veo made).

    `params` keys understood by the Google providers: `aspect_ratio` ("1:1", "16:9", "9:16", "1:8",
    ...), `resolution` (Nano Banana: "1K", "2K", "4K"; Veo: "720p", "1080p", "4k"; Omni: "360p" too),
    `duration_seconds` (Veo: 4, 6, 8; Omni: 3..15), `generate_audio` (Veo, Omni; optional),
    `thinking_level` (Nano Banana 2.1: "minimal", "medium", "high"), `seed` (optional).

    `previous_interaction_id`: an edit by conversation (Omni): the interaction of the clip this turn
    changes; the prompt is the instruction ("make it night").
    """

    provider_model_id: str
    kind: Kind
    prompt: str
    negative_prompt: str | None = None
    input_images: list[InputImage] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    backend: Backend | None = None
    request_id: str | None = None
    last_frame: InputImage | None = None
    reference_images: list[InputImage] = field(default_factory=list)
    source_video: InputVideo | None = None
    previous_interaction_id: str | None = None


@dataclass(slots=True)
class MediaItem:
    """One produced file: bytes (normally) or only a URI the caller must fetch (e.g. `gs://`)."""

    mime_type: str
    data: bytes | None = None
    uri: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None

    def __post_init__(self) -> None:
        if self.data is None and self.uri is None:
            raise ValueError("MediaItem needs data or uri")


@dataclass(slots=True)
class ProviderResult:
    """What a finished generation produced."""

    media: list[MediaItem]
    text: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    is_demo: bool = False


class _State(enum.Enum):
    DONE = "done"
    PENDING = "pending"


@dataclass(frozen=True, slots=True)
class Submission:
    """The outcome of `Provider.submit`: build it with `Submission.done()` or `Submission.pending()`."""

    state: _State
    result: ProviderResult | None = None
    operation_id: str | None = None

    def __post_init__(self) -> None:
        if self.state is _State.DONE and (self.result is None or self.operation_id is not None):
            raise ValueError("a finished Submission carries a result and no operation id")
        if self.state is _State.PENDING and (not self.operation_id or self.result is not None):
            raise ValueError("a pending Submission carries an operation id and no result")

    @classmethod
    def done(cls, result: ProviderResult) -> Submission:
        return cls(_State.DONE, result=result)

    @classmethod
    def pending(cls, operation_id: str) -> Submission:
        return cls(_State.PENDING, operation_id=operation_id)

    @property
    def is_done(self) -> bool:
        return self.state is _State.DONE

    @property
    def is_pending(self) -> bool:
        return self.state is _State.PENDING


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """The outcome of `Provider.poll`: `PollOutcome.pending()` or `PollOutcome.done(result)`."""

    state: _State
    result: ProviderResult | None = None
    progress: float | None = None  # 0..100 when the provider reports it

    def __post_init__(self) -> None:
        if (self.state is _State.DONE) != (self.result is not None):
            raise ValueError("a finished PollOutcome carries a result, a pending one does not")

    @classmethod
    def done(cls, result: ProviderResult) -> PollOutcome:
        return cls(_State.DONE, result=result)

    @classmethod
    def pending(cls, progress: float | None = None) -> PollOutcome:
        return cls(_State.PENDING, progress=progress)

    @property
    def is_done(self) -> bool:
        return self.state is _State.DONE

    @property
    def is_pending(self) -> bool:
        return self.state is _State.PENDING


class Provider(abc.ABC):
    """A generation backend. Implementations are thread-safe and keep no per-request state."""

    name: ClassVar[str] = "provider"
    long_running: ClassVar[bool] = False

    @abc.abstractmethod
    def submit(self, req: ProviderRequest) -> Submission:
        """Start (and for short jobs finish) a generation. Raises `ProviderError`."""

    def poll(self, operation_id: str, req: ProviderRequest) -> PollOutcome:
        """Check a long-running operation started by `submit`. Raises `ProviderError`."""
        raise PermanentError(f"{type(self).__name__} has no long-running operations", code="not_long_running")


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ProviderError(Exception):
    """Base of every provider failure.

    `code` is stable and machine-readable (the bot maps it to a translated text); `message` is for
    logs and operators; `user_reason` is an optional short English explanation safe to show;
    `retryable` says whether the same request may succeed if sent again later.
    """

    default_code: ClassVar[str] = "provider_error"
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retryable: bool | None = None,
        user_reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.retryable = self.default_retryable if retryable is None else retryable
        self.user_reason = user_reason
        self.details = details or {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep every attribute through pickling (Celery, multiprocessing); the default would
        # re-call __init__ with `args` only and lose code / reason / retry_after.
        return (_rebuild_error, (type(self), self.message, dict(self.__dict__)))


def _rebuild_error(cls: type[ProviderError], message: str, state: dict[str, Any]) -> ProviderError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class SafetyBlocked(ProviderError):
    """The prompt, an input image or the output was refused by a safety filter."""

    default_code = "safety_blocked"

    def __init__(self, reason: str, message: str | None = None, **kwargs: Any) -> None:
        self.reason = reason
        kwargs.setdefault("user_reason", "The request was blocked by the provider's safety filter.")
        super().__init__(message or f"blocked by the safety filter: {reason}", **kwargs)


class InvalidInput(ProviderError):
    """The request was rejected as malformed: bad parameter, unsupported ratio, bad image."""

    default_code = "invalid_input"


class RateLimited(ProviderError):
    """Quota or rate limit hit (HTTP 429 RESOURCE_EXHAUSTED)."""

    default_code = "rate_limited"
    default_retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        kwargs.setdefault("user_reason", "The provider is overloaded, please try again shortly.")
        super().__init__(message, **kwargs)


class Transient(ProviderError):
    """A failure of one HTTP call that may not repeat: network error, timeout, 5xx."""

    default_code = "transient"
    default_retryable = True


class ProviderBusy(Transient):
    """The provider answered 5xx (overloaded / unavailable / internal)."""

    default_code = "provider_busy"


class OperationTimeout(ProviderError):
    """A long-running operation did not finish in time."""

    default_code = "operation_timeout"


class PermanentError(ProviderError):
    """Anything that will not succeed by retrying: auth, unknown model, no image, failed operation."""

    default_code = "permanent_error"
