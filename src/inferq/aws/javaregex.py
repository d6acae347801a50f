r"""Java regular expressions (botocore's ``pattern`` constraints) translated to Python ``re``.

botocore's models come from Coral, whose patterns are ``java.util.regex`` syntax: ``\p{ASCII}``,
``\p{Print}``, ``\A``/``\z``, possessive quantifiers, ASCII-only ``\s``/``\d``/``\w``, and a
``.`` that stops at any line terminator. Classes are rebuilt as code-point ranges, so every
shorthand, property and negation comes out exact; only Unicode letters (``\p{L}``) and numbers
(``\p{N}``) have to lean on ``re``'s ``\w`` (see ``_CATEGORY_RE``). Anything without a faithful
translation raises ``UnsupportedPattern`` at import, never silently mismatches.

Match with ``fullmatch``: Java's ``String.matches`` requires the whole value to match.
"""

from __future__ import annotations

import re

Ranges = list[tuple[int, int]]
_MAX_CODE_POINT = 0x10FFFF
_LINE_ENDS: Ranges = [(0x0A, 0x0A), (0x0D, 0x0D), (0x85, 0x85), (0x2028, 0x2029)]
# Java's shorthand and POSIX classes are ASCII-only (without UNICODE_CHARACTER_CLASS).
_SHORTHANDS: dict[str, Ranges] = {
    "d": [(0x30, 0x39)],
    "s": [(0x09, 0x0D), (0x20, 0x20)],
    "w": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
}
_PROPERTIES: dict[str, Ranges] = {
    "ASCII": [(0x00, 0x7F)],
    "Print": [(0x20, 0x7E)],
    "Graph": [(0x21, 0x7E)],
    "Alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "Alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "Digit": [(0x30, 0x39)],
    "Upper": [(0x41, 0x5A)],
    "Lower": [(0x61, 0x7A)],
    "Punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "Space": [(0x09, 0x0D), (0x20, 0x20)],
    "Blank": [(0x09, 0x09), (0x20, 0x20)],
    "XDigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
    "Cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    # Unicode separators (Zs, Zl, Zp) are few enough to list
    "Z": [
        (0x20, 0x20),
        (0xA0, 0xA0),
        (0x1680, 0x1680),
        (0x2000, 0x200A),
        (0x2028, 0x2029),
        (0x202F, 0x202F),
        (0x205F, 0x205F),
        (0x3000, 0x3000),
    ],
}
# Letters and numbers cannot be listed; ``re`` knows them only through \w. L and N together are
# exactly [^\W_]; alone, L is approximated by [^\W\d_] (adds Nl/No) and N by \d (only Nd).
_CATEGORIES = {"L": "L", "IsL": "L", "N": "N", "IsN": "N"}
_CATEGORY_RE = {frozenset("LN"): r"[^\W_]", frozenset("L"): r"[^\W\d_]", frozenset("N"): r"\d"}
_LITERAL_ESCAPES = {"t": 0x09, "n": 0x0A, "r": 0x0D, "f": 0x0C, "a": 0x07, "e": 0x1B}


class UnsupportedPattern(ValueError):
    """A Java regex construct that has no translation to Python ``re``."""


def java_regex(pattern: str) -> re.Pattern[str]:
    """Compile a botocore (Java) pattern for use with ``fullmatch``."""
    return re.compile(_JavaTranslator(pattern).translate())


