"""Code shared by the cozeplus services: ids, settings, NATS subjects, generated RPC stubs."""
