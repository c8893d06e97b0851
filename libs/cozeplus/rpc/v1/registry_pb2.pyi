from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelSettings(_message.Message):
    __slots__ = ("model_id", "temperature", "max_tokens", "top_p")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    temperature: float
    max_tokens: int
    top_p: float
    def __init__(self, model_id: _Optional[str] = ..., temperature: _Optional[float] = ..., max_tokens: _Optional[int] = ..., top_p: _Optional[float] = ...) -> None: ...

class Onboarding(_message.Message):
    __slots__ = ("prologue", "suggested_questions")
    PROLOGUE_FIELD_NUMBER: _ClassVar[int]
    SUGGESTED_QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    prologue: str
    suggested_questions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, prologue: _Optional[str] = ..., suggested_questions: _Optional[_Iterable[str]] = ...) -> None: ...

class Variable(_message.Message):
    __slots__ = ("key", "description", "default_value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    description: str
    default_value: str
    def __init__(self, key: _Optional[str] = ..., description: _Optional[str] = ..., default_value: _Optional[str] = ...) -> None: ...

class ToolRef(_message.Message):
    __slots__ = ("type", "knowledge_id", "plugin_id")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    KNOWLEDGE_ID_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_ID_FIELD_NUMBER: _ClassVar[int]
    type: str
    knowledge_id: int
    plugin_id: int
    def __init__(self, type: _Optional[str] = ..., knowledge_id: _Optional[int] = ..., plugin_id: _Optional[int] = ...) -> None: ...

class BotConfig(_message.Message):
    __slots__ = ("prompt", "model", "history_rounds", "onboarding", "variables", "tools")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    HISTORY_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    ONBOARDING_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    model: ModelSettings
    history_rounds: int
    onboarding: Onboarding
    variables: _containers.RepeatedCompositeFieldContainer[Variable]
    tools: _containers.RepeatedCompositeFieldContainer[ToolRef]
    def __init__(self, prompt: _Optional[str] = ..., model: _Optional[_Union[ModelSettings, _Mapping]] = ..., history_rounds: _Optional[int] = ..., onboarding: _Optional[_Union[Onboarding, _Mapping]] = ..., variables: _Optional[_Iterable[_Union[Variable, _Mapping]]] = ..., tools: _Optional[_Iterable[_Union[ToolRef, _Mapping]]] = ...) -> None: ...

class Bot(_message.Message):
    __slots__ = ("id", "owner_id", "space_id", "name", "description", "icon_url", "config", "created_at", "updated_at", "latest_version", "published_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    SPACE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ICON_URL_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    owner_id: int
    space_id: int
    name: str
    description: str
    icon_url: str
    config: BotConfig
    created_at: int
    updated_at: int
    latest_version: int
    published_at: int
    def __init__(self, id: _Optional[int] = ..., owner_id: _Optional[int] = ..., space_id: _Optional[int] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., icon_url: _Optional[str] = ..., config: _Optional[_Union[BotConfig, _Mapping]] = ..., created_at: _Optional[int] = ..., updated_at: _Optional[int] = ..., latest_version: _Optional[int] = ..., published_at: _Optional[int] = ...) -> None: ...

class BotVersion(_message.Message):
    __slots__ = ("bot_id", "version", "owner_id", "space_id", "name", "description", "icon_url", "config", "published_at", "created_at", "updated_at")
    BOT_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    SPACE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ICON_URL_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    bot_id: int
    version: int
    owner_id: int
    space_id: int
    name: str
    description: str
    icon_url: str
    config: BotConfig
    published_at: int
    created_at: int
    updated_at: int
    def __init__(self, bot_id: _Optional[int] = ..., version: _Optional[int] = ..., owner_id: _Optional[int] = ..., space_id: _Optional[int] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., icon_url: _Optional[str] = ..., config: _Optional[_Union[BotConfig, _Mapping]] = ..., published_at: _Optional[int] = ..., created_at: _Optional[int] = ..., updated_at: _Optional[int] = ...) -> None: ...

class CreateDraftRequest(_message.Message):
    __slots__ = ("owner_id", "space_id", "name", "description", "icon_url", "config")
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    SPACE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ICON_URL_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    owner_id: int
    space_id: int
    name: str
    description: str
    icon_url: str
    config: BotConfig
    def __init__(self, owner_id: _Optional[int] = ..., space_id: _Optional[int] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., icon_url: _Optional[str] = ..., config: _Optional[_Union[BotConfig, _Mapping]] = ...) -> None: ...

class UpdateDisplayInfoRequest(_message.Message):
    __slots__ = ("owner_id", "bot_id", "name", "description", "icon_url")
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    BOT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ICON_URL_FIELD_NUMBER: _ClassVar[int]
    owner_id: int
    bot_id: int
    name: str
    description: str
    icon_url: str
    def __init__(self, owner_id: _Optional[int] = ..., bot_id: _Optional[int] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., icon_url: _Optional[str] = ...) -> None: ...

class UpdateConfigRequest(_message.Message):
    __slots__ = ("owner_id", "bot_id", "config", "update_mask")
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    BOT_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    owner_id: int
    bot_id: int
    config: BotConfig
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, owner_id: _Optional[int] = ..., bot_id: _Optional[int] = ..., config: _Optional[_Union[BotConfig, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class BotRef(_message.Message):
    __slots__ = ("owner_id", "bot_id")
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    BOT_ID_FIELD_NUMBER: _ClassVar[int]
    owner_id: int
    bot_id: int
    def __init__(self, owner_id: _Optional[int] = ..., bot_id: _Optional[int] = ...) -> None: ...

class ListDraftsRequest(_message.Message):
    __slots__ = ("owner_id", "space_id", "page_size", "page_num")
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    SPACE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_NUM_FIELD_NUMBER: _ClassVar[int]
    owner_id: int
    space_id: int
    page_size: int
    page_num: int
    def __init__(self, owner_id: _Optional[int] = ..., space_id: _Optional[int] = ..., page_size: _Optional[int] = ..., page_num: _Optional[int] = ...) -> None: ...

class ListDraftsResponse(_message.Message):
    __slots__ = ("bots", "total")
    BOTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    bots: _containers.RepeatedCompositeFieldContainer[Bot]
    total: int
    def __init__(self, bots: _Optional[_Iterable[_Union[Bot, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class GetVersionRequest(_message.Message):
    __slots__ = ("owner_id", "bot_id", "version")
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    BOT_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    owner_id: int
    bot_id: int
    version: int
    def __init__(self, owner_id: _Optional[int] = ..., bot_id: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class ListPublishedRequest(_message.Message):
    __slots__ = ("owner_id", "space_id", "page_size", "page_num")
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    SPACE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_NUM_FIELD_NUMBER: _ClassVar[int]
    owner_id: int
    space_id: int
    page_size: int
    page_num: int
    def __init__(self, owner_id: _Optional[int] = ..., space_id: _Optional[int] = ..., page_size: _Optional[int] = ..., page_num: _Optional[int] = ...) -> None: ...

class ListPublishedResponse(_message.Message):
    __slots__ = ("versions", "total")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[BotVersion]
    total: int
    def __init__(self, versions: _Optional[_Iterable[_Union[BotVersion, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[BotVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[BotVersion, _Mapping]]] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class User(_message.Message):
    __slots__ = ("id", "username", "display_name", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    username: str
    display_name: str
    created_at: int
    def __init__(self, id: _Optional[int] = ..., username: _Optional[str] = ..., display_name: _Optional[str] = ..., created_at: _Optional[int] = ...) -> None: ...

class CreateUserRequest(_message.Message):
    __slots__ = ("username", "password", "display_name")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    display_name: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ..., display_name: _Optional[str] = ...) -> None: ...

class LoginRequest(_message.Message):
    __slots__ = ("username", "password")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class LoginResponse(_message.Message):
    __slots__ = ("session_key", "user", "expires_at")
    SESSION_KEY_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    session_key: str
    user: User
    expires_at: int
    def __init__(self, session_key: _Optional[str] = ..., user: _Optional[_Union[User, _Mapping]] = ..., expires_at: _Optional[int] = ...) -> None: ...

class SessionRef(_message.Message):
    __slots__ = ("session_key",)
    SESSION_KEY_FIELD_NUMBER: _ClassVar[int]
    session_key: str
    def __init__(self, session_key: _Optional[str] = ...) -> None: ...

class GetUserRequest(_message.Message):
    __slots__ = ("id", "username")
    ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    id: int
    username: str
    def __init__(self, id: _Optional[int] = ..., username: _Optional[str] = ...) -> None: ...

class AuthenticateRequest(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class Principal(_message.Message):
    __slots__ = ("user", "kind", "credential_id", "expires_at")
    USER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    user: User
    kind: str
    credential_id: int
    expires_at: int
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., kind: _Optional[str] = ..., credential_id: _Optional[int] = ..., expires_at: _Optional[int] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("id", "user_id", "name", "created_at", "expires_at", "last_used_at", "prefix", "revoked")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    id: int
    user_id: int
    name: str
    created_at: int
    expires_at: int
    last_used_at: int
    prefix: str
    revoked: bool
    def __init__(self, id: _Optional[int] = ..., user_id: _Optional[int] = ..., name: _Optional[str] = ..., created_at: _Optional[int] = ..., expires_at: _Optional[int] = ..., last_used_at: _Optional[int] = ..., prefix: _Optional[str] = ..., revoked: _Optional[bool] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("user_id", "name", "expires_in")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    name: str
    expires_in: int
    def __init__(self, user_id: _Optional[int] = ..., name: _Optional[str] = ..., expires_in: _Optional[int] = ...) -> None: ...

class CreateApiKeyResponse(_message.Message):
    __slots__ = ("key", "token")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    key: ApiKey
    token: str
    def __init__(self, key: _Optional[_Union[ApiKey, _Mapping]] = ..., token: _Optional[str] = ...) -> None: ...

class ApiKeyRef(_message.Message):
    __slots__ = ("user_id", "key_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    key_id: int
    def __init__(self, user_id: _Optional[int] = ..., key_id: _Optional[int] = ...) -> None: ...

class ListApiKeysRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_num")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_NUM_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    page_size: int
    page_num: int
    def __init__(self, user_id: _Optional[int] = ..., page_size: _Optional[int] = ..., page_num: _Optional[int] = ...) -> None: ...

class ListApiKeysResponse(_message.Message):
    __slots__ = ("keys", "total")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    total: int
    def __init__(self, keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class UpdateApiKeyRequest(_message.Message):
    __slots__ = ("user_id", "key_id", "name")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    key_id: int
    name: str
    def __init__(self, user_id: _Optional[int] = ..., key_id: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...
