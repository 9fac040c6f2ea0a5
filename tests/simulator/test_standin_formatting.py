"""Unit tests of the stand-in's Telegram text rules: parse modes, UTF-16 offsets, bot commands."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.simulator.errors import ApiError
from devtools.simulator.formatting import bot_command_entities, format_text, utf16_len


def parsed(raw: str, mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    result = format_text(raw, mode)
    return result.text, result.entities


def parse_failure(raw: str, mode: str) -> str:
    with pytest.raises(ApiError) as caught:
        format_text(raw, mode)
    assert caught.value.code == 400
    return caught.value.description


def test_utf16_offsets() -> None:
    assert utf16_len("abc") == 3
    assert utf16_len("💪") == 2  # outside the BMP: a surrogate pair
    text, entities = parsed("💪 <b>strong</b>", "HTML")
    assert text == "💪 strong"
    assert entities == [{"type": "bold", "offset": 3, "length": 6}]


def test_html_entities_links_and_nesting() -> None:
    text, entities = parsed(
        '<b>a <i>b</i></b> &lt;3 &amp; &quot;x&quot; &copy; <a href="tg://user?id=5">u</a>', "HTML"
    )
    assert text == 'a b <3 & "x" &copy; u'
    assert entities[0] == {"type": "bold", "offset": 0, "length": 3}
    assert entities[1] == {"type": "italic", "offset": 2, "length": 1}
    assert entities[2]["type"] == "text_mention" and entities[2]["user"]["id"] == 5
    text, entities = parsed('<pre><code class="language-python">x = 1</code></pre>', "HTML")
    assert text == "x = 1" and entities[0] == {"type": "pre", "offset": 0, "length": 5, "language": "python"}
    assert parsed("<tg-spoiler>s</tg-spoiler><span class='tg-spoiler'>t</span>", "HTML")[1] == [
        {"type": "spoiler", "offset": 0, "length": 1},
        {"type": "spoiler", "offset": 1, "length": 1},
    ]
    assert parsed("<blockquote expandable>q</blockquote>", "HTML")[1][0]["type"] == "expandable_blockquote"
    assert parsed("<i>x</>", "HTML") == ("x", [{"type": "italic", "offset": 0, "length": 1}])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("a <br> b", 'Unsupported start tag "br" at byte offset 2'),
        ("<p>x</p>", 'Unsupported start tag "p" at byte offset 0'),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("<b", "Unclosed start tag at byte offset 0"),
        ("<b>x</b", "Unclosed end tag at byte offset 4"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("é<br>", 'Unsupported start tag "br" at byte offset 2'),  # byte offsets, not characters
    ],
)
def test_html_errors(raw: str, message: str) -> None:
    assert parse_failure(raw, "HTML") == f"Bad Request: can't parse entities: {message}"


def test_markdown_v2() -> None:
    text, entities = parsed(
        "*bold* _it_ __under__ ~gone~ ||hidden|| `c` [link](https://x.org) \\. \\!", "MarkdownV2"
    )
    assert text == "bold it under gone hidden c link . !"
    assert [e["type"] for e in entities] == [
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "code",
        "text_link",
    ]
    assert entities[-1]["url"] == "https://x.org"
    text, entities = parsed("```python\nprint(1)\n```", "MarkdownV2")
    assert text == "print(1)" and entities == [
        {"type": "pre", "offset": 0, "length": 8, "language": "python"}
    ]
    text, entities = parsed(">quoted\n>lines\nafter", "MarkdownV2")
    assert text == "quoted\nlines\nafter" and entities == [{"type": "blockquote", "offset": 0, "length": 13}]
    assert parsed("`a.b-c!`", "MarkdownV2") == ("a.b-c!", [{"type": "code", "offset": 0, "length": 6}])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("Step 1.", "Character '.' is reserved and must be escaped with the preceding '\\'"),
        ("well-being", "Character '-' is reserved and must be escaped with the preceding '\\'"),
        ("(optional)", "Character '(' is reserved and must be escaped with the preceding '\\'"),
        ("a > b", "Character '>' is reserved and must be escaped with the preceding '\\'"),
        ("*open", "Can't find end of Bold entity at byte offset 0"),
        ("x _it", "Can't find end of Italic entity at byte offset 2"),
        ("ü `code", "Can't find end of Code entity at byte offset 3"),
        ("[t](https://x.org", "Can't find end of a URL at byte offset 4"),
    ],
)
def test_markdown_v2_errors(raw: str, message: str) -> None:
    assert parse_failure(raw, "MarkdownV2") == f"Bad Request: can't parse entities: {message}"


def test_legacy_markdown() -> None:
    text, entities = parsed("*b* _i_ `c` [l](https://x.org). Fine!", "Markdown")
    assert text == "b i c l. Fine!"
    assert [e["type"] for e in entities] == ["bold", "italic", "code", "text_link"]
    assert parse_failure("*open", "Markdown").endswith(
        "Can't find end of the entity starting at byte offset 0"
    )


def test_trimming_and_explicit_entities() -> None:
    assert parsed("  \n<b> hi </b>\n ", "HTML") == ("hi", [{"type": "bold", "offset": 0, "length": 2}])
    explicit = format_text("hello", None, [{"type": "bold", "offset": 0, "length": 5}])
    assert explicit.entities == [{"type": "bold", "offset": 0, "length": 5}]
    assert parse_failure("x", "BBCode") == "Bad Request: unsupported parse_mode BBCode"


@pytest.mark.parametrize(
    ("text", "commands"),
    [
        ("/start", ["/start"]),
        ("/start payload", ["/start"]),
        ("/start@iop_companion_bot x", ["/start@iop_companion_bot"]),
        ("/check_in-now", ["/check_in"]),
        ("please /help me", ["/help"]),
        ("a/b and http://x.org/path", []),
        ("/", []),
        ("/a@b", ["/a"]),  # too short to be a username
        ("💪 /go", ["/go"]),
    ],
)
def test_bot_command_entities(text: str, commands: list[str]) -> None:
    found = bot_command_entities(text)
    encoded = text.encode("utf-16-le")
    extracted = [
        encoded[e["offset"] * 2 : (e["offset"] + e["length"]) * 2].decode("utf-16-le") for e in found
    ]
    assert extracted == commands
    assert all(e["type"] == "bot_command" for e in found)
