"""The id of the request being served (HTTP or gRPC), for responses and every log line."""

from __future__ import annotations

import contextvars
import logging
import secrets
import time

LOG_ID: contextvars.ContextVar[str] = contextvars.ContextVar("log_id", default="-")


def new_log_id() -> str:
    # Same layout as Coze's log ids (UTC timestamp + random hex), so they sort by time.
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(8).upper()


class LogIdFilter(logging.Filter):
    """Stamps every log record with the id of the request being served."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.log_id = LOG_ID.get()
        return True
