"""Telegram's HTML parse mode, checked before anything is sent (no Bot API call needed).

`check_html(text, limit=...)` accepts exactly what the Bot API documents for parse_mode=HTML and
returns the visible text's length; anything else raises `HtmlError` with the reason:

- tags: b/strong, i/em, u/ins, s/strike/del, span class="tg-spoiler", tg-spoiler, a href, code, pre
  (with an optional <code class="language-..."> inside), blockquote (optionally `expandable`),
  tg-emoji emoji-id; properly nested and closed; no formatting inside code/pre, no link in a link,
  no blockquote in a blockquote;
- entities: numeric (&#123; &#x1F600;) and the four named ones (&lt; &gt; &amp; &quot;); a bare `<`
  or `&` must be escaped (a bare `>` is accepted, as Telegram does);
- the visible text (tags removed, entities decoded) is not empty and at most `limit` characters,
  counted as Telegram counts them (UTF-16 code units): 4096 for a message, 1024 for a caption.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024

_VALUE = r"(?:\"[^\"]*\"|'[^']*'|[^\s\"'>]+)"
TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z][a-zA-Z0-9_-]*(?:\s*=\s*" + _VALUE + r")?)*)\s*>")
ATTR_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9_-]*)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s\"'>]+))?")
ENTITY_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
# Tag -> its canonical kind (aliases collapse: <strong> is <b>).
KINDS = {
    "b": "b",
    "strong": "b",
    "i": "i",
    "em": "i",
    "u": "u",
    "ins": "u",
    "s": "s",
    "strike": "s",
    "del": "s",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "a",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "emoji",
}
LINK_SCHEMES = ("http://", "https://", "tg://", "mailto:")


class HtmlError(ValueError):
    """The text is not valid Telegram HTML; the message says why (and where)."""


@dataclass(frozen=True)
class _Open:
    name: str
    kind: str
    position: int


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _attributes(raw: str, name: str, position: int) -> dict[str, str | None]:
    attrs: dict[str, str | None] = {}
    for match in ATTR_RE.finditer(raw):
        key, value = match.group(1).lower(), match.group(2)
        if value is not None and value[:1] in ("'", '"'):
            value = value[1:-1]
        if key in attrs:
            raise HtmlError(f"<{name}> at character {position} repeats the attribute {key!r}")
        attrs[key] = _decode(value, position) if value is not None else None
    return attrs


def _decode(value: str, position: int) -> str:
    """An attribute value with its entities decoded (a bare & is refused, as in text)."""
    out, index = [], 0
    while index < len(value):
        char = value[index]
        if char == "&":
            match = ENTITY_RE.match(value, index)
            if match is None:
                raise HtmlError(f"a bare '&' in an attribute near character {position}: write &amp;")
            out.append(_entity(match.group(1), position))
            index = match.end()
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _entity(body: str, position: int) -> str:
    if body in NAMED:
        return NAMED[body]
    code = int(body[2:], 16) if body[1:2] in ("x", "X") else int(body[1:])
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise HtmlError(f"the entity &{body}; at character {position} is not a valid character")
    return chr(code)


def _check_open(name: str, kind: str, attrs: dict[str, str | None], stack: list[_Open], position: int) -> None:
    inside = {item.kind for item in stack}
    if stack and stack[-1].kind == "pre" and kind == "code":
        pass  # <pre><code class="language-python">: the one tag allowed inside pre
    elif inside & {"code", "pre"}:
        raise HtmlError(f"<{name}> at character {position}: no formatting inside <code> or <pre>")
    if kind == "a" and "a" in inside:
        raise HtmlError(f"<a> at character {position}: a link cannot contain another link")
    if kind == "blockquote" and "blockquote" in inside:
        raise HtmlError(f"<blockquote> at character {position}: blockquotes cannot be nested")
    allowed: set[str] = set()
    if kind == "a":
        href = attrs.get("href")
        if not href:
            raise HtmlError(f"<a> at character {position} needs href=\"...\"")
        if not href.strip().lower().startswith(LINK_SCHEMES):
            raise HtmlError(f"<a href> at character {position}: only http(s)://, tg:// and mailto: links")
        allowed = {"href"}
    elif name == "span":
        if attrs.get("class") != "tg-spoiler":
            raise HtmlError(f'<span> at character {position}: only <span class="tg-spoiler"> is allowed')
        allowed = {"class"}
    elif kind == "emoji":
        emoji_id = attrs.get("emoji-id") or ""
        if not emoji_id.isdigit():
            raise HtmlError(f"<tg-emoji> at character {position} needs a numeric emoji-id")
        allowed = {"emoji-id"}
    elif kind == "code" and stack and stack[-1].kind == "pre":
        css = attrs.get("class")
        if css is not None and not re.fullmatch(r"language-[A-Za-z0-9_+#.-]+", css):
            raise HtmlError(f'<code> at character {position}: class must be "language-..."')
        allowed = {"class"}
    elif kind == "blockquote":
        if attrs.get("expandable") not in (None, "", "expandable"):
            raise HtmlError(f"<blockquote> at character {position}: expandable takes no value")
        allowed = {"expandable"}
    extra = sorted(set(attrs) - allowed)
    if extra:
        raise HtmlError(f"<{name}> at character {position}: attribute {extra[0]!r} is not allowed")


def check_html(text: str, *, limit: int = MESSAGE_LIMIT, allow_empty: bool = False) -> int:
    """Validate `text` as Telegram HTML; return the visible length (UTF-16 units). Raises HtmlError."""
    stack: list[_Open] = []
    visible: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "<":
            match = TAG_RE.match(text, index)
            if match is None:
                raise HtmlError(
                    f"a bare '<' at character {index + 1} (not a supported tag): write &lt; for a '<' sign"
                )
            closing, name, raw_attrs = match.group(1) == "/", match.group(2).lower(), match.group(3)
            kind = KINDS.get(name)
            if kind is None:
                raise HtmlError(f"unsupported tag <{name}> at character {index + 1}")
            if closing:
                if raw_attrs.strip():
                    raise HtmlError(f"</{name}> at character {index + 1} cannot have attributes")
                if not stack:
                    raise HtmlError(f"</{name}> at character {index + 1} closes nothing")
                if stack[-1].name != name:
                    raise HtmlError(
                        f"</{name}> at character {index + 1} does not match <{stack[-1].name}> opened at "
                        f"character {stack[-1].position}"
                    )
                stack.pop()
            else:
                attrs = _attributes(raw_attrs, name, index + 1)
                _check_open(name, kind, attrs, stack, index + 1)
                stack.append(_Open(name, kind, index + 1))
            index = match.end()
            continue
        if char == "&":
            match = ENTITY_RE.match(text, index)
            if match is None:
                raise HtmlError(
                    f"a bare '&' at character {index + 1}: write &amp; (only &lt; &gt; &amp; &quot; and numeric "
                    "entities are supported)"
                )
            visible.append(_entity(match.group(1), index + 1))
            index = match.end()
            continue
        visible.append(char)
        index += 1
    if stack:
        raise HtmlError(f"<{stack[-1].name}> opened at character {stack[-1].position} is never closed")
    shown = "".join(visible)
    length = _utf16_len(shown.strip())
    if not allow_empty and length == 0:
        raise HtmlError("the text is empty (nothing visible once the tags are removed)")
    if length > limit:
        raise HtmlError(f"the text is {length} characters long once the tags are removed; Telegram allows {limit}")
    return length
