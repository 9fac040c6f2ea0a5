"""Text formatting like Telegram: parse_mode parsing, entity offsets in UTF-16, bot-command detection.

The parsers follow tdlib's rules and error messages (``can't parse entities: ...``) closely enough to
reject what Telegram rejects (unknown/unbalanced HTML tags, unescaped MarkdownV2 characters, ...)
and to produce the entities python-telegram-bot needs for ``text_html`` & co.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError, bad_request

Entity = dict[str, Any]

WHITESPACE = " \t\r\n"


def utf16_len(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


class EntityParseError(Exception):
    pass


def parse_error(message: str) -> ApiError:
    return bad_request(f"can't parse entities: {message}")


# --------------------------------------------------------------------------- output buffer


@dataclass
class _Open:
    kind: str
    start: int  # utf-16 offset in the output
    byte: int  # byte offset in the input (for error messages)
    name: str = ""  # HTML tag name / MarkdownV2 error name
    extra: dict[str, Any] = field(default_factory=dict)
    index: int = -1  # slot in the entity list (so outer entities come first)


class _Out:
    def __init__(self) -> None:
        self.chars: list[str] = []
        self.pos = 0  # utf-16 length so far
        self.entities: list[Entity | None] = []

    def add(self, text: str) -> None:
        self.chars.append(text)
        self.pos += utf16_len(text)

    def reserve(self) -> int:
        self.entities.append(None)
        return len(self.entities) - 1

    def close(self, opened: _Open, kind: str | None = None, **extra: Any) -> None:
        length = self.pos - opened.start
        if length > 0:
            entity: Entity = {"type": kind or opened.kind, "offset": opened.start, "length": length}
            entity.update(extra)
            if opened.index >= 0:
                self.entities[opened.index] = entity
            else:
                self.entities.append(entity)

    def result(self) -> tuple[str, list[Entity]]:
        entities = [e for e in self.entities if e is not None]
        entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.chars), entities


# --------------------------------------------------------------------------- HTML

_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


def _decode_html_entity(text: str, i: int) -> tuple[str, int]:
    """At ``text[i] == '&'``: the decoded text and the index after it ('&' alone if unknown)."""
    n = len(text)
    j = i + 1
    if j < n and text[j] == "#":
        j += 1
        base = 10
        if j < n and text[j] in "xX":
            base = 16
            j += 1
        start = j
        digits = "0123456789abcdefABCDEF" if base == 16 else "0123456789"
        while j < n and text[j] in digits:
            j += 1
        if j == start:
            return "&", i + 1
        code = int(text[start:j], base)
        if code > 0x10FFFF:
            return "&", i + 1
        if 0xD800 <= code <= 0xDFFF:
            raise EntityParseError(
                "Text contains invalid Unicode characters after decoding HTML entities, "
                "check for unmatched surrogate code units"
            )
        if j < n and text[j] == ";":
            j += 1
        return chr(code), j
    start = j
    while j < n and text[j].isascii() and text[j].isalpha():
        j += 1
    name = text[start:j]
    decoded = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}.get(name)
    if decoded is None:
        return "&", i + 1
    if j < n and text[j] == ";":
        j += 1
    return decoded, j


def _decode_html_text(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "&":
            decoded, i = _decode_html_entity(text, i)
            out.append(decoded)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _normalize_url(url: str) -> str | None:
    url = url.strip()
    if not url:
        return None
    lower = url.lower()
    if lower.startswith(("http://", "https://", "tg://", "ftp://", "mailto:")):
        return url
    if "." in url and " " not in url:
        return "http://" + url + ("" if "/" in url else "/")
    return None


def parse_html(text: str) -> tuple[str, list[Entity]]:
    out = _Out()
    stack: list[_Open] = []
    n = len(text)
    i = 0
    while i < n:
        ch = text[i]
        if ch == "&":
            decoded, i = _decode_html_entity(text, i)
            out.add(decoded)
            continue
        if ch != "<":
            out.add(ch)
            i += 1
            continue
        begin = i
        begin_byte = _byte_offset(text, begin)
        i += 1
        if i < n and text[i] == "/":  # end tag
            i += 1
            name_start = i
            while i < n and text[i] not in WHITESPACE and text[i] != ">":
                i += 1
            end_name = text[name_start:i].lower()
            while i < n and text[i] in WHITESPACE:
                i += 1
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {begin_byte}")
            if i >= n or text[i] != ">":
                raise EntityParseError(f"Unclosed end tag at byte offset {begin_byte}")
            i += 1
            opened = stack.pop()
            if end_name and end_name != opened.name:
                raise EntityParseError(
                    f'Unmatched end tag at byte offset {begin_byte}, expected "</{opened.name}>", '
                    f'found "</{end_name}>"'
                )
            _close_html(out, opened, stack)
            continue
        # start tag
        name_start = i
        while i < n and text[i] not in WHITESPACE and text[i] != ">":
            i += 1
        if i >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {begin_byte}")
        name = text[name_start:i].lower()
        if name not in _HTML_TAGS:
            raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {begin_byte}')
        attrs: dict[str, str] = {}
        while True:
            while i < n and text[i] in WHITESPACE:
                i += 1
            if i >= n:
                raise EntityParseError(f'Unclosed start tag "{name}" at byte offset {begin_byte}')
            if text[i] == ">":
                i += 1
                break
            attr_start = i
            while i < n and text[i] not in WHITESPACE and text[i] not in "=>":
                i += 1
            attr = text[attr_start:i].lower()
            if not attr:
                raise EntityParseError(
                    f'Empty attribute name in the tag "{name}" at byte offset {begin_byte}'
                )
            while i < n and text[i] in WHITESPACE:
                i += 1
            if i >= n:
                raise EntityParseError(f'Unclosed start tag "{name}" at byte offset {begin_byte}')
            if text[i] != "=":
                attrs[attr] = ""
                continue
            i += 1
            while i < n and text[i] in WHITESPACE:
                i += 1
            if i >= n:
                raise EntityParseError(f'Unclosed start tag "{name}" at byte offset {begin_byte}')
            if text[i] in "\"'":
                quote = text[i]
                end = text.find(quote, i + 1)
                if end < 0:
                    raise EntityParseError(f"Unclosed start tag at byte offset {begin_byte}")
                attrs[attr] = _decode_html_text(text[i + 1 : end])
                i = end + 1
            else:
                value_start = i
                while i < n and (text[i].isascii() and (text[i].isalnum() or text[i] in "_.-")):
                    i += 1
                if i >= n:
                    raise EntityParseError(f'Unclosed start tag "{name}" at byte offset {begin_byte}')
                if text[i] not in WHITESPACE and text[i] != ">":
                    raise EntityParseError(
                        f"Unexpected end of name token at byte offset {_byte_offset(text, i)}"
                    )
                attrs[attr] = text[value_start:i]
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin_byte}')
        opened = _Open(_HTML_TAGS[name], out.pos, begin_byte, name=name, extra=attrs, index=out.reserve())
        stack.append(opened)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return out.result()


def _close_html(out: _Out, opened: _Open, stack: list[_Open]) -> None:
    kind = opened.kind
    attrs = opened.extra
    if kind == "text_link":
        href = attrs.get("href")
        if href is None:
            chars = "".join(out.chars)
            # <a>url</a> links its own text, like Telegram
            href = chars[len(chars) - (out.pos - opened.start) :] if out.pos > opened.start else ""
        url = _normalize_url(href)
        if url is None:
            return
        if url.startswith("tg://user?id="):
            try:
                user_id = int(url.split("=", 1)[1])
            except ValueError:
                return
            out.close(opened, "text_mention", user={"id": user_id, "is_bot": False, "first_name": ""})
            return
        out.close(opened, url=url)
    elif kind == "code":
        language = attrs.get("class", "")
        parent = stack[-1] if stack else None
        if language.startswith("language-") and parent is not None and parent.kind == "pre":
            parent.extra["language"] = language[len("language-") :]
        out.close(opened)
    elif kind == "pre":
        language = attrs.get("language")
        if language:
            out.close(opened, language=language)
        else:
            out.close(opened)
    elif kind == "blockquote":
        out.close(opened, "expandable_blockquote" if "expandable" in attrs else "blockquote")
    elif kind == "custom_emoji":
        emoji_id = attrs.get("emoji-id", "")
        if not emoji_id.isdigit():
            raise EntityParseError("Custom emoji entity must contain a valid custom emoji identifier")
        out.close(opened, custom_emoji_id=emoji_id)
    else:
        out.close(opened)


# --------------------------------------------------------------------------- MarkdownV2

_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


def _md_error_name(opened: _Open) -> str:
    if opened.kind == "pre" and opened.extra.get("language"):
        return "PreCode"
    return _MDV2_NAMES.get(opened.kind, opened.kind)


def parse_markdown_v2(text: str) -> tuple[str, list[Entity]]:
    out = _Out()
    stack: list[_Open] = []
    quote: _Open | None = None
    expandable = False
    n = len(text)
    i = 0
    while i < n:
        ch = text[i]
        top = stack[-1] if stack else None
        # inside code / pre only '`' (and escapes) are special
        if top is not None and top.kind in ("code", "pre"):
            if ch == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
                out.add(text[i + 1])
                i += 2
            elif top.kind == "code" and ch == "`":
                stack.pop()
                out.close(top)
                i += 1
            elif top.kind == "pre" and text.startswith("```", i):
                stack.pop()
                language = top.extra.get("language")
                if language:
                    out.close(top, language=language)
                else:
                    out.close(top)
                i += 3
            else:
                out.add(ch)
                i += 1
            continue
        at_line_start = i == 0 or text[i - 1] in "\r\n"
        if at_line_start and (ch == ">" or (text.startswith("**>", i))):
            if quote is None:
                quote = _Open("blockquote", out.pos, _byte_offset(text, i), index=out.reserve())
                expandable = False
            i += 3 if ch == "*" else 1
            continue
        if at_line_start and quote is not None:
            # the quote ended on the previous line
            _close_quote(out, quote, stack, expandable)
            quote = None
        if ch == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
            out.add(text[i + 1])
            i += 2
            continue
        if ch not in _MDV2_RESERVED:
            out.add(ch)
            i += 1
            continue
        byte = _byte_offset(text, i)
        if ch in "_*~" or (ch == "|" and text.startswith("||", i)):
            if ch == "_" and text.startswith("__", i):
                kind, width = "underline", 2
            elif ch == "|":
                line_end = i + 2 >= n or text[i + 2] in "\r\n"
                if quote is not None and line_end and not any(o.kind == "spoiler" for o in stack):
                    expandable = True
                    i += 2
                    continue
                kind, width = "spoiler", 2
            else:
                kind, width = {"_": "italic", "*": "bold", "~": "strikethrough"}[ch], 1
            if top is not None and top.kind == kind:
                stack.pop()
                out.close(top)
            else:
                stack.append(_Open(kind, out.pos, byte, index=out.reserve()))
            i += width
            continue
        if ch == "`":
            if text.startswith("```", i):
                j = i + 3
                k = j
                while k < n and text[k] not in WHITESPACE and text[k] != "`":
                    k += 1
                language = ""
                if k < n and k > j and text[k] in WHITESPACE:
                    language = text[j:k]
                    j = k
                    if text[j] in "\r\n":
                        j += 1
                        if j < n and text[j] in "\r\n" and text[j] != text[j - 1]:
                            j += 1
                stack.append(_Open("pre", out.pos, byte, extra={"language": language}, index=out.reserve()))
                i = j
            else:
                stack.append(_Open("code", out.pos, byte, index=out.reserve()))
                i += 1
            continue
        if ch == "[" or (ch == "!" and text.startswith("![", i)):
            kind = "custom_emoji" if ch == "!" else "text_link"
            stack.append(_Open(kind, out.pos, byte, index=out.reserve()))
            i += 2 if ch == "!" else 1
            continue
        if ch == "]" and top is not None and top.kind in ("text_link", "custom_emoji"):
            stack.pop()
            i += 1
            url: str | None = None
            if i < n and text[i] == "(":
                url_start = i + 1
                j = url_start
                chars: list[str] = []
                while j < n and text[j] != ")":
                    if text[j] == "\\" and j + 1 < n and 0 < ord(text[j + 1]) <= 126:
                        chars.append(text[j + 1])
                        j += 2
                    else:
                        chars.append(text[j])
                        j += 1
                if j >= n:
                    what = "a custom emoji URL" if top.kind == "custom_emoji" else "a URL"
                    raise EntityParseError(
                        f"Can't find end of {what} at byte offset {_byte_offset(text, url_start)}"
                    )
                url = "".join(chars)
                i = j + 1
            if top.kind == "custom_emoji":
                if not url or not url.lower().startswith("tg://emoji?"):
                    raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
                emoji_id = url.split("id=", 1)[1] if "id=" in url else ""
                if not emoji_id.isdigit():
                    raise EntityParseError("Custom emoji URL must have an emoji identifier")
                out.close(top, custom_emoji_id=emoji_id)
            else:
                if url is None:
                    chars_so_far = "".join(out.chars)
                    url = chars_so_far[len(chars_so_far) - (out.pos - top.start) :]
                normalized = _normalize_url(url)
                if normalized is not None:
                    out.close(top, url=normalized)
            continue
        raise EntityParseError(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")
    if stack:
        raise EntityParseError(
            f"Can't find end of {_md_error_name(stack[-1])} entity at byte offset {stack[-1].byte}"
        )
    if quote is not None:
        _close_quote(out, quote, stack, expandable)
    return out.result()


def _close_quote(out: _Out, quote: _Open, stack: list[_Open], expandable: bool) -> None:
    for opened in stack:
        if opened.start >= quote.start and opened.index > quote.index:
            raise EntityParseError(
                f"Can't find end of {_md_error_name(opened)} entity at byte offset {opened.byte}"
            )
    out.close(quote, "expandable_blockquote" if expandable else "blockquote")


# --------------------------------------------------------------------------- legacy Markdown


def parse_markdown(text: str) -> tuple[str, list[Entity]]:
    out = _Out()
    n = len(text)
    i = 0
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in "_*`[":
            out.add(text[i + 1])
            i += 2
            continue
        if ch not in "_*`[":
            out.add(ch)
            i += 1
            continue
        byte = _byte_offset(text, i)
        unclosed = EntityParseError(f"Can't find end of the entity starting at byte offset {byte}")
        if ch in "_*":
            end = text.find(ch, i + 1)
            if end < 0:
                raise unclosed
            opened = _Open("italic" if ch == "_" else "bold", out.pos, byte)
            out.add(text[i + 1 : end])
            out.close(opened)
            i = end + 1
        elif ch == "`":
            if text.startswith("```", i):
                end = text.find("```", i + 3)
                if end < 0:
                    raise unclosed
                body = text[i + 3 : end]
                language = ""
                first, sep, rest = body.partition("\n")
                if sep and first and not any(c in WHITESPACE for c in first):
                    language, body = first, rest
                opened = _Open("pre", out.pos, byte)
                out.add(body)
                if language:
                    out.close(opened, language=language)
                else:
                    out.close(opened)
                i = end + 3
            else:
                end = text.find("`", i + 1)
                if end < 0:
                    raise unclosed
                opened = _Open("code", out.pos, byte)
                out.add(text[i + 1 : end])
                out.close(opened)
                i = end + 1
        else:  # '['
            end = text.find("]", i + 1)
            if end < 0:
                raise unclosed
            opened = _Open("text_link", out.pos, byte)
            label = text[i + 1 : end]
            out.add(label)
            i = end + 1
            url: str | None = label
            if i < n and text[i] == "(":
                url_end = text.find(")", i + 1)
                if url_end < 0:
                    raise unclosed
                url = text[i + 1 : url_end]
                i = url_end + 1
            normalized = _normalize_url(url or "")
            if normalized is not None:
                out.close(opened, url=normalized)
    return out.result()


# --------------------------------------------------------------------------- entry points

PARSE_MODES = {"html": "HTML", "markdownv2": "MarkdownV2", "markdown": "Markdown"}


@dataclass
class FormattedText:
    text: str
    entities: list[Entity]


def format_text(raw: str, parse_mode: str | None, entities: Any = None) -> FormattedText:
    """Apply ``parse_mode`` (or explicit ``entities``) to ``raw`` and trim it like Telegram."""
    if entities is not None:
        if isinstance(entities, str) or not isinstance(entities, list):
            raise bad_request("can't parse entities JSON object")
        parsed = _validate_entities(raw, entities)
        return _trim(raw, parsed)
    mode = PARSE_MODES.get((parse_mode or "").lower()) if parse_mode else None
    if parse_mode and mode is None:
        raise bad_request(f"unsupported parse_mode {parse_mode}")
    try:
        if mode == "HTML":
            text, found = parse_html(raw)
        elif mode == "MarkdownV2":
            text, found = parse_markdown_v2(raw)
        elif mode == "Markdown":
            text, found = parse_markdown(raw)
        else:
            text, found = raw, []
    except EntityParseError as exc:
        raise parse_error(str(exc)) from None
    return _trim(text, found)


def _validate_entities(text: str, entities: list[Any]) -> list[Entity]:
    total = utf16_len(text)
    out: list[Entity] = []
    for entity in entities:
        if not isinstance(entity, dict):
            raise bad_request("can't parse entities JSON object")
        offset, length = entity.get("offset"), entity.get("length")
        if (
            not isinstance(entity.get("type"), str)
            or not isinstance(offset, int)
            or not isinstance(length, int)
        ):
            raise bad_request('can\'t parse MessageEntity: Field "type" must be of type String')
        if offset < 0 or length <= 0 or offset + length > total:
            continue  # Telegram silently drops entities outside the text
        out.append(dict(entity))
    out.sort(key=lambda e: (e["offset"], -e["length"]))
    return out


def _trim(text: str, entities: list[Entity]) -> FormattedText:
    stripped_left = text.lstrip(WHITESPACE)
    shift = utf16_len(text) - utf16_len(stripped_left)
    trimmed = stripped_left.rstrip(WHITESPACE)
    total = utf16_len(trimmed)
    if shift == 0 and total == utf16_len(text):
        return FormattedText(text, entities)
    out: list[Entity] = []
    for entity in entities:
        start = max(0, entity["offset"] - shift)
        end = min(total, entity["offset"] + entity["length"] - shift)
        if end > start:
            out.append({**entity, "offset": start, "length": end - start})
    return FormattedText(trimmed, out)


def text_length(text: str) -> int:
    """Telegram's length limits count Unicode characters of the parsed text."""
    return len(text)


def bot_command_entities(text: str) -> list[Entity]:
    """``bot_command`` entities the way Telegram detects them in text users send."""
    out: list[Entity] = []
    n = len(text)
    start = text.find("/")
    while 0 <= start < n:
        i = start
        start = text.find("/", i + 1)
        if i > 0:
            prev = text[i - 1]
            if prev.isalnum() or prev in "_/<>":
                continue
        j = i + 1
        while j < n and text[j].isascii() and (text[j].isalnum() or text[j] == "_"):
            j += 1
        if j == i + 1 or j - i - 1 > 64:
            continue
        end = j
        if j < n and text[j] == "@":
            k = j + 1
            while k < n and text[k].isascii() and (text[k].isalnum() or text[k] == "_"):
                k += 1
            if 3 <= k - j - 1 <= 32:
                end = k
        if end < n and (text[end].isalnum() or text[end] in "_/<>"):
            continue
        out.append({"type": "bot_command", "offset": utf16_len(text[:i]), "length": utf16_len(text[i:end])})
    return out
