"""Text embeddings from any OpenAI-compatible `/v1/embeddings` endpoint.

Knowledge workers embed chunks as they index them; the registry embeds search queries.
Both read the same models file (`[embeddings.NAME]`), so vectors always match.
"""

from __future__ import annotations

import os

import httpx

from cozeplus.model_catalog import EmbeddingSpec

BATCH = 64


class EmbeddingError(RuntimeError):
    pass


class EmbeddingClient:
    def __init__(self, spec: EmbeddingSpec, timeout_s: float = 30.0) -> None:
        self.spec = spec
        self._http = httpx.AsyncClient(base_url=spec.base_url.rstrip("/"), timeout=timeout_s)

    @property
    def model_id(self) -> str:
        return self.spec.id

    async def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            vectors.extend(await self._embed_batch(texts[start : start + BATCH]))
        return vectors

    async def embed_one(self, text: str) -> list[float]:
        return (await self._embed_batch([text]))[0]

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        headers = {}
        if self.spec.api_key_env:
            headers["Authorization"] = f"Bearer {os.environ.get(self.spec.api_key_env, '')}"
        try:
            response = await self._http.post(
                "/embeddings", json={"model": self.spec.model, "input": texts}, headers=headers
            )
            response.raise_for_status()
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            vectors = [[float(x) for x in item["embedding"]] for item in data]
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"embedding model {self.spec.id!r} failed: {exc}") from exc
        if len(vectors) != len(texts):
            raise EmbeddingError(f"embedding model {self.spec.id!r} returned a wrong count")
        return vectors

    async def close(self) -> None:
        await self._http.aclose()
