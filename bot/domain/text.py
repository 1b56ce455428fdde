"""Text that people type, made safe to store and show: invisible and control characters out.

Removed from every free-text field: C0 and C1 controls (U+0000-001F, U+007F-009F), every
format character (Unicode category Cf: soft hyphen, zero-width spaces and joiners, word joiner,
BOM, Arabic letter mark, Mongolian vowel separator, bidirectional embeddings, overrides and
isolates, tag characters...), line and paragraph separators (U+2028/2029) and lone surrogates
- except where they are part of an emoji: a zero-width joiner between two emoji (👩‍💻, 🏳️‍🌈)
and the tag characters of a subdivision flag (🏴 + tags + cancel tag) stay.
A multi-line field keeps tabs and line breaks (`\\r\\n` and `\\r` become `\\n`); a single-line
field gets a space for each (so words stay apart).

The character class is spelled out (a scan of all of Unicode at import would cost 0.2 s);
tests/test_text_hygiene.py checks it against this Python's Unicode database.
"""

from __future__ import annotations

import re

INVISIBLE_RANGES = (
    "\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f"  # C0 and C1 controls, less tab, LF and CR
    "\u00ad"  # soft hyphen
    "\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2"  # Arabic and Syriac format marks
    "\u180e"  # Mongolian vowel separator
    "\u200b-\u200f"  # zero-width space, non-joiner, joiner; LRM, RLM
    "\u2028-\u202e"  # line/paragraph separators; LRE, RLE, PDF, LRO, RLO
    "\u2060-\u2064\u2066-\u206f"  # word joiner, invisible operators; LRI, RLI, FSI, PDI...
    "\ud800-\udfff"  # lone surrogates (they cannot even be stored as UTF-8)
    "\ufeff"  # zero-width no-break space (BOM)
    "\ufff9-\ufffb"  # interlinear annotation
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"  # ... and tag characters
)
INVISIBLE = re.compile(f"[{INVISIBLE_RANGES}]+")
# What may stand on either side of a zero-width joiner in an emoji ZWJ sequence: pictographs
# (U+1F000-1FAFF), the symbols and dingbats some sequences use (♀ ♂ ⚕ ✈ ❤ ☠ ...), and,
# before it, a pictograph's emoji presentation selector or skin tone.
EMOJI = re.compile("[\u00a9\u00ae\u203c-\u3299\U0001f000-\U0001faff]")
EMOJI_END = re.compile("[\u00a9\u00ae\u203c-\u3299\U0001f000-\U0001faff\ufe0f]")
FLAG_TAGS = re.compile("[\U000e0020-\U000e007e]+\U000e007f")
BLACK_FLAG = "\U0001f3f4"
BREAKS = re.compile(r"\r\n?")
SPACES = re.compile(r"[\t\n\r]")


def clean_text(text: str, multiline: bool = False) -> str:
    """`text` without invisible and control characters; see the module's docstring."""
    text = BREAKS.sub("\n", INVISIBLE.sub(_unless_emoji, text))
    return text if multiline else SPACES.sub(" ", text)


def _unless_emoji(match: re.Match[str]) -> str:
    """A run of invisible characters goes, unless it is a joiner inside an emoji sequence or
    the tags of a subdivision flag."""
    run, text, start, end = match.group(), match.string, match.start(), match.end()
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    if run == "\u200d" and EMOJI_END.fullmatch(before) and EMOJI.fullmatch(after):
        return run
    if before == BLACK_FLAG and FLAG_TAGS.fullmatch(run):
        return run
    return ""


def clean_line(value: object) -> object:
    """A pydantic "before" validator for a single-line field (other types pass through)."""
    return clean_text(value) if isinstance(value, str) else value


def clean_lines(value: object) -> object:
    """A pydantic "before" validator for a multi-line field (other types pass through)."""
    return clean_text(value, multiline=True) if isinstance(value, str) else value


# --- for an operator's terminal ------------------------------------------------------------

BARE = re.compile(r'[^\s="\\]+')
ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def log_value(value: object) -> str:
    """One field of a `key=value` line, as it cannot fake another field or line, or reach the
    terminal as a control sequence: printable text without spaces, `=` or quotes stays bare;
    anything else is double-quoted, with backslash escapes for quotes, backslashes, line
    breaks and every unprintable character (`\\x1b`, `\\u202e`...). Unprintable includes the
    invisible characters above and spaces other than " "."""
    text = value if isinstance(value, str) else str(value)
    if BARE.fullmatch(text) and text.isprintable():
        return text
    return '"' + "".join(_escaped(char) for char in text) + '"'


def _escaped(char: str) -> str:
    if char in ESCAPES:
        return ESCAPES[char]
    if char == " " or char.isprintable():
        return char
    code = ord(char)
    return (
        f"\\x{code:02x}"
        if code <= 0xFF
        else f"\\u{code:04x}"
        if code <= 0xFFFF
        else f"\\U{code:08x}"
    )
