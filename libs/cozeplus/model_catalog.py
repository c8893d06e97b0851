"""The models a bot can use: built-in ones plus those declared in a models file.

The registry rejects unknown model ids when a bot is saved; the runner looks up how
to call a model. Both read the same file, so they always agree.

A models file is TOML:

    [models.deepseek-chat]
    provider = "openai"                 # any OpenAI-compatible API
    base_url = "https://api.deepseek.com/v1"
    model = "deepseek-chat"             # the provider's own model name
    api_key_env = "DEEPSEEK_API_KEY"    # read from the environment at call time
    vision = false
    [models.deepseek-chat.defaults]
    temperature = 0.7
    max_tokens = 1024

An optional embedding model turns on semantic and hybrid knowledge retrieval (any
OpenAI-compatible /v1/embeddings; the first one declared is used):

    [embeddings.bge]
    base_url = "http://127.0.0.1:8000/v1"
    model = "bge-m3"
    api_key_env = "EMBEDDINGS_API_KEY"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ECHO_MODEL_ID = "echo"


class ModelDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    provider: Literal["echo", "openai"]
    label: str = ""
    base_url: str = ""
    model: str = ""
    api_key_env: str = ""
    vision: bool = False
    defaults: ModelDefaults = Field(default_factory=ModelDefaults)


class EmbeddingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    base_url: str
    model: str
    api_key_env: str = ""


BUILTIN_MODELS = (
    ModelSpec(
        id=ECHO_MODEL_ID,
        provider="echo",
        label="Built-in echo model (no network): repeats the last user message",
        model=ECHO_MODEL_ID,
        vision=True,
    ),
)


class ModelCatalog:
    def __init__(
        self, models: list[ModelSpec], embeddings: list[EmbeddingSpec] | None = None
    ) -> None:
        self._models = {m.id: m for m in models}
        # The embedding model knowledge retrieval uses, if any.
        self.embedding: EmbeddingSpec | None = embeddings[0] if embeddings else None

    @classmethod
    def load(cls, path: Path | None) -> ModelCatalog:
        models = list(BUILTIN_MODELS)
        embeddings: list[EmbeddingSpec] = []
        if path is not None:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
            for model_id, spec in raw.get("models", {}).items():
                models.append(ModelSpec(id=model_id, **spec))
            for embedding_id, spec in raw.get("embeddings", {}).items():
                embeddings.append(EmbeddingSpec(id=embedding_id, **spec))
        return cls(models, embeddings)

    def get(self, model_id: str) -> ModelSpec | None:
        return self._models.get(model_id)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._models

    @property
    def ids(self) -> list[str]:
        return sorted(self._models)
