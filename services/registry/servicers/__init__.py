"""The registry's gRPC servicers, one module per service, and the interceptor that turns
domain errors into status codes for all of them."""
