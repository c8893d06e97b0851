"""NATS subjects and streams, in one place so every service names them alike."""

# Core NATS broadcast: a credential was revoked; every edge drops it from its auth cache.
# Payload: JSON {"credential_id": int}.
AUTH_REVOKED = "cozeplus.auth.revoked"

# JetStream work queue of chat requests: the edge publishes, runners share one durable
# pull consumer. The message id is the chat id, so a retried publish is deduplicated.
CHAT_REQUEST_STREAM = "COZEPLUS_CHAT_REQUESTS"
CHAT_REQUEST_SUBJECT = "cozeplus.chat.request"
CHAT_RUNNER_CONSUMER = "runners"


def chat_events(chat_id: int) -> str:
    """Core NATS subject on which a run publishes its events, in order."""
    return f"cozeplus.chat.events.{chat_id}"


def chat_cancel(chat_id: int) -> str:
    """Core NATS subject telling whichever runner holds a chat to stop it."""
    return f"cozeplus.chat.cancel.{chat_id}"


# Every runner listens here and stops the chat if it holds it.
CHAT_CANCEL_ALL = "cozeplus.chat.cancel.*"

# Core NATS broadcast: a bot was published, unpublished or deleted; edges and runners drop
# what they cached of it (its latest published version, its configurations).
# Payload: JSON {"bot_id": int}.
BOT_CHANGED = "cozeplus.bots.changed"

# JetStream work queue of document ingestion jobs: the registry publishes one per new
# document (message id = document id), knowledge workers share one durable pull consumer.
KNOWLEDGE_INGEST_STREAM = "COZEPLUS_KNOWLEDGE_INGEST"
KNOWLEDGE_INGEST_SUBJECT = "cozeplus.knowledge.ingest"
KNOWLEDGE_WORKER_CONSUMER = "knowledge-workers"

# JetStream object store bucket holding uploaded files' bytes (metadata is in the registry).
FILES_BUCKET = "cozeplus-files"
