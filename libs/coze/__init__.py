"""Python client for the Coze Agent API as the product document shows it.

    from coze import CozeClient

    client = CozeClient(api_key="...", base_url="http://127.0.0.1:8080")
    for event in client.chat(bot_id=123456789, query="你好", stream=True):
        if event.type == "message":
            print(event.delta, end="")
        elif event.type == "done":
            print("\\nusage:", event.usage)
        elif event.type == "error":
            print("error:", event.msg)

`AsyncCozeClient` has the same surface with `await` / `async for`. See docs/sdk.md.
"""

from coze._endpoints import Id
from coze._stream import AsyncChatStream, ChatStream
from coze._transport import DEFAULT_BASE_URL, VERSION
from coze.async_client import (
    AsyncBots,
    AsyncConversation,
    AsyncConversations,
    AsyncCozeClient,
    AsyncMessages,
)
from coze.client import DEFAULT_USER_ID, Bots, Conversation, Conversations, CozeClient, Messages
from coze.errors import (
    AuthenticationError,
    BadRequestError,
    ChatFailedError,
    ConflictError,
    CozeAPIError,
    CozeConnectionError,
    CozeError,
    CozeStreamError,
    CozeTimeoutError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from coze.models import (
    Bot,
    BotDisplayInfo,
    BotDraft,
    BotPublished,
    Chat,
    ChatAnswer,
    ChatCreatedEvent,
    ChatError,
    ChatEvent,
    ConversationInfo,
    DoneEvent,
    ErrorEvent,
    InputMessage,
    Message,
    MessageCompletedEvent,
    MessageEvent,
    Section,
    Usage,
)

__version__ = VERSION

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_USER_ID",
    "AsyncBots",
    "AsyncChatStream",
    "AsyncConversation",
    "AsyncConversations",
    "AsyncCozeClient",
    "AsyncMessages",
    "AuthenticationError",
    "BadRequestError",
    "Bot",
    "BotDisplayInfo",
    "BotDraft",
    "BotPublished",
    "Bots",
    "Chat",
    "ChatAnswer",
    "ChatCreatedEvent",
    "ChatError",
    "ChatEvent",
    "ChatFailedError",
    "ChatStream",
    "ConflictError",
    "Conversation",
    "ConversationInfo",
    "Conversations",
    "CozeAPIError",
    "CozeClient",
    "CozeConnectionError",
    "CozeError",
    "CozeStreamError",
    "CozeTimeoutError",
    "DoneEvent",
    "ErrorEvent",
    "Id",
    "InputMessage",
    "Message",
    "MessageCompletedEvent",
    "MessageEvent",
    "Messages",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "Section",
    "ServerError",
    "Usage",
    "__version__",
]
