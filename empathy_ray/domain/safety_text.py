"""Text normalisation for the crisis guard: one canonical form for the many ways a crisis is written.

Steps, each keeping a map from every output character back to the user's raw text (evidence quotes the
user's own characters):
  1. NFKC (full-width -> half-width) and a full traditional -> simplified conversion with OpenCC (`t2s`);
  2. lower case; whitespace and format characters dropped, except one space between two Latin words;
     joiners put inside a word ("自-杀", "自 · 杀", "自**杀", "z.i.s.h.a") dropped; leetspeak inside a Latin word read
     as letters ("k!ll mys3lf"); single letters spelled apart joined ("s u i c i d e"); zhuyin read as
     pinyin ("ㄙˇ掉" -> "si掉", then step 3);
  3. spellings of the core crisis words (safety_words.CORE_WORDS) in pinyin, pinyin initials, Latin
     letters or sound-alike characters ("我想zisha", "wo bu xiang huo le", "想s", "自刹") written back as
     the Chinese word; the pinyin comes from pypinyin, not from a hand list;
  4. English and Cantonese crisis phrasings glossed into the Chinese concepts the rules are written in
     ("want to" -> 想, "kill myself" -> 自杀, "唔" -> 不), so negation, third persons and timing work the
     same way in every language and in mixed messages ("真的 want to die" -> "真的想死").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache

import opencc
from pypinyin import Style, lazy_pinyin
from pypinyin.pinyin_dict import pinyin_dict
from pypinyin.style import convert

from empathy_ray.domain import safety_words as words

Span = tuple[int, int]  # [start, end) in the raw text


@dataclass(frozen=True)
class Normalised:
    text: str
    origin: tuple[Span, ...]  # origin[i] = the raw text that normalised character i stands for

    def quote(self, raw: str, start: int, end: int) -> str:
        """The raw text behind normalised characters [start, end): a span that touches a rewritten
        word quotes all of what the user wrote ("want to die", never "want to d")."""
        return raw[self.origin[start][0] : self.origin[end - 1][1]]


_T2S = opencc.OpenCC("t2s")
_JOINERS = frozenset("-*_·•/\\|+#^~'`")
_LATIN = re.compile(r"[a-z0-9]")
# leetspeak: read as the letter only between two Latin letters ("k!ll", "mys3lf"; not "3天", "mp3")
_LEET = {"0": "o", "1": "i", "!": "i", "3": "e", "4": "a", "@": "a", "5": "s", "$": "s", "7": "t"}
_SPELLED_APART = re.compile(r"(?<![a-z0-9])(?:[a-z] ){3,}[a-z](?![a-z0-9])")  # "s u i c i d e"
_ZHUYIN = re.compile(r"[\u3105-\u312f\u31a0-\u31bf]+[ˊˇˋ˙]?")


def _is_word(char: str) -> bool:
    return char.isalnum() or "\u4e00" <= char <= "\u9fff"


def _next_word_char(pairs: list[tuple[str, Span]], start: int) -> str:
    """The next character after any run of spaces and joiners: "自 · 杀" and "自**杀" are joined too."""
    for char, _ in pairs[start:]:
        if not (char.isspace() or char in _JOINERS or unicodedata.category(char) == "Cf"):
            return char
    return ""


def _to_simplified(chars: list[str]) -> list[str]:
    """OpenCC over the whole text (phrases convert correctly); per character if a phrase changed length."""
    converted = _T2S.convert("".join(chars))
    if len(converted) == len(chars):
        return list(converted)
    return [_T2S.convert(char) if len(_T2S.convert(char)) == 1 else char for char in chars]


def _base(raw: str) -> list[tuple[str, Span]]:
    """Steps 1-2: (character, raw span) pairs."""
    pairs = [(out, (i, i + 1)) for i, char in enumerate(raw) for out in unicodedata.normalize("NFKC", char)]
    simplified = _to_simplified([char for char, _ in pairs])
    pairs = [(char.lower(), i) for char, (_, i) in zip(simplified, pairs, strict=True)]
    kept: list[tuple[str, Span]] = []
    for k, (char, i) in enumerate(pairs):
        if unicodedata.category(char) == "Cf":
            continue
        if char.isspace():
            # One space survives between two Latin words, so that English keeps its word boundaries.
            after = next((c for c, _ in pairs[k + 1 :] if not c.isspace()), "")
            if kept and kept[-1][0] != " " and _LATIN.match(kept[-1][0]) and _LATIN.match(after):
                kept.append((" ", i))
            continue
        nxt = pairs[k + 1][0] if k + 1 < len(pairs) else ""
        prev = kept[-1][0] if kept else ""
        if char in _LEET and prev.isascii() and prev.isalpha() and nxt.isascii() and nxt.isalpha():
            char = _LEET[char]
        inside = _is_word(prev) and _is_word(_next_word_char(pairs, k + 1))
        if inside and (char in _JOINERS or (char == "." and _LATIN.match(prev) and _LATIN.match(nxt))):
            continue
        kept.append((char, i))
    return kept


@cache
def _toneless_readings() -> tuple[tuple[str, frozenset[str]], ...]:
    """(character, its pinyin readings without tones) for every character of pypinyin's table."""
    return tuple(
        (chr(codepoint), frozenset(_strip_tone(r) for r in readings.split(",")))
        for codepoint, readings in pinyin_dict.items()
    )


def _strip_tone(reading: str) -> str:
    return unicodedata.normalize("NFKD", reading).encode("ascii", "ignore").decode()


