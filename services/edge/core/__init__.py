"""The edge's transport-neutral core: chats (start, follow, cancel, retrieve, wait, resume with
tool outputs; the end user's stored variables), the session that follows one chat with its
watchdogs, authentication with its cache, and the errors they raise. No FastAPI, Starlette or
HTTP status in here: the HTTP routes (services/edge/routes) and the gRPC API
(services/edge/grpc_api) are thin adapters over it."""
