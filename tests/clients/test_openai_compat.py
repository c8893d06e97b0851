"""The official `openai` Python SDK against /v1/models and /v1/chat/completions: a published
bot is a model; its answers stream and non-stream in OpenAI's formats; errors parse into the
SDK's own exception classes."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import openai
import pytest

from tests.conftest import Account


@pytest.fixture
def client(chat_system: str, account: Account) -> openai.OpenAI:
    return openai.OpenAI(api_key=account.token, base_url=f"{chat_system}/v1", max_retries=0)


def test_models_lists_the_published_bots(
    client: openai.OpenAI, make_bot: Callable[..., str]
) -> None:
    published = make_bot(model="mock-echo")
    draft = make_bot(model="mock-echo", publish=False)
    ids = [m.id for m in client.models.list()]
    assert published in ids and draft not in ids
    model = client.models.retrieve(published)
    assert (model.id, model.object) == (published, "model") and model.created > 0


def test_non_stream_completion_runs_the_bot(
    client: openai.OpenAI, make_bot: Callable[..., str], mock_llm: str
) -> None:
    bot_id = make_bot(model="mock-echo", prompt="You are the openai test bot.")
    completion = client.chat.completions.create(
        model=bot_id,
        messages=[
            {"role": "system", "content": "ignored: the bot has its own prompt"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": "hello from openai"},
        ],
    )
    assert completion.object == "chat.completion" and completion.model == bot_id
    [choice] = completion.choices
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert "hello from openai" in (choice.message.content or "")
    usage = completion.usage
    assert usage is not None and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.completion_tokens > 0
    # The model saw the bot's prompt, then the conversation as sent.
    sent = httpx.get(f"{mock_llm}/mock/requests").json()[-1]["messages"]
    assert sent == [
        {"role": "system", "content": "You are the openai test bot."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "hello from openai"},
    ]


def test_stream_completion_with_usage(client: openai.OpenAI, make_bot: Callable[..., str]) -> None:
    bot_id = make_bot(model="mock-echo")
    chunks = list(
        client.chat.completions.create(
            model=bot_id,
            messages=[{"role": "user", "content": "stream me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.object == "chat.completion.chunk" and c.model == bot_id for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "stream me" in text
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finishing] == ["stop"]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.total_tokens > 0


def test_stream_without_usage_ends_with_done(
    chat_system: str, account: Account, make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo")
    with httpx.stream(
        "POST",
        f"{chat_system}/v1/chat/completions",
        headers=account.headers,
        json={"model": bot_id, "messages": [{"role": "user", "content": "hi"}], "stream": True},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        body = response.read().decode()
    events = body.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    assert all(e.startswith("data: ") for e in events[:-1])
    assert '"usage"' not in body


def test_a_failing_bot_is_an_error(client: openai.OpenAI, make_bot: Callable[..., str]) -> None:
    bot_id = make_bot(model="mock-fail")
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model=bot_id, messages=[{"role": "user", "content": "x"}])
    # The chat's last_error: the model broke off (503 in the chat, 503 here).
    assert err.value.status_code == 503 and "broke off its answer" in err.value.message
    assert err.value.type == "server_error"
    with pytest.raises(openai.APIError) as streamed:
        for _ in client.chat.completions.create(
            model=bot_id, messages=[{"role": "user", "content": "x"}], stream=True
        ):
            pass
    assert streamed.value.message


def test_errors_parse_as_the_sdks_exceptions(
    client: openai.OpenAI, chat_system: str, make_bot: Callable[..., str]
) -> None:
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="123", messages=[{"role": "user", "content": "x"}])
    assert unknown.value.code == "model_not_found" and unknown.value.param == "model"
    assert unknown.value.type == "invalid_request_error"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("123")

    draft = make_bot(publish=False)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=draft, messages=[{"role": "user", "content": "x"}])

    bad_key = openai.OpenAI(api_key="pat_wrong", base_url=f"{chat_system}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as auth:
        bad_key.chat.completions.create(model="1", messages=[{"role": "user", "content": "x"}])
    assert auth.value.status_code == 401 and auth.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        bad_key.models.list()

    bot_id = make_bot(model="mock-echo")
    with pytest.raises(openai.BadRequestError) as no_user:
        client.chat.completions.create(
            model=bot_id, messages=[{"role": "assistant", "content": "only me"}]
        )
    assert "user message" in no_user.value.message
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=bot_id, messages=[])


def test_error_body_is_exactly_openais_shape(chat_system: str, account: Account) -> None:
    response = httpx.post(
        f"{chat_system}/v1/chat/completions",
        headers=account.headers,
        json={"model": "123", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "message": "The model `123` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }
    assert response.headers["x-tt-logid"]


def test_the_user_field_picks_the_end_users_stored_variables(
    client: openai.OpenAI, api: httpx.Client, make_bot: Callable[..., str], mock_llm: str
) -> None:
    bot_id = make_bot(model="mock-echo", prompt="Answer in {{lang}}.")
    stored = api.put(
        "/v1/variables",
        json={
            "bot_id": bot_id,
            "connector_uid": "oa-user",
            "data": [{"keyword": "lang", "value": "Deutsch"}],
        },
    )
    assert stored.status_code == 200, stored.text
    client.chat.completions.create(
        model=bot_id, user="oa-user", messages=[{"role": "user", "content": "hi"}]
    )
    system = httpx.get(f"{mock_llm}/mock/requests").json()[-1]["messages"][0]
    assert system == {"role": "system", "content": "Answer in Deutsch."}
    # Another end user has no value: the placeholder stays as written.
    client.chat.completions.create(
        model=bot_id, user="someone-else", messages=[{"role": "user", "content": "hi"}]
    )
    system = httpx.get(f"{mock_llm}/mock/requests").json()[-1]["messages"][0]
    assert system == {"role": "system", "content": "Answer in {{lang}}."}
