"""Page-number paging, as the official Coze SDKs do it (page_num is 1-based)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from services.registry.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    size: int
    number: int

    @classmethod
    def of(cls, page_size: int, page_num: int) -> PageRequest:
        """0 means "default" for both, as proto3 cannot tell unset from 0. Oversized
        pages are clamped rather than refused, so a greedy client still gets data."""
        if page_size < 0:
            raise InvalidArgument("page_size must not be negative")
        if page_num < 0:
            raise InvalidArgument("page_num must not be negative")
        return cls(min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE), page_num or 1)

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
