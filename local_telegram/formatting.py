"""Text the way Telegram sees it: UTF-16 offsets, parse modes, entities of what users type.

Telegram turns `parse_mode` markup into plain text plus entities on its side and refuses markup
it cannot parse. Doing the same here means the recorded text is what a user would read, and a bot
that forgets to escape a joke containing "<" fails in tests exactly as it would in production.
"""

from __future__ import annotations

import re
from typing import Any

Entity = dict[str, Any]


class ParseError(ValueError):
    """Markup Telegram would refuse, in Telegram's words (after "can't parse entities: ")."""


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


# --- HTML -------------------------------------------------------------------------------------

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
    "span": "spoiler",  # only with class="tg-spoiler"
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ATTR_RE = re.compile(r"""\s*([a-zA-Z_:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?""")
_CHAR_REF_RE = re.compile(r"&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z]{2,8});")


def _decode_char_ref(ref: str) -> str | None:
    if ref.startswith("#x"):
        code = int(ref[2:], 16)
    elif ref.startswith("#"):
        code = int(ref[1:])
    else:
        return _NAMED_ENTITIES.get(ref)
    return chr(code) if 0 < code <= 0x10FFFF else None


def parse_html(source: str) -> tuple[str, list[Entity]]:
    """Telegram's HTML parse mode: the supported tags, four named character references."""
    out: list[str] = []
    out_len = 0  # UTF-16 units written so far
    stack: list[tuple[str, int, Entity]] = []  # (tag, start offset, entity)
    entities: list[Entity] = []
    i = 0
    n = len(source)
    while i < n:
        ch = source[i]
        if ch == "&":
            m = _CHAR_REF_RE.match(source, i)
            decoded = _decode_char_ref(m.group(1)) if m else None
            if m and decoded is not None:
                out.append(decoded)
                out_len += utf16_len(decoded)
                i = m.end()
                continue
            out.append(ch)
            out_len += 1
            i += 1
            continue
        if ch != "<":
            out.append(ch)
            out_len += utf16_len(ch)
            i += 1
            continue
        begin = i
        if i + 1 < n and source[i + 1] == "/":
            j = i + 2
            while j < n and (source[j].isalnum() or source[j] == "-"):
                j += 1
            name = source[i + 2 : j].lower()
            while j < n and source[j].isspace():
                j += 1
            if j >= n or source[j] != ">":
                raise ParseError(f"Unclosed end tag at byte offset {_byte_offset(source, begin)}")
            if not stack:
                raise ParseError(f"Unexpected end tag at byte offset {_byte_offset(source, begin)}")
            tag, start, entity = stack.pop()
            if name != tag:
                raise ParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(source, begin)}, "
                    f'expected "</{tag}>", found "</{name}>"'
                )
            length = out_len - start
            if length > 0:
                if (
                    entity["type"] == "pre"
                    and entities
                    and entities[-1]["type"] == "code"
                    and (entities[-1]["offset"] == start and entities[-1]["length"] == length)
                ):
                    # <pre><code class="language-x"> is one pre entity with a language
                    code = entities.pop()
                    if code.get("language"):
                        entity["language"] = code["language"]
                entity.update(offset=start, length=length)
                entities.append(entity)
            i = j + 1
            continue
        j = i + 1
        while j < n and (source[j].isalnum() or source[j] == "-"):
            j += 1
        name = source[i + 1 : j].lower()
        if name not in _HTML_TAGS:
            raise ParseError(
                f'Unsupported start tag "{name}" at byte offset {_byte_offset(source, begin)}'
            )
        attrs: dict[str, str] = {}
        while True:
            while j < n and source[j].isspace():
                j += 1
            if j >= n:
                raise ParseError(f"Unclosed start tag at byte offset {_byte_offset(source, begin)}")
            if source[j] == ">":
                break
            m = _ATTR_RE.match(source, j)
            if not m or m.end() == j:
                raise ParseError(
                    f'Empty attribute name in the tag "{name}" at byte offset '
                    f"{_byte_offset(source, begin)}"
                )
            value = next((g for g in m.groups()[1:] if g is not None), "")
            attrs[m.group(1).lower()] = value
            j = m.end()
        entity: Entity = {"type": _HTML_TAGS[name]}
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise ParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset '
                f"{_byte_offset(source, begin)}"
            )
        if name == "a":
            href = attrs.get("href", "")
            if href.startswith("tg://user?id="):
                entity = {"type": "text_mention", "user": {"id": int(href[13:] or 0)}}
            else:
                entity["url"] = href
        if name == "code" and attrs.get("class", "").startswith("language-"):
            entity["language"] = attrs["class"][len("language-") :]
        if name == "blockquote" and "expandable" in attrs:
            entity["type"] = "expandable_blockquote"
        if name == "tg-emoji":
            entity["custom_emoji_id"] = attrs.get("emoji-id", "")
        stack.append((name, out_len, entity))
        i = j + 1
    if stack:
        raise ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


