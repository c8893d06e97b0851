"""Per-account rate limits shared by every edge replica (wire contract section 6).

Counts are JetStream counters (NATS 2.12+, `allow_msg_counter`): one subject per account,
class and fixed window, incremented atomically by the server with a `Nats-Incr` header, so
any number of edges count a burst exactly, in one round trip, with no compare-and-set
retries. The stream's max age drops old windows. Per-account overrides live in a KV bucket
that every edge watches.

When the store can't be reached the edge serves anyway (fails open): refusing every
request because a counter is unavailable would turn a NATS hiccup into an outage. Each
such decision is logged (at most once per window) and counted in
`cozeplus_edge_rate_limit_store_errors_total`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
from nats.aio.client import Client as NATS
from nats.js.api import KeyValueConfig, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue
from prometheus_client import Counter

from cozeplus.nats_connection import NatsConnection, declare_key_value, declare_stream

COUNTS_STREAM = "COZEPLUS_RATE_COUNTS"
COUNTS_SUBJECT = "cozeplus.rate"
OVERRIDES_BUCKET = "cozeplus_rate_limits"
STORE_TIMEOUT_S = 0.5
STOP_TIMEOUT_S = 2.0
COUNTS_MAX_AGE_S = 3600

log = logging.getLogger(__name__)

STORE_ERRORS = Counter(
    "cozeplus_edge_rate_limit_store_errors_total",
    "Requests let through uncounted because the rate-limit store failed",
)
REJECTED = Counter("cozeplus_edge_rate_limited_total", "Requests refused with 429", ["limit_class"])


class LimitClass(enum.StrEnum):
    CHAT = "chat"
    BOT_MANAGEMENT = "bot_management"
    BOT_INFO = "bot_info"
    # Every other authenticated route (conversations, messages, keys, sessions).
    OTHER = "other"


def limit_class_for(path: str) -> LimitClass:
    if path.startswith("/v3/chat") or path in ("/api/conversation/chat", "/v1/chat/completions"):
        return LimitClass.CHAT
    if path.startswith("/v1/bots/") and path.endswith("/unpublish"):
        return LimitClass.BOT_MANAGEMENT
    # Plugins are bot configuration: creating one may also call out to an MCP server.
    if path.startswith(("/api/draftbot/", "/v1/plugins")) or path in (
        "/v1/bot/create",
        "/v1/bot/update",
        "/v1/bot/publish",
    ):
        return LimitClass.BOT_MANAGEMENT
    if path == "/v1/bot/get_online_info" or path == "/v1/bots" or path.startswith("/v1/bots/"):
        return LimitClass.BOT_INFO
    return LimitClass.OTHER


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    # Seconds until the window resets; what Retry-After says on a refusal.
    reset_after_s: int

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_after_s)
        return headers


class RateLimiter:
    def __init__(
        self, defaults: Mapping[LimitClass, int], window_s: int = 60, replicas: int = 1
    ) -> None:
        self.defaults = dict(defaults)
        self.window_s = window_s
        self.replicas = replicas
        self._nc: NATS | None = None
        self._overrides: dict[int, dict[LimitClass, int]] = {}
        self._watch_task: asyncio.Task[None] | None = None
        self._watcher: KeyValue.KeyWatcher | None = None
        self._stopping = False
        # (account, class) -> window known to be exhausted: refused without a round trip.
        self._exhausted: dict[tuple[int, LimitClass], int] = {}
        self._last_error_window = -1

    async def declare(self, js: JetStreamContext) -> None:
        """The counts stream and the overrides bucket, idempotently. Run on every (re)connect:
        the counts live in memory, so a NATS restart loses the stream and, without this,
        every request would fail open until the edge restarted."""
        await declare_stream(
            js,
            StreamConfig(
                name=COUNTS_STREAM,
                subjects=[f"{COUNTS_SUBJECT}.>"],
                allow_msg_counter=True,
                storage=StorageType.MEMORY,
                # Long enough for any sane window, and fixed: replicas with different
                # windows must not fight over the stream's configuration.
                max_age=COUNTS_MAX_AGE_S,
                num_replicas=self.replicas,
            ),
        )
        await declare_key_value(js, overrides_bucket_config(self.replicas))

    async def start(self, nc: NATS) -> None:
        """Declares what it needs and starts watching the overrides (one-shot; the edge uses
        `attach` instead, which does this again after every reconnect)."""
        await self.declare(nc.jetstream())
        await self._use(nc)

    def attach(self, link: NatsConnection) -> None:
        """Counts on `link` once its declarations are in place, after every reconnect again;
        requests are let through, uncounted (and counted as such), until then."""
        link.declare("the rate-limit counters", self.declare)

        async def declared() -> None:
            assert link.nc is not None
            await self._use(link.nc)

        link.on_declared(declared)

    async def _use(self, nc: NATS) -> None:
        self._nc = nc
        # A (re)declared bucket may be a new one: watch it afresh.
        await self._stop_watch()
        if self._stopping:
            return
        overrides = await nc.jetstream().key_value(OVERRIDES_BUCKET)
        self._watch_task = asyncio.create_task(self._watch_overrides(overrides))
        log.info(
            "rate limits counted in NATS: %s per %ds",
            ", ".join(f"{c}={n}" for c, n in self.defaults.items()),
            self.window_s,
        )

    async def stop(self) -> None:
        self._stopping = True
        await self._stop_watch()

    async def _stop_watch(self) -> None:
        watcher, task = self._watcher, self._watch_task
        self._watcher, self._watch_task = None, None
        if watcher is not None:
            # Ends the watch loop through the watcher's own stop (unsubscribe, then an end
            # marker in its queue). A bare cancel of a task parked in nats-py's watcher was
            # seen to get lost now and then, leaving stop() waiting forever.
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_TIMEOUT_S)

    def limit_for(self, account_id: int, limit_class: LimitClass) -> int:
        override = self._overrides.get(account_id, {}).get(limit_class)
        return override if override is not None else self.defaults[limit_class]

    async def hit(self, account_id: int, limit_class: LimitClass) -> Decision:
        limit = self.limit_for(account_id, limit_class)
        now = time.time()
        window = int(now // self.window_s)
        reset_after = max(1, int((window + 1) * self.window_s - now + 0.999))
        if self._exhausted.get((account_id, limit_class)) == window:
            REJECTED.labels(limit_class).inc()
            return Decision(False, limit, 0, reset_after)
        if self._nc is None:
            return self._fail_open(limit, reset_after, window, "rate limiter not started")
        if not self._nc.is_connected:
            # While nats-py reconnects a request would wait out its whole timeout; every
            # request paying that would be an outage of its own.
            return self._fail_open(limit, reset_after, window, "not connected to NATS")
        subject = f"{COUNTS_SUBJECT}.{account_id}.{limit_class}.{window}"
        try:
            reply = await self._nc.request(
                subject, b"", timeout=STORE_TIMEOUT_S, headers={"Nats-Incr": "1"}
            )
            count = int(orjson.loads(reply.data)["val"])
        except Exception as exc:  # NATS down, timeouts, a server without counters
            return self._fail_open(limit, reset_after, window, repr(exc))
        if count > limit:
            self._exhausted[(account_id, limit_class)] = window
            self._forget_old_windows(window)
            REJECTED.labels(limit_class).inc()
            return Decision(False, limit, 0, reset_after)
        return Decision(True, limit, limit - count, reset_after)

    def _fail_open(self, limit: int, reset_after: int, window: int, why: str) -> Decision:
        STORE_ERRORS.inc()
        if window != self._last_error_window:
            self._last_error_window = window
            log.warning("rate-limit store unavailable (%s): serving without limits", why)
        return Decision(True, limit, limit, reset_after)

    def _forget_old_windows(self, window: int) -> None:
        if len(self._exhausted) > 10_000:
            self._exhausted = {k: w for k, w in self._exhausted.items() if w == window}

    async def _watch_overrides(self, bucket: KeyValue) -> None:
        while not self._stopping:
            try:
                self._watcher = watcher = await bucket.watchall()
                async for entry in watcher:
                    if entry is None:  # end of the initial values
                        continue
                    self._apply_override(entry.key, entry.value, entry.operation)
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._stopping:
                    return
                log.exception("watching rate-limit overrides failed; retrying")
                await asyncio.sleep(1.0)

    def _apply_override(self, key: str, value: bytes | None, operation: str | None) -> None:
        try:
            account_id = int(key)
        except ValueError:
            return
        if operation in ("DEL", "PURGE") or not value:
            self._overrides.pop(account_id, None)
            return
        try:
            raw = orjson.loads(value)
            limits = {LimitClass(name): int(v) for name, v in raw.items()}
        except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError):
            log.warning("ignoring malformed rate-limit override for account %s", key)
            return
        self._overrides[account_id] = limits
        # A changed limit applies at once, even within a window already refused.
        for limit_class in limits:
            self._exhausted.pop((account_id, limit_class), None)


def overrides_bucket_config(replicas: int = 1) -> KeyValueConfig:
    return KeyValueConfig(bucket=OVERRIDES_BUCKET, history=1, replicas=replicas)


async def set_override(js: JetStreamContext, account_id: int, limits: Mapping[str, int]) -> None:
    """Used by the operator CLI: per-account limits, picked up by every edge at once."""
    await declare_key_value(js, overrides_bucket_config())
    bucket = await js.key_value(OVERRIDES_BUCKET)
    if limits:
        await bucket.put(str(account_id), orjson.dumps(dict(limits)))
    else:
        await bucket.delete(str(account_id))
