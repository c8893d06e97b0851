"""The public gRPC API (package cozeplus.api.v1, wire contract section 9), served by the edge
next to HTTP: thin adapters over the same core (services/edge/core), the same auth cache, the
same rate-limit counters."""
