"""Slack's texts as Slack shows them, for a terminal: mrkdwn's *bold*, _italics_, ~strike~ and
`code` as styles, `<@U…>` mentions and `<#C…>` channels by name, `<url|text>` links as
`text (url)`, a `<!date^…|fallback>` as its fallback, `&lt; &gt; &amp;` as the characters they
stand for, `:emoji:` shortcodes as emoji and `>` quotes behind a bar.

The result is a `rich.text.Text`, built piece by piece with styles, never parsed as rich
markup: whatever a message says (`[bold]` in a note someone typed) is printed as it is. Printed
to a terminal the styles show; printed anywhere else the same text is plain.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rich.emoji import Emoji, NoEmoji
from rich.text import Text

# How each piece looks in a terminal (nothing, elsewhere).
STYLES = {
    "*": "bold",
    "_": "italic",
    "~": "strike",
    "code": "cyan",
    "mention": "bold blue",
    "link": "underline blue",
    "url": "dim",
    "quote": "dim",
}

CODE = re.compile(r"```(.+?)```|`([^`\n]+)`", re.S)
TOKEN = re.compile(r"<([^<>\n]+)>")  # <@U1>, <#C1|name>, <url|text>, <!date^…|fallback>, <!here>
ENTITY = re.compile(r"&(lt|gt|amp);")
ENTITIES = {"lt": "<", "gt": ">", "amp": "&"}
SHORTCODE = re.compile(r":([a-z0-9_+'-]+):")
QUOTE = re.compile(r"^>[ \t]?", re.M)


def _marked(mark: str) -> re.Pattern[str]:
    """Text between two `mark`s on one line, as Slack formats it: the opening one not inside a
    word and followed by a character that is not a space, the closing one the other way round."""
    m = re.escape(mark)
    return re.compile(rf"(?<![\w{m}]){m}(?=[^\s{m}])[^\n]*?[^\s{m}]{m}(?![\w{m}])")


MARKED = {mark: _marked(mark) for mark in ("*", "_", "~")}


def emoji(name: str) -> str | None:
    """The emoji a Slack shortcode's name stands for (None: no emoji of that name)."""
    if name.startswith("skin-tone-"):  # `:wave::skin-tone-2:`: the plain emoji is enough
        return ""
    try:
        return str(Emoji(name))
    except NoEmoji:
        return None


def plain_text(text: str, emojis: bool = True) -> Text:
    """A `plain_text` object's text: literal, its `:emoji:` shortcodes as emoji."""
    if emojis:
        text = SHORTCODE.sub(lambda m: _or(emoji(m[1]), m[0]), text)
    return Text(text)


def _or(value: str | None, default: str) -> str:
    return default if value is None else value


@dataclass(frozen=True)
class Piece:
    """What a placeholder character stands for: text with its own style."""

    text: str
    style: str = ""


class Mrkdwn:
    """Renders mrkdwn; `name` gives a user's name (`@ada`) and `channel` a channel's (`#general`)."""

    def __init__(self, name: Callable[[str], str], channel: Callable[[str], str]) -> None:
        self.name = name
        self.channel = channel

    def __call__(self, text: str) -> Text:
        pieces: dict[str, Piece] = {}
        free = _placeholders(text)

        def hold(piece: Piece) -> str:
            mark = next(free)
            pieces[mark] = piece
            return mark

        def code(m: re.Match[str]) -> str:
            inside = m[1] if m[1] is not None else m[2]
            return hold(Piece(_entities(inside.strip("\n") if m[1] else inside), STYLES["code"]))

        text = CODE.sub(code, text)
        text = TOKEN.sub(lambda m: "".join(hold(p) for p in self._token(m[1])), text)
        text = _entities(text)
        text = SHORTCODE.sub(lambda m: m[0] if (e := emoji(m[1])) is None else hold(Piece(e)), text)
        return _styled(text, pieces)

    def _token(self, inside: str) -> list[Piece]:
        """What Slack shows for `<inside>`."""
        target, _bar, label = inside.partition("|")
        if target.startswith("@"):  # a person; Slack shows their current name
            shown = self.name(target[1:])
            if shown.startswith("<") and label:  # not one of ours: the name the token carries
                shown = "@" + label.lstrip("@")
            return [Piece(shown, STYLES["mention"])]
        if target.startswith("#"):
            shown = self.channel(target[1:])
            if shown.startswith("#" + target[1:]) and label:
                shown = "#" + label.lstrip("#")
            return [Piece(shown, STYLES["mention"])]
        if target.startswith("!"):  # a date is plain text, @here and groups are mentions
            date = target.startswith("!date^")
            shown = _entities(_special(target[1:], label))
            return [Piece(shown, "" if date else STYLES["mention"])]
        label = _entities(label)
        url = _entities(target)
        if url.startswith("mailto:"):
            return [Piece(label or url.removeprefix("mailto:"), STYLES["link"])]
        if not label or label == url:
            return [Piece(url, STYLES["link"])]
        return [Piece(label, STYLES["link"]), Piece(f" ({url})", STYLES["url"])]


def _special(command: str, label: str) -> str:
    """`<!here>`, `<!subteam^S1|@team>`, `<!date^…|fallback>`: what a reader sees."""
    kind = command.split("^", 1)[0]
    if kind == "date":
        return label or command
    if label:
        return label if kind != "subteam" or label.startswith("@") else "@" + label
    if kind == "subteam":
        return "@" + command.split("^", 1)[-1]
    return "@" + kind  # here, channel, everyone


def _entities(text: str) -> str:
    return ENTITY.sub(lambda m: ENTITIES[m[1]], text)


def _placeholders(text: str):  # -> Iterator[str]
    """Private-use characters that `text` does not contain: each stands for one piece."""
    used = set(text)
    return (chr(c) for c in range(0xE000, 0xF900) if chr(c) not in used)


def _styled(text: str, pieces: dict[str, Piece]) -> Text:
    """`text` with its `*`/`_`/`~` spans as styles (the marks dropped) and each placeholder
    replaced by its piece; a quoted line starts with a bar."""
    styles: list[set[str]] = [set() for _ in text]
    dropped = [False] * len(text)
    for mark, pattern in MARKED.items():
        for m in pattern.finditer(text):
            start, end = m.start(), m.end() - 1
            if dropped[start] or dropped[end]:
                continue
            dropped[start] = dropped[end] = True
            for i in range(start + 1, end):
                styles[i].add(STYLES[mark])
    quotes = {m.start(): m.end() for m in QUOTE.finditer(text)}
    out = Text()
    run, run_style = [], ""  # characters in a row with the same style

    def flush() -> None:
        if run:
            out.append("".join(run), run_style or None)
            run.clear()

    i = 0
    while i < len(text):
        if i in quotes:
            flush()
            out.append("│ ", STYLES["quote"])
            i = quotes[i]
            continue
        char, style = text[i], " ".join(sorted(styles[i]))
        if char in pieces:
            flush()
            piece = pieces[char]
            out.append(piece.text, " ".join(s for s in (style, piece.style) if s) or None)
        elif not dropped[i]:
            if style != run_style:
                flush()
                run_style = style
            run.append(char)
        i += 1
    flush()
    return out