# --- MarkdownV2 -------------------------------------------------------------------------------

_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MDV2_MARKS = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}


def parse_markdown_v2(source: str) -> tuple[str, list[Entity]]:
    """Telegram's MarkdownV2: escapes, the reserved characters, the usual marks, links, code."""
    out: list[str] = []
    out_len = 0
    stack: list[tuple[str, int, int]] = []  # (mark, start offset, byte offset of the mark)
    entities: list[Entity] = []
    i = 0
    n = len(source)

    def emit(text: str) -> None:
        nonlocal out_len
        out.append(text)
        out_len += utf16_len(text)

    while i < n:
        ch = source[i]
        if ch == "\\" and i + 1 < n and 0 < ord(source[i + 1]) <= 126:
            emit(source[i + 1])
            i += 2
            continue
        if ch == "`":
            is_pre = source.startswith("```", i)
            begin = i
            i += 3 if is_pre else 1
            language = None
            if is_pre:
                eol = source.find("\n", i)
                first = source[i:eol] if eol != -1 else ""
                if eol != -1 and first and not any(c.isspace() for c in first):
                    language = first
                    i = eol + 1
            start = out_len
            closing = "```" if is_pre else "`"
            while i < n and not source.startswith(closing, i):
                if source[i] == "\\" and i + 1 < n and source[i + 1] in "`\\":
                    emit(source[i + 1])
                    i += 2
                    continue
                emit(source[i])
                i += 1
            if i >= n:
                raise ParseError(
                    f"Can't find end of {'Pre' if is_pre else 'Code'} entity at byte offset "
                    f"{_byte_offset(source, begin)}"
                )
            i += len(closing)
            if out_len > start:
                entity: Entity = {
                    "type": "pre" if is_pre else "code",
                    "offset": start,
                    "length": out_len - start,
                }
                if language:
                    entity["language"] = language
                entities.append(entity)
            continue
        if ch == "[":
            stack.append(("[", out_len, _byte_offset(source, i)))
            i += 1
            continue
        if ch == "]" and stack and stack[-1][0] == "[":
            _, start, byte_at = stack.pop()
            i += 1
            if i >= n or source[i] != "(":
                raise ParseError(f"Can't find end of TextUrl entity at byte offset {byte_at}")
            j = i + 1
            url: list[str] = []
            while j < n and source[j] != ")":
                if source[j] == "\\" and j + 1 < n:
                    url.append(source[j + 1])
                    j += 2
                    continue
                url.append(source[j])
                j += 1
            if j >= n:
                at = _byte_offset(source, i)
                raise ParseError(f"Can't find end of a URL at byte offset {at}")
            i = j + 1
            if out_len > start:
                entities.append(
                    {
                        "type": "text_link",
                        "offset": start,
                        "length": out_len - start,
                        "url": "".join(url),
                    }
                )
            continue
        mark = None
        if source.startswith("__", i):
            mark = "__"
        elif source.startswith("||", i):
            mark = "||"
        elif ch in "*_~":
            mark = ch
        if mark is not None:
            if stack and stack[-1][0] == mark:
                _, start, _ = stack.pop()
                if out_len > start:
                    entities.append(
                        {"type": _MDV2_MARKS[mark], "offset": start, "length": out_len - start}
                    )
            else:
                stack.append((mark, out_len, _byte_offset(source, i)))
            i += len(mark)
            continue
        if ch == ">" and (i == 0 or source[i - 1] == "\n"):
            i += 1  # a blockquote line; the quote itself is cosmetic here
            continue
        if ch in _MDV2_RESERVED:
            raise ParseError(
                f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
            )
        emit(ch)
        i += 1
    if stack:
        mark, _, byte_at = stack[-1]
        kind = {"[": "TextUrl", **{k: v.capitalize() for k, v in _MDV2_MARKS.items()}}[mark]
        raise ParseError(f"Can't find end of {kind} entity at byte offset {byte_at}")
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


