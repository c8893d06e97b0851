"""One provider per model id, shared by every chat of the runner process so HTTP
connections to a provider are pooled."""

from __future__ import annotations

from cozeplus.model_catalog import ModelSpec
from services.runner.providers.base import ModelProvider
from services.runner.providers.echo import EchoProvider
from services.runner.providers.openai_compat import OpenAICompatProvider

_providers: dict[str, tuple[ModelSpec, ModelProvider]] = {}


def provider_for(spec: ModelSpec) -> ModelProvider:
    """The provider for a catalogue entry, created on first use. A changed spec under the
    same id (catalogue reloaded) gets a fresh provider; the old one is left to in-flight
    chats and closed when garbage collected."""
    cached = _providers.get(spec.id)
    if cached is not None and cached[0] == spec:
        return cached[1]
    provider: ModelProvider = (
        EchoProvider(spec) if spec.provider == "echo" else OpenAICompatProvider(spec)
    )
    _providers[spec.id] = (spec, provider)
    return provider


async def close_providers() -> None:
    """Releases every cached provider's connections (runner shutdown)."""
    providers = [p for _, p in _providers.values()]
    _providers.clear()
    for provider in providers:
        await provider.aclose()
