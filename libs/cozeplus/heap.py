"""The garbage collector's settings for a long-running service (issue 14).

Everything a service imports and builds at start-up (modules, protobuf descriptors, pydantic
and SQLAlchemy models, 50,000-160,000 container objects per service) is frozen out of the
collector's sight (`gc.freeze`): a full collection no longer walks it. Logged with
`gc.callbacks` on the busy 2-core benchmark machine, full collections over those heaps took
120-780 ms of wall time, and every chat and token waiting on that process waited as long.

The youngest generation is collected after 20,000 net allocations instead of 700: a chat
allocates thousands of short-lived objects (events, chunks, headers) that reference
counting frees, so the default ran a young collection every few tokens. Reference cycles
are still collected, only in larger batches. In the runner (py-spy, 50 chats in flight)
the collector had been 15 % of the CPU; the threshold alone took 200-token chats from
6.9-7.1 to 6.0-6.4 ms of runner CPU each.

`COZEPLUS_GC=default` leaves the interpreter's settings alone, to compare or rule this out.
"""

from __future__ import annotations

import gc
import os

YOUNG_THRESHOLD = 20_000


def settle() -> None:
    """Call once the service is built (clients, connections, caches), as it starts serving."""
    if os.environ.get("COZEPLUS_GC", "").strip().lower() == "default":
        return
    # Start-up garbage is collected first, so only what lives on is frozen.
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
