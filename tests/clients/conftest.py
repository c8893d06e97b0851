"""Clients run against the chat system of tests/chat."""

from tests.chat.conftest import api, bots_stub, chat_system, make_bot  # noqa: F401
from tests.chat.plugin_bots import make_plugin_bot, plugin_servers  # noqa: F401
