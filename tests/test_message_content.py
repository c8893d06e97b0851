from __future__ import annotations

import pytest

from cozeplus.message_content import ContentError, ContentPart, parse_content, plain_text


def test_text_and_card_are_text() -> None:
    assert parse_content("hi", "text") == [ContentPart("text", text="hi")]
    assert parse_content('{"card":1}', "card") == [ContentPart("text", text='{"card":1}')]


def test_product_document_image_message() -> None:
    # The product document's multimodal sample: type "image" with a URL as content.
    parts = parse_content("https://example.com/a.jpg", "text", message_type="image")
    assert parts == [ContentPart("image", url="https://example.com/a.jpg")]


def test_object_string_items() -> None:
    content = (
        '[{"type":"text","text":"what is this?"},'
        '{"type":"image","file_url":"https://x/y.png"},{"type":"file","file_id":"f1"}]'
    )
    parts = parse_content(content, "object_string")
    assert parts == [
        ContentPart("text", text="what is this?"),
        ContentPart("image", url="https://x/y.png"),
        ContentPart("file", file_id="f1"),
    ]
    assert plain_text(parts) == "what is this? [image: https://x/y.png] [file: f1]"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ("{}", "non-empty JSON array"),
        ("[]", "non-empty JSON array"),
        ("[1]", "must be an object"),
        ('[{"type":"text","text":5}]', "text must be a string"),
        ('[{"type":"image"}]', "needs file_url or file_id"),
        ('[{"type":"video","file_url":"u"}]', "unknown type"),
    ],
)
def test_bad_object_string_is_rejected_with_a_reason(content: str, message: str) -> None:
    with pytest.raises(ContentError, match=message):
        parse_content(content, "object_string")


def test_unknown_content_type() -> None:
    with pytest.raises(ContentError, match="unsupported content_type"):
        parse_content("x", "audio")