class _JavaTranslator:
    def __init__(self, pattern: str) -> None:
        self.src = pattern
        self.pos = 0

    def translate(self) -> str:
        out: list[str] = []
        while self.pos < len(self.src):
            out.append(self._atom())
        return "".join(out)

    def _atom(self) -> str:
        char = self.src[self.pos]
        if char == "\\":
            return self._escape()
        if char == "[":
            return _class_re(*self._class())
        self.pos += 1
        if char == ".":
            return _class_re(_complement(_LINE_ENDS), frozenset())
        if char == "(" and self.src.startswith("?<", self.pos) and self._peek(2) not in "=!":
            self.pos += 2
            return "(?P<"
        return char

    def _peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.src[index] if index < len(self.src) else ""

    def _escape(self) -> str:
        letter = self._peek(1)
        simple = {
            "A": r"\A",
            "z": r"\Z",
            "Z": r"(?=(?:\r\n|[\n\r\x85\u2028\u2029])?\Z)",
            "b": r"\b",
            "B": r"\B",
        }
        if letter in simple:
            self.pos += 2
            return simple[letter]
        if letter == "Q":
            end = self.src.find(r"\E", self.pos + 2)
            end = len(self.src) if end < 0 else end
            quoted, self.pos = self.src[self.pos + 2 : end], end + 2
            return re.escape(quoted)
        if letter.isdigit() and letter != "0":
            self.pos += 2
            return "\\" + letter
        ranges, categories = self._class_escape()
        if len(ranges) == 1 and ranges[0][0] == ranges[0][1] and not categories:
            return re.escape(chr(ranges[0][0]))
        return _class_re(ranges, categories)

    def _class(self) -> tuple[Ranges, frozenset[str]]:
        self.pos += 1
        negated = self._peek() == "^"
        self.pos += negated
        ranges: Ranges = []
        categories: set[str] = set()
        first = True
        while self._peek() != "]" or first:
            first = False
            if self._peek() in ("", "[") or self.src.startswith("&&", self.pos):
                raise UnsupportedPattern(f"nested or unterminated class in {self.src!r}")
            items, found = self._class_item()
            ranges += items
            categories |= found
        self.pos += 1
        if negated:
            if categories:
                raise UnsupportedPattern(f"negated Unicode category in {self.src!r}")
            ranges = _complement(ranges)
        return _normalized(ranges), frozenset(categories)

    def _class_item(self) -> tuple[Ranges, frozenset[str]]:
        ranges, categories = self._class_escape() if self._peek() == "\\" else self._literal()
        is_single = len(ranges) == 1 and ranges[0][0] == ranges[0][1] and not categories
        if is_single and self._peek() == "-" and self._peek(1) not in ("]", ""):
            self.pos += 1
            upper, _ = self._class_escape() if self._peek() == "\\" else self._literal()
            return [(ranges[0][0], upper[0][1])], frozenset()
        return ranges, categories

    def _literal(self) -> tuple[Ranges, frozenset[str]]:
        code = ord(self.src[self.pos])
        self.pos += 1
        return [(code, code)], frozenset()

    def _class_escape(self) -> tuple[Ranges, frozenset[str]]:
        """One escape (``self.pos`` at the backslash) as ranges plus Unicode categories."""
        letter = self._peek(1)
        self.pos += 2
        if letter.lower() in _SHORTHANDS:
            ranges = _SHORTHANDS[letter.lower()]
            return (_complement(ranges) if letter.isupper() else ranges), frozenset()
        if letter in ("p", "P"):
            return self._property(negated=letter == "P")
        code = self._escaped_code(letter)
        return [(code, code)], frozenset()

    def _property(self, *, negated: bool) -> tuple[Ranges, frozenset[str]]:
        if self._peek() == "{":
            end = self.src.index("}", self.pos)
            name, self.pos = self.src[self.pos + 1 : end], end + 1
        else:
            name, self.pos = self._peek(), self.pos + 1
        name = name.removeprefix("Is") if name.removeprefix("Is") in _PROPERTIES else name
        if name in _PROPERTIES:
            ranges = _PROPERTIES[name]
            return (_complement(ranges) if negated else ranges), frozenset()
        if name in _CATEGORIES and not negated:
            return [], frozenset(_CATEGORIES[name])
        raise UnsupportedPattern(f"\\p{{{name}}} in {self.src!r}")

    def _escaped_code(self, letter: str) -> int:
        if letter in _LITERAL_ESCAPES:
            return _LITERAL_ESCAPES[letter]
        if letter in ("x", "u", "0"):
            return self._numeric_escape(letter)
        if letter == "c":
            self.pos += 1
            return ord(self.src[self.pos - 1]) ^ 0x40
        if letter.isalnum() or not letter:
            raise UnsupportedPattern(f"\\{letter} in {self.src!r}")
        return ord(letter)

    def _numeric_escape(self, letter: str) -> int:
        if letter == "x" and self._peek() == "{":
            end = self.src.index("}", self.pos)
            hex_digits, self.pos = self.src[self.pos + 1 : end], end + 1
            return int(hex_digits, 16)
        digit_re, base = {
            "x": ("[0-9a-fA-F]{2}", 16),
            "u": ("[0-9a-fA-F]{4}", 16),
            "0": ("[0-7]{1,3}", 8),
        }[letter]
        found = re.match(digit_re, self.src[self.pos :])
        if found is None:
            raise UnsupportedPattern(f"bad \\{letter} escape in {self.src!r}")
        self.pos += len(found.group())
        return int(found.group(), base)


def _normalized(ranges: Ranges) -> Ranges:
    merged: Ranges = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return merged


def _complement(ranges: Ranges) -> Ranges:
    gaps: Ranges = []
    start = 0
    for low, high in _normalized(ranges):
        if low > start:
            gaps.append((start, low - 1))
        start = high + 1
    if start <= _MAX_CODE_POINT:
        gaps.append((start, _MAX_CODE_POINT))
    return gaps


def _code(code: int) -> str:
    if chr(code).isascii() and chr(code).isalnum():
        return chr(code)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else (f"\\U{code:08x}")
    )


def _class_re(ranges: Ranges, categories: frozenset[str]) -> str:
    # a class reaching past the BMP is written negated: ``re`` compiles huge ranges slowly
    negate = bool(ranges) and ranges[-1][1] == _MAX_CODE_POINT
    shown = _complement(ranges) if negate else ranges
    listed = "".join(_code(a) if a == b else f"{_code(a)}-{_code(b)}" for a, b in shown)
    simple = f"[^{listed}]" if negate and listed else "[\\s\\S]" if negate else f"[{listed}]"
    if not categories:
        return simple if listed or negate else "(?!)"
    category = _CATEGORY_RE[categories]
    return f"(?:{category}|{simple})" if ranges else category
