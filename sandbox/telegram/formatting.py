"""Text formatting like Telegram: parse_mode parsing into plain text + entities, UTF-16 offsets.

Only what a bot realistically uses is covered, but malformed markup is rejected with
Telegram's ``can't parse entities`` errors so that escaping bugs surface in tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError, bad_request

Entity = dict[str, Any]


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units (the unit of Telegram entity offsets)."""
    return len(text.encode("utf-16-le")) // 2


def _parse_error(reason: str) -> ApiError:
    return bad_request(f"can't parse entities: {reason}")


class _Builder:
    """Accumulates plain text while tracking the UTF-16 position."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0

    def add(self, chunk: str) -> None:
        self.parts.append(chunk)
        self.pos += utf16_len(chunk)

    def text(self) -> str:
        return "".join(self.parts)


def _sorted(entities: list[Entity]) -> list[Entity]:
    return sorted((e for e in entities if e["length"] > 0), key=lambda e: (e["offset"], -e["length"]))


# ---------------------------------------------------------------- HTML

_HTML_TAGS: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
    "tg-time": "",
}
_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_ATTR = re.compile(r"""\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>"']+))?""")
_HTML_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


@dataclass
class _Open:
    tag: str
    start: int
    byte_offset: int
    attrs: dict[str, str] = field(default_factory=dict)
    language: str | None = None


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def parse_html(text: str) -> tuple[str, list[Entity]]:
    """Parse Telegram-flavoured HTML into plain text and entities."""
    out = _Builder()
    stack: list[_Open] = []
    entities: list[Entity] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "&":
            m = _HTML_ENTITY.match(text, i)
            if m:
                name = m.group(1)
                if name.startswith(("#x", "#X")):
                    out.add(chr(int(name[2:], 16)))
                elif name.startswith("#"):
                    out.add(chr(int(name[1:])))
                else:
                    out.add(_NAMED[name])
                i = m.end()
                continue
            out.add(ch)
            i += 1
            continue
        if ch != "<":
            j = i
            while j < n and text[j] not in "<&":
                j += 1
            out.add(text[i:j])
            i = j
            continue
        offset = _byte_offset(text, i)
        if i + 1 < n and text[i + 1] == "/":
            end = text.find(">", i)
            if end == -1:
                raise _parse_error(f"Unclosed end tag at byte offset {offset}")
            name = text[i + 2 : end].strip().lower()
            if not stack:
                raise _parse_error(f"Unexpected end tag at byte offset {offset}")
            top = stack.pop()
            if name != top.tag:
                raise _parse_error(
                    f'Unmatched end tag at byte offset {offset}, expected "</{top.tag}>", found "</{name}>"'
                )
            _close_html(top, stack, out.pos, entities)
            i = end + 1
            continue
        m = _TAG_NAME.match(text, i + 1)
        name = m.group(0).lower() if m else ""
        if name not in _HTML_TAGS:
            raise _parse_error(f'Unsupported start tag "{name}" at byte offset {offset}')
        j = m.end() if m else i + 1
        attrs: dict[str, str] = {}
        while True:
            while j < n and text[j].isspace():
                j += 1
            if j >= n:
                raise _parse_error(f"Unclosed start tag at byte offset {offset}")
            if text[j] == ">":
                j += 1
                break
            if text.startswith("/>", j):
                j += 2
                break
            am = _ATTR.match(text, j)
            if not am or am.end() == j:
                raise _parse_error(f'Expected equal sign in declaration of an attribute of the tag "{name}"')
            value = am.group(2) or ""
            if value[:1] in "\"'":
                value = value[1:-1]
            attrs[am.group(1).lower()] = value.replace("&amp;", "&").replace("&quot;", '"')
            j = am.end()
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise _parse_error(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
        stack.append(_Open(tag=name, start=out.pos, byte_offset=offset, attrs=attrs))
        i = j
    if stack:
        raise _parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    return out.text(), _sorted(entities)


def _close_html(top: _Open, stack: list[_Open], pos: int, entities: list[Entity]) -> None:
    kind = _HTML_TAGS[top.tag]
    length = pos - top.start
    if not kind:
        return
    entity: Entity = {"type": kind, "offset": top.start, "length": length}
    if top.tag == "a":
        href = top.attrs.get("href", "")
        if not href:
            return
        entity["url"] = href
    elif top.tag == "code":
        cls = top.attrs.get("class", "")
        if stack and stack[-1].tag == "pre" and stack[-1].start == top.start and cls.startswith("language-"):
            stack[-1].language = cls[len("language-") :]
            return
    elif top.tag == "pre":
        if top.language:
            entity["language"] = top.language
    elif top.tag == "blockquote":
        if "expandable" in top.attrs:
            entity["type"] = "expandable_blockquote"
    elif top.tag == "tg-emoji":
        entity["custom_emoji_id"] = top.attrs.get("emoji-id", "")
    entities.append(entity)


# ---------------------------------------------------------------- MarkdownV2

_MD2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MD2_NAMES = {
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


@dataclass
class _MdOpen:
    kind: str
    start: int
    byte_offset: int
    language: str | None = None


def parse_markdown_v2(text: str) -> tuple[str, list[Entity]]:
    """Parse MarkdownV2, enforcing escaping of reserved characters."""
    out = _Builder()
    stack: list[_MdOpen] = []
    entities: list[Entity] = []
    quote_start: int | None = None
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        at_line_start = i == 0 or text[i - 1] == "\n"
        top = stack[-1].kind if stack else None
        if ch == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
            out.add(text[i + 1])
            i += 2
            continue
        if top in ("code", "pre"):
            if top == "pre" and text.startswith("```", i):
                opened = stack.pop()
                pre: Entity = {"type": "pre", "offset": opened.start, "length": out.pos - opened.start}
                if opened.language:
                    pre["language"] = opened.language
                entities.append(pre)
                i += 3
                continue
            if top == "code" and ch == "`":
                opened = stack.pop()
                entities.append({"type": "code", "offset": opened.start, "length": out.pos - opened.start})
                i += 1
                continue
            out.add(ch)
            i += 1
            continue
        if ch == "\n" and quote_start is not None and not text.startswith(">", i + 1):
            entities.append({"type": "blockquote", "offset": quote_start, "length": out.pos - quote_start})
            quote_start = None
        if ch not in _MD2_RESERVED:
            out.add(ch)
            i += 1
            continue
        offset = _byte_offset(text, i)
        if ch == ">" and at_line_start:
            if quote_start is None:
                quote_start = out.pos
            i += 1
            continue
        if ch == "_" and text.startswith("__", i) and (top == "underline" or top != "italic"):
            if top == "underline":
                _md_close(stack, out.pos, entities)
            else:
                stack.append(_MdOpen("underline", out.pos, offset))
            i += 2
            continue
        simple = {"*": "bold", "_": "italic", "~": "strikethrough"}
        if ch in simple:
            kind = simple[ch]
            if top == kind:
                _md_close(stack, out.pos, entities)
            elif any(o.kind == kind for o in stack):
                raise _parse_error(
                    f"Can't find end of {_MD2_NAMES[top or kind]} entity at byte offset {stack[-1].byte_offset}"
                )
            else:
                stack.append(_MdOpen(kind, out.pos, offset))
            i += 1
            continue
        if ch == "|" and text.startswith("||", i):
            if top == "spoiler":
                _md_close(stack, out.pos, entities)
            else:
                stack.append(_MdOpen("spoiler", out.pos, offset))
            i += 2
            continue
        if ch == "`":
            if text.startswith("```", i):
                end_line = text.find("\n", i + 3)
                lang = text[i + 3 : end_line] if end_line != -1 else ""
                has_lang = end_line != -1 and bool(lang.strip()) and " " not in lang
                skip = 3 + (len(lang) + 1 if has_lang else 0)
                stack.append(_MdOpen("pre", out.pos, offset, lang if has_lang else None))
                i += skip
                continue
            stack.append(_MdOpen("code", out.pos, offset))
            i += 1
            continue
        if ch == "[" or (ch == "!" and text.startswith("![", i)):
            stack.append(_MdOpen("text_link" if ch == "[" else "custom_emoji", out.pos, offset))
            i += 1 if ch == "[" else 2
            continue
        if ch == "]" and top in ("text_link", "custom_emoji"):
            opened = stack.pop()
            i += 1
            url = ""
            if i < n and text[i] == "(":
                j = i + 1
                chars: list[str] = []
                while j < n and text[j] != ")":
                    if text[j] == "\\" and j + 1 < n:
                        j += 1
                    chars.append(text[j])
                    j += 1
                if j >= n:
                    raise _parse_error(f"Can't find end of a url at byte offset {_byte_offset(text, i)}")
                url = "".join(chars)
                i = j + 1
            entity: Entity = {"type": opened.kind, "offset": opened.start, "length": out.pos - opened.start}
            if opened.kind == "text_link" and url:
                entity["url"] = url
                entities.append(entity)
            elif opened.kind == "custom_emoji" and "id=" in url:
                entity["custom_emoji_id"] = url.split("id=", 1)[1]
                entities.append(entity)
            continue
        raise _parse_error(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")
    if stack:
        raise _parse_error(
            f"Can't find end of {_MD2_NAMES[stack[-1].kind]} entity at byte offset {stack[-1].byte_offset}"
        )
    if quote_start is not None:
        entities.append({"type": "blockquote", "offset": quote_start, "length": out.pos - quote_start})
    return out.text(), _sorted(entities)


def _md_close(stack: list[_MdOpen], pos: int, entities: list[Entity]) -> None:
    opened = stack.pop()
    entities.append({"type": opened.kind, "offset": opened.start, "length": pos - opened.start})


# ---------------------------------------------------------------- legacy Markdown


def parse_markdown(text: str) -> tuple[str, list[Entity]]:
    """Parse legacy Markdown: *bold*, _italic_, `code`, ```pre```, [text](url)."""
    out = _Builder()
    entities: list[Entity] = []
    i, n = 0, len(text)
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
        offset = _byte_offset(text, i)
        if ch == "[":
            close = text.find("]", i + 1)
            if close == -1 or not text.startswith("(", close + 1):
                out.add(ch)
                i += 1
                continue
            end = text.find(")", close + 2)
            if end == -1:
                raise _parse_error(f"Can't find end of the entity starting at byte offset {offset}")
            start = out.pos
            out.add(text[i + 1 : close])
            entities.append(
                {"type": "text_link", "offset": start, "length": out.pos - start, "url": text[close + 2 : end]}
            )
            i = end + 1
            continue
        marker = "```" if text.startswith("```", i) else ch
        end = text.find(marker, i + len(marker))
        if end == -1:
            raise _parse_error(f"Can't find end of the entity starting at byte offset {offset}")
        inner = text[i + len(marker) : end]
        kind = {"*": "bold", "_": "italic", "`": "code", "```": "pre"}[marker]
        start = out.pos
        out.add(inner)
        entities.append({"type": kind, "offset": start, "length": out.pos - start})
        i = end + len(marker)
    return out.text(), _sorted(entities)


# ---------------------------------------------------------------- public helpers


def parse_text(text: str, parse_mode: str | None, entities: list[Entity] | None = None) -> tuple[str, list[Entity]]:
    """Return (plain text, entities) for a text/caption and its parse_mode or explicit entities."""
    mode = (parse_mode or "").strip().lower()
    if not mode:
        return text, list(entities or [])
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    raise bad_request(f"unsupported parse_mode {parse_mode!r}")


_COMMAND = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")


def command_entities(text: str) -> list[Entity]:
    """bot_command entities Telegram's clients attach to ``/commands`` in a user's text."""
    found: list[Entity] = []
    for m in _COMMAND.finditer(text):
        found.append({"type": "bot_command", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group(0))})
    return found
