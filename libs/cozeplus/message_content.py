"""Message content as the API carries it, turned into parts a model understands.

`content_type` text/card is text; image is an image URL; file a file URL;
`object_string` is a JSON array of `{"type":"text","text":..}` and
`{"type":"image"|"file","file_url":..,"file_id":..}` items. The product document also
sends `type: "image"` with a URL as content. The edge parses on the way in (and
rejects what doesn't parse); the runner parses stored history the same way.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

import orjson

CONTENT_TYPES = frozenset({"text", "image", "file", "object_string", "card"})


class ContentError(ValueError):
    pass


@dataclass(frozen=True)
class ContentPart:
    kind: Literal["text", "image", "file"]
    text: str = ""
    url: str = ""
    file_id: str = ""


def parse_content(content: str, content_type: str, message_type: str = "") -> list[ContentPart]:
    if message_type == "image" or content_type == "image":
        return [ContentPart("image", url=content)]
    if content_type == "file":
        return [ContentPart("file", url=content)]
    if content_type == "object_string":
        return _parse_object_string(content)
    if content_type in ("text", "card", ""):
        return [ContentPart("text", text=content)]
    raise ContentError(f"unsupported content_type '{content_type}'")


def _parse_object_string(content: str) -> list[ContentPart]:
    try:
        items = orjson.loads(content)
    except orjson.JSONDecodeError as err:
        raise ContentError(f"object_string content is not valid JSON: {err}") from None
    if not isinstance(items, list) or not items:
        raise ContentError("object_string content must be a non-empty JSON array")
    parts: list[ContentPart] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ContentError(f"object_string item {index} must be an object")
        kind = item.get("type")
        if kind == "text":
            text = item.get("text")
            if not isinstance(text, str):
                raise ContentError(f"object_string item {index}: text must be a string")
            parts.append(ContentPart("text", text=text))
        elif kind in ("image", "file"):
            url = item.get("file_url") or ""
            file_id = item.get("file_id") or ""
            if not isinstance(url, str) or not isinstance(file_id, str) or not (url or file_id):
                raise ContentError(f"object_string item {index}: needs file_url or file_id")
            parts.append(ContentPart(kind, url=url, file_id=file_id))
        else:
            raise ContentError(f"object_string item {index}: unknown type {kind!r}")
    return parts


def plain_text(parts: list[ContentPart]) -> str:
    """The text of the parts, with files and images named, for counting and echoing."""
    out: list[str] = []
    for part in parts:
        if part.kind == "text":
            out.append(part.text)
        else:
            out.append(f"[{part.kind}: {part.url or part.file_id}]")
    return " ".join(p for p in out if p)


def unresolved_file_ids(parts: list[ContentPart]) -> list[str]:
    """Uploaded files (by `file_id`, without a URL) that an image part refers to: the runner
    turns each into a URL the model provider can fetch or read (`with_file_urls`)."""
    return [p.file_id for p in parts if p.kind == "image" and p.file_id and not p.url]


def with_file_urls(parts: list[ContentPart], urls: Mapping[str, str]) -> list[ContentPart]:
    return [
        replace(p, url=urls[p.file_id]) if not p.url and p.file_id in urls else p for p in parts
    ]


def data_url(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"
