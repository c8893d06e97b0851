"""NATS subjects and streams, in one place so every service names them alike."""

# Core NATS broadcast: a credential was revoked; every edge drops it from its auth cache.
# Payload: JSON {"credential_id": int}.
AUTH_REVOKED = "cozeplus.auth.revoked"