# --- legacy Markdown --------------------------------------------------------------------------

_MD_MARKS = {"*": "bold", "_": "italic"}


def parse_markdown(source: str) -> tuple[str, list[Entity]]:
    """Telegram's legacy Markdown: *bold*, _italic_, `code`, ```pre```, [text](url)."""
    out: list[str] = []
    out_len = 0
    entities: list[Entity] = []
    i = 0
    n = len(source)
    while i < n:
        ch = source[i]
        if ch == "\\" and i + 1 < n and source[i + 1] in "*_`[":
            out.append(source[i + 1])
            out_len += 1
            i += 2
            continue
        if ch in "*_`[":
            begin = i
            if ch == "[":
                close = source.find("](", i + 1)
                end = source.find(")", close + 2) if close != -1 else -1
                if close == -1 or end == -1:
                    raise ParseError(
                        f"Can't find end of the entity starting at byte offset "
                        f"{_byte_offset(source, begin)}"
                    )
                text = source[i + 1 : close]
                entities.append(
                    {
                        "type": "text_link",
                        "offset": out_len,
                        "length": utf16_len(text),
                        "url": source[close + 2 : end],
                    }
                )
                out.append(text)
                out_len += utf16_len(text)
                i = end + 1
                continue
            mark = "```" if source.startswith("```", i) else ch
            end = source.find(mark, i + len(mark))
            if end == -1:
                raise ParseError(
                    f"Can't find end of the entity starting at byte offset "
                    f"{_byte_offset(source, begin)}"
                )
            text = source[i + len(mark) : end]
            kind = "pre" if mark == "```" else "code" if mark == "`" else _MD_MARKS[mark]
            if text:
                entities.append({"type": kind, "offset": out_len, "length": utf16_len(text)})
            out.append(text)
            out_len += utf16_len(text)
            i = end + len(mark)
            continue
        out.append(ch)
        out_len += utf16_len(ch)
        i += 1
    return "".join(out), entities


def parse_text(text: str, parse_mode: str | None) -> tuple[str, list[Entity]]:
    """Plain text and entities for `text` sent with `parse_mode` (None: text as is)."""
    mode = (parse_mode or "").lower()
    if not mode:
        return text, []
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    raise ParseError(f"Unsupported parse_mode {parse_mode!r}")


def strip_text(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Telegram trims leading and trailing whitespace from message text; entities follow."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    limit = utf16_len(stripped)
    kept: list[Entity] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, limit)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


# --- entities Telegram adds to what users type ------------------------------------------------

_AUTO_RE = re.compile(
    r"(?P<command>(?<![\w/])/[a-zA-Z0-9_]{1,64}(?:@[a-zA-Z0-9_]{3,32})?(?![\w@]))"
    r"|(?P<mention>(?<![\w@])@[a-zA-Z0-9_]{3,32}(?![\w@]))"
    r"|(?P<hashtag>(?<![\w#])#\w+)"
    r"|(?P<url>\bhttps?://[^\s]+)"
)


def auto_entities(text: str) -> list[Entity]:
    """The bot_command, mention, hashtag and url entities Telegram attaches to a user's text."""
    entities: list[Entity] = []
    for match in _AUTO_RE.finditer(text):
        kind = match.lastgroup or ""
        entities.append(
            {
                "type": "bot_command" if kind == "command" else kind,
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group()),
            }
        )
    return entities
