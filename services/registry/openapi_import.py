"""OpenAPI 3.0/3.1 documents (JSON or YAML) into tools (wire contract section 7).

Each operation is a tool named by its operationId. Its path, query and header parameters
become properties of one JSON Schema object; a JSON request body becomes its `body`
property (never flattened: body fields could collide with parameter names, and the runner
sends `body` as it is). Cookie parameters are not supported and refused.

Documents come from users, so the steps run in this order, each bounded:
1. size cap, then parse (YAML: its event stream is checked for aliases, depth and size
   before anything is built; aliases are how "billion laughs" documents multiply a small
   text into a huge tree);
2. a walk that bounds depth and node count and refuses every `$ref` that is not local
   (`#/...`): nothing is ever fetched;
3. local `$ref`s resolved with cycle detection (a recursive schema cannot be inlined into a
   function definition, so it is refused by name);
4. the document validated against the OpenAPI schema by openapi-spec-validator (safe now:
   there is nothing left to fetch and no loop to follow);
5. operations extracted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml
from openapi_spec_validator import validate as validate_spec
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from services.registry.errors import InvalidArgument

MAX_DOCUMENT_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_NODES = 100_000
MAX_OPERATIONS = 200
MAX_DESCRIPTION_CHARS = 1024
# The OpenAI function-name charset: tool names go to models as function names.
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
PARAMETER_LOCATIONS = ("path", "query", "header")
BODY_PROPERTY = "body"


@dataclass(frozen=True)
class HttpParameter:
    name: str
    location: str
    required: bool


@dataclass(frozen=True)
class Operation:
    name: str
    description: str
    method: str
    path: str
    parameters: tuple[HttpParameter, ...]
    has_json_body: bool
    # JSON Schema (an object) of the tool's arguments.
    schema: dict[str, Any]


@dataclass(frozen=True)
class ImportedApi:
    server_url: str
    operations: tuple[Operation, ...]


def import_openapi(text: str, server_url: str = "") -> ImportedApi:
    """Parse and validate a document; raises InvalidArgument naming the problem."""
    if len(text.encode()) > MAX_DOCUMENT_BYTES:
        raise InvalidArgument(f"openapi: document is larger than {MAX_DOCUMENT_BYTES} bytes")
    document = _parse(text)
    _check_shape(document)
    try:
        resolved = _Resolver(document).resolve(document, "#")
    except RecursionError:
        raise InvalidArgument("openapi: $refs nest too deeply") from None
    _validate(resolved)
    server = _server_url(resolved, server_url)
    operations = tuple(_operations(resolved))
    if not operations:
        raise InvalidArgument("openapi: the document has no operations")
    return ImportedApi(server, operations)


def _parse(text: str) -> dict[str, Any]:
    if not text.strip():
        raise InvalidArgument("openapi: the document is empty")
    try:
        if text.lstrip().startswith("{"):
            document = json.loads(text)
        else:
            _check_yaml_events(text)
            document = yaml.load(text, Loader=_YAML_LOADER)
    except RecursionError:
        raise InvalidArgument(f"openapi: nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidArgument(f"openapi: not valid JSON or YAML: {_one_line(exc)}") from None
    if not isinstance(document, dict):
        raise InvalidArgument("openapi: the document must be an object")
    return document


# libyaml when present: building a large document in pure Python takes seconds.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _check_yaml_events(text: str) -> None:
    """Bounds a YAML document before anything is built from it: aliases (how "billion
    laughs" documents multiply a small text into a huge tree), depth and size."""
    depth = 0
    for count, event in enumerate(yaml.parse(text, Loader=_YAML_LOADER)):
        if count > 2 * MAX_NODES:
            raise InvalidArgument(f"openapi: more than {MAX_NODES} values in the document")
        if isinstance(event, yaml.AliasEvent):
            raise InvalidArgument("openapi: YAML aliases (*anchor) are not supported")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise InvalidArgument(f"openapi: nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_shape(document: Any) -> None:
    """Bounds depth and size, and refuses non-local $refs, without recursion."""
    stack: list[tuple[Any, int, str]] = [(document, 0, "#")]
    nodes = 0
    while stack:
        node, depth, where = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise InvalidArgument(f"openapi: more than {MAX_NODES} values in the document")
        if depth > MAX_DEPTH:
            raise InvalidArgument(f"openapi: nested deeper than {MAX_DEPTH} levels at {where}")
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref is not None and (not isinstance(ref, str) or not ref.startswith("#")):
                raise InvalidArgument(
                    f"openapi: $ref {str(ref)[:200]!r} at {where} is not local; only "
                    "references inside the document (#/...) are supported, nothing is fetched"
                )
            for key, value in node.items():
                stack.append((value, depth + 1, f"{where}/{key}"))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                stack.append((value, depth + 1, f"{where}/{index}"))


class _Resolver:
    """Inlines local $refs; a reference reached again while being inlined is a loop."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._document = document
        self._done: dict[str, Any] = {}
        # Inlined size of each resolved $ref: a reference reused many times is shared in
        # memory, but every use is a copy in the tool's JSON Schema, so each use counts.
        self._sizes: dict[str, int] = {}
        self._nodes = 0

    def resolve(self, node: Any, where: str, active: tuple[str, ...] = ()) -> Any:
        self._count(1)
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                if ref in active:
                    raise InvalidArgument(
                        f"openapi: $ref loop: {' -> '.join((*active[active.index(ref) :], ref))}"
                        " (recursive schemas cannot become tool parameters)"
                    )
                if ref in self._done:
                    self._count(self._sizes[ref])
                else:
                    before = self._nodes
                    target = self._lookup(ref, where)
                    self._done[ref] = self.resolve(target, ref, (*active, ref))
                    self._sizes[ref] = self._nodes - before
                return self._done[ref]
            return {k: self.resolve(v, f"{where}/{k}", active) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(v, f"{where}/{i}", active) for i, v in enumerate(node)]
        return node

    def _count(self, nodes: int) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            raise InvalidArgument(
                f"openapi: inlining $refs makes the document larger than {MAX_NODES} values"
            )

    def _lookup(self, ref: str, where: str) -> Any:
        node: Any = self._document
        for raw in ref[1:].split("/")[1:] if ref != "#" else []:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise InvalidArgument(f"openapi: $ref {ref!r} at {where} points at nothing")
        return node


def _validate(document: dict[str, Any]) -> None:
    version = document.get("openapi")
    if not isinstance(version, str) or not re.match(r"^3\.[01]\.\d+", version):
        raise InvalidArgument(
            f"openapi: unsupported version {version!r}; "
            "OpenAPI 3.0.x and 3.1.x documents are supported"
        )
    try:
        validate_spec(document)
    except OpenAPIValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path)
        where = f" at {path}" if path else ""
        raise InvalidArgument(
            f"openapi: invalid document{where}: {_one_line(exc.message.splitlines()[0])}"
        ) from None
    except RecursionError:
        raise InvalidArgument("openapi: the document is too deeply nested") from None


def _server_url(document: Mapping[str, Any], override: str) -> str:
    url = override.strip()
    if not url:
        servers = document.get("servers") or []
        if servers:
            first = servers[0]
            url = str(first.get("url", ""))
            for name, variable in (first.get("variables") or {}).items():
                url = url.replace("{" + name + "}", str(variable.get("default", "")))
    if not url:
        raise InvalidArgument("openapi: the document names no server; set server_url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(
            f"openapi: server URL {url[:200]!r} must be an absolute http(s) URL; set server_url"
        )
    return url.rstrip("/")


def _operations(document: Mapping[str, Any]) -> Iterator[Operation]:
    seen: set[str] = set()
    count = 0
    for path, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        shared = item.get("parameters") or []
        for method in METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            count += 1
            if count > MAX_OPERATIONS:
                raise InvalidArgument(f"openapi: more than {MAX_OPERATIONS} operations")
            where = f"{method.upper()} {path}"
            name = operation.get("operationId")
            if not isinstance(name, str) or not name:
                raise InvalidArgument(f"openapi: operation {where} has no operationId")
            if not TOOL_NAME.fullmatch(name):
                raise InvalidArgument(
                    f"openapi: operationId {name[:100]!r} ({where}) must be 1-64 letters, "
                    "digits, _ or -"
                )
            if name in seen:
                raise InvalidArgument(f"openapi: duplicate operationId {name!r}")
            seen.add(name)
            yield _operation(name, method, path, shared, operation, where)


def _operation(
    name: str,
    method: str,
    path: str,
    shared: list[Any],
    operation: Mapping[str, Any],
    where: str,
) -> Operation:
    merged: dict[tuple[str, str], Mapping[str, Any]] = {}
    for parameter in (*shared, *(operation.get("parameters") or [])):
        merged[(parameter["name"], parameter["in"])] = parameter
    properties: dict[str, Any] = {}
    required: list[str] = []
    parameters: list[HttpParameter] = []
    for (param_name, location), parameter in merged.items():
        if location not in PARAMETER_LOCATIONS:
            raise InvalidArgument(
                f"openapi: {where}: parameter {param_name!r} is in {location}; only path, "
                "query and header parameters are supported"
            )
        if param_name in properties or param_name == BODY_PROPERTY:
            raise InvalidArgument(
                f"openapi: {where}: parameter name {param_name!r} is used twice"
                + (
                    " (body is reserved for the request body)"
                    if param_name == BODY_PROPERTY
                    else ""
                )
            )
        schema = dict(parameter.get("schema") or {"type": "string"})
        if parameter.get("description") and "description" not in schema:
            schema["description"] = parameter["description"]
        properties[param_name] = schema
        is_required = bool(parameter.get("required")) or location == "path"
        if is_required:
            required.append(param_name)
        parameters.append(HttpParameter(param_name, location, is_required))
    has_json_body = False
    body = operation.get("requestBody")
    if isinstance(body, dict):
        content = body.get("content") or {}
        json_type = next((t for t in content if _is_json(t)), None)
        if json_type is not None:
            has_json_body = True
            properties[BODY_PROPERTY] = content[json_type].get("schema") or {}
            if body.get("required"):
                required.append(BODY_PROPERTY)
        elif body.get("required"):
            raise InvalidArgument(
                f"openapi: {where}: only JSON request bodies are supported "
                f"(got {', '.join(content) or 'none'})"
            )
    arguments: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        arguments["required"] = required
    description = str(operation.get("description") or operation.get("summary") or "")
    return Operation(
        name=name,
        description=description[:MAX_DESCRIPTION_CHARS],
        method=method.upper(),
        path=path,
        parameters=tuple(parameters),
        has_json_body=has_json_body,
        schema=arguments,
    )


def _is_json(media_type: str) -> bool:
    base = media_type.split(";", 1)[0].strip().lower()
    return base == "application/json" or base.endswith("+json")


def _one_line(value: object) -> str:
    return " ".join(str(value).split())[:300]
