"""What the runner asks of a model, and what a model answers.

The runner turns a chat (bot prompt, history, the new message) into a `CompletionRequest`
and consumes `ModelProvider.stream()`: zero or more `TextDelta`s, then the `ToolCall`s the
model asked for (each assembled from its streamed fragments; only when the request offered
tools), then exactly one `Completion` as the last item. Anything that goes wrong surfaces as
a `ProviderError` subclass whose message can be shown to the end user as is.

Cancellation: the stream is an async generator. Cancelling the task that awaits it aborts
the underlying HTTP request; a consumer that may stop iterating between items (e.g. on a
cancel signal that does not cancel the task) should wrap the stream in
`contextlib.aclosing()` so the request is aborted at once rather than at garbage collection.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias

from cozeplus.model_catalog import ModelSpec
from services.runner.tools.base import ToolCall, ToolDefinition

Role: TypeAlias = Literal["system", "user", "assistant", "tool"]
FinishReason: TypeAlias = Literal["stop", "length", "content_filter", "tool_calls", "other"]

# Defaults for a request that does not say; long enough for a slow first token from a busy
# hosted model, short enough that a dead one fails the chat instead of hanging it.
DEFAULT_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    url: str


@dataclass(frozen=True, slots=True)
class FilePart:
    """A file the user attached. No provider reads files yet: they become a text note."""

    url: str
    name: str = ""


ChatPart: TypeAlias = TextPart | ImagePart | FilePart


@dataclass(frozen=True, slots=True)
class PromptMessage:
    """One prompt message. An assistant message may carry the tool calls the model made; a
    `tool` message is one call's output, naming the call in `tool_call_id`."""

    role: Role
    parts: Sequence[ChatPart]
    tool_calls: Sequence[ToolCall] = ()
    tool_call_id: str = ""

    @classmethod
    def text(cls, role: Role, text: str) -> PromptMessage:
        return cls(role=role, parts=(TextPart(text),))

    @classmethod
    def tool(cls, tool_call_id: str, output: str) -> PromptMessage:
        return cls(role="tool", parts=(TextPart(output),), tool_call_id=tool_call_id)

    @property
    def text_content(self) -> str:
        """The message's text parts only, joined the way providers see them."""
        return "\n".join(p.text for p in self.parts if isinstance(p, TextPart))


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """One model call. Sampling fields left as None fall back to the model's catalogue
    defaults, and if those are unset too they are not sent (the provider's own default)."""

    messages: Sequence[PromptMessage]
    # Functions the model may call (native tool calling); empty: none.
    tools: Sequence[ToolDefinition] = ()
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    # Bounds each wait for the next streamed item, the first one included (measured from
    # the start of the call): covers both "no first token" and "stalled mid-stream".
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Completion:
    usage: Usage
    finish_reason: FinishReason = "stop"
    # True when the provider reported no usage and the adapter counted tokens itself
    # (see token_count.py for how approximate that is).
    usage_estimated: bool = False


StreamItem: TypeAlias = TextDelta | ToolCall | Completion


class ProviderError(Exception):
    """A model call failed. `code` is what the chat's `last_error.code` should carry;
    `msg` is safe to show to end users (no keys, no internal addresses)."""

    default_code = 500

    def __init__(self, code: int, msg: str, *, upstream_status: int | None = None) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        # The provider's HTTP status, for logs and metrics; not for end users.
        self.upstream_status = upstream_status

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, msg={self.msg!r})"


class ProviderTimeout(ProviderError):
    """No first token, or the stream stalled, within the request's timeout_s."""

    default_code = 504

    def __init__(
        self, msg: str, *, code: int | None = None, upstream_status: int | None = None
    ) -> None:
        super().__init__(code or self.default_code, msg, upstream_status=upstream_status)


class ProviderUnavailable(ProviderError):
    """Could not reach the provider, it failed (5xx, broken stream) or is rate limiting us:
    worth retrying later."""

    default_code = 503

    def __init__(
        self, msg: str, *, code: int | None = None, upstream_status: int | None = None
    ) -> None:
        super().__init__(code or self.default_code, msg, upstream_status=upstream_status)


class ProviderRejected(ProviderError):
    """The provider refused the request (4xx: bad or missing key, bad parameters, content
    too long): retrying the same request will not help."""

    # Not the upstream 4xx: the end user's request was fine, the server's model setup was not.
    default_code = 502

    def __init__(
        self, msg: str, *, code: int | None = None, upstream_status: int | None = None
    ) -> None:
        super().__init__(code or self.default_code, msg, upstream_status=upstream_status)


class ModelProvider(Protocol):
    """Calls one model of the catalogue."""

    @property
    def spec(self) -> ModelSpec: ...

    def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamItem, None]:
        """Yields TextDelta items, then ToolCall items, then exactly one Completion (always
        the last item), or raises ProviderError (possibly after some deltas)."""
        ...

    async def aclose(self) -> None:
        """Releases connections; the provider must not be used afterwards."""
        ...


async def collect(provider: ModelProvider, request: CompletionRequest) -> tuple[str, Completion]:
    """Runs a request to the end: the whole answer text and the final Completion."""
    parts: list[str] = []
    completion: Completion | None = None
    async with aclosing(provider.stream(request)) as items:
        async for item in items:
            if isinstance(item, TextDelta):
                parts.append(item.text)
            elif isinstance(item, Completion):
                completion = item
    if completion is None:
        raise ProviderError(500, f"model {provider.spec.id!r} ended without a completion")
    return "".join(parts), completion


def part_as_text(part: ChatPart) -> str:
    """How a part reads for a model that cannot take it natively (and in echo answers)."""
    if isinstance(part, TextPart):
        return part.text
    if isinstance(part, ImagePart):
        return f"[image: {part.url}]"
    return f"[file: {part.name} {part.url}]" if part.name else f"[file: {part.url}]"