@cache
def _zhuyin_table() -> dict[str, str]:
    """Zhuyin -> toneless pinyin: every syllable of pypinyin's table through pypinyin's own zhuyin
    conversion, reversed; a lone initial ("ㄌ" for 了) reads as its pinyin initial."""
    syllables = set().union(*(readings for _, readings in _toneless_readings()))
    table: dict[str, str] = {}
    for syllable in sorted(syllables):
        zhuyin = (convert(syllable, Style.BOPOMOFO, True, None) or "").rstrip("ˊˇˋ˙")
        if zhuyin:
            table.setdefault(zhuyin, syllable)
    for zhuyin, syllable in list(table.items()):
        initial = convert(syllable, Style.INITIALS, True, None) or syllable[0]
        table.setdefault(zhuyin[0], initial)
    return table


def _from_zhuyin(match: re.Match[str]) -> str | None:
    """The pinyin of a zhuyin syllable, or of each symbol read alone; None when a symbol has none."""
    symbols, table = match.group().rstrip("ˊˇˋ˙"), _zhuyin_table()
    if symbols in table:
        return table[symbols]
    return "".join(table[symbol] for symbol in symbols) if all(s in table for s in symbols) else None


def _syllable(syllable: str) -> str:
    """A pinyin syllable, its letters optionally apart ("z i s h a"), not inside a longer Latin word."""
    return " ?".join(syllable)


@cache
def _sound_alikes() -> dict[str, str]:
    """Syllable -> every character read that way (toneless), for the syllables of the core words that
    allow sound-alikes; one pass over pypinyin's character table."""
    wanted = {syllable for w in words.CORE_WORDS if w.sound_alikes for syllable in lazy_pinyin(w.word)}
    found: dict[str, list[str]] = {syllable: [] for syllable in wanted}
    for char, readings in _toneless_readings():
        for reading in readings & found.keys():
            found[reading].append(char)
    return {syllable: "".join(chars) for syllable, chars in found.items()}


def _word_pattern(word: str, sound_alikes: bool) -> re.Pattern[str]:
    """Each character as itself, its pinyin, its initial or (if allowed) a sound-alike character."""
    parts = []
    for char, syllable in zip(word, lazy_pinyin(word), strict=True):
        options = [re.escape(char), _syllable(syllable), re.escape(syllable[0])]
        if sound_alikes:
            options.append(f"[{_sound_alikes()[syllable]}]")
        parts.append("(?:" + "|".join(options) + ")")
    return re.compile("(?<![a-z])" + " ?".join(parts) + "(?![a-z])")


@cache
def _core_patterns() -> tuple[tuple[str, re.Pattern[str], bool], ...]:
    return tuple((w.word, _word_pattern(w.word, w.sound_alikes), w.latin_only_ok) for w in words.CORE_WORDS)


def _spelled_out(match: str, word: str, latin_only_ok: bool) -> bool:
    """Is `match` a disguised spelling of `word` (not the word itself, not only initials)?"""
    if match == word:
        return False
    cjk = [c for c in match if "\u4e00" <= c <= "\u9fff"]
    latin = re.sub(r"[^a-z]", "", match)
    if not cjk:
        # All Latin: needs more than initials, and is only trusted for unambiguous words.
        return latin_only_ok and len(latin) > len(word)
    if sum(c in word for c in cjk) == 0:
        return False  # sound-alikes only, e.g. "紫砂": left to the rules and the idiom list
    return True


def _substitute(pairs: list[tuple[str, Span]], pattern: re.Pattern[str], pick) -> list[tuple[str, Span]]:
    """Replace every match that `pick(matched text)` turns into a string; each new character stands
    for the whole raw text of the match."""
    text = "".join(c for c, _ in pairs)
    out: list[tuple[str, Span]] = []
    last = 0
    for match in pattern.finditer(text):
        replacement = pick(match)
        if replacement is None:
            continue
        out.extend(pairs[last : match.start()])
        span = (pairs[match.start()][1][0], pairs[match.end() - 1][1][1])
        out.extend((c, span) for c in replacement)
        last = match.end()
    out.extend(pairs[last:])
    return out


def _tidy_spaces(pairs: list[tuple[str, Span]]) -> list[tuple[str, Span]]:
    """Drop spaces that no longer sit between two Latin characters (after glossing into Chinese)."""
    kept = []
    for k, (char, i) in enumerate(pairs):
        if char == " ":
            nxt = pairs[k + 1][0] if k + 1 < len(pairs) else ""
            if not (kept and _LATIN.match(kept[-1][0]) and _LATIN.match(nxt)):
                continue
        kept.append((char, i))
    return kept


def normalise(raw: str) -> Normalised:
    """The canonical text the rules run on (see the module docstring), with its map to `raw`."""
    pairs = _base(raw)
    pairs = _substitute(pairs, _SPELLED_APART, lambda m: m.group().replace(" ", ""))
    pairs = _substitute(pairs, _ZHUYIN, _from_zhuyin)
    for word, pattern, latin_ok in _core_patterns():
        pairs = _substitute(
            pairs, pattern, lambda m, w=word, ok=latin_ok: w if _spelled_out(m.group(), w, ok) else None
        )
    pairs = _substitute(pairs, words.GLOSS_PATTERN, words.gloss)
    pairs = _tidy_spaces(pairs)
    return Normalised("".join(c for c, _ in pairs), tuple(i for _, i in pairs))
