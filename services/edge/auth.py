"""HTTP-side authentication rules: where the token comes from on a request and the CSRF
check for cookie-authenticated changes. The token check itself (and its cache) lives in
services/edge/core/auth.py; the FastAPI dependencies that put these together in
services/edge/deps.py."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

from services.edge.errors import ApiError

SESSION_COOKIE = "session_key"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# ----------------------------------------------------------------------------- CSRF


def _normalized_origin(value: str) -> str | None:
    """scheme://host[:port] with the default port dropped, or None when unparseable."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def check_same_origin(request: Request, allowed_origins: list[str]) -> None:
    """Refuses a browser request sent from another site.

    Browsers send Origin (or at least Referer) on cross-site state-changing requests; clients
    that send neither are not browsers and cannot carry a victim's cookie by accident.
    """
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if claimed is None:
        return
    origin = _normalized_origin(claimed)
    own = _normalized_origin(f"{request.url.scheme}://{request.headers.get('host', '')}")
    trusted = {own} | {_normalized_origin(o) for o in allowed_origins}
    if origin is None or origin not in trusted:
        raise ApiError(
            403,
            "cross-site request refused: cookie-authenticated changes must come from this "
            "site's origin (API clients should use Authorization: Bearer)",
        )


def __getattr__(name: str) -> object:
    """The FastAPI dependencies moved to services/edge/deps.py; routes written before the move
    still import them from here (looked up lazily: deps imports this module)."""
    if name in ("CurrentUser", "CurrentCredentials", "SameOrigin", "current_credentials"):
        from services.edge import deps

        return getattr(deps, name)
    raise AttributeError(name)
