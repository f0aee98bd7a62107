"""Word lists for the guard's normalisation (safety_text.py): disguised spellings and other languages.

CORE_WORDS are the crisis words most often disguised. Their pinyin is derived with pypinyin, so a new
word needs only its Chinese form. `latin_only_ok=False` where the all-Latin spelling is also an ordinary
word (yishu = 艺术 "art", shangdiao = 上调 "raise"): then one character must stay Chinese ("遗shu").
`sound_alikes=True` only where no common word sounds the same (自刹/自鲨 for 自杀; not 轻生, which
sounds like 轻声 "softly").

GLOSS maps English (and a little Cantonese) onto the Chinese concepts the rules are written in, so
that one compositional rule serves every language: "I don't want to be alive" becomes "i不想活", then
the Chinese "不想…活" rule, its negation check and its third-person check apply as to Chinese text.
Entries are concepts (want, die, alive, myself, pills, never wake up), not whole test sentences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class CoreWord:
    word: str
    latin_only_ok: bool = True
    sound_alikes: bool = False


CORE_WORDS: tuple[CoreWord, ...] = (
    CoreWord("自杀", sound_alikes=True),
    CoreWord("自残", sound_alikes=True),
    CoreWord("割腕", sound_alikes=True),
    CoreWord("轻生"),
    CoreWord("寻死", latin_only_ok=False),  # xunsi = 寻思 "to ponder"
    CoreWord("想死"),
    CoreWord("去死"),
    CoreWord("不想活"),
    CoreWord("活不下去"),
    CoreWord("一死了之"),
    CoreWord("遗书", latin_only_ok=False),
    CoreWord("安眠药"),
    CoreWord("跳楼"),
    CoreWord("上吊", latin_only_ok=False),
    CoreWord("烧炭"),
)

# English / Cantonese -> Chinese concept, longest phrasing first. Apostrophes are already dropped by
# normalisation ("don't" arrives as "dont"), and one space separates Latin words.
GLOSS: tuple[tuple[str, str], ...] = (
    (r"suicide note|goodbye (?:letter|note)s?", "遗书"),
    (r"better off without me", "没有我会更好"),
    (r"never (?:wake|woke|waking) up|not (?:wake|waking) up(?: again)?", "再也不醒"),
    (
        r"(?:no|any) (?:reason|point) (?:in |to )?(?:keep )?living|nothing to live for|not worth living"
        r"|(?:the )?point (?:in|of) living",
        "活着没意义",
    ),
    (
        r"end(?:ing)? it all|end(?:ing)? everything|(?:everything|it all) to (?:stop|end)|make (?:it|everything) stop",
        "结束这一切",
    ),
    (
        r"kill(?:ing)? (?:my|your)sel(?:f|ves)|kms|end(?:ing)? my (?:own )?life|tak(?:e|ing) my (?:own )?life"
        r"|commit(?:ting)? suicide|suicidal|suicide",
        "自杀",
    ),
    (
        r"kill(?:ing|ed|s)? (?:her|him|them)sel(?:f|ves)|end(?:ing|ed|s)? (?:her|his|their) (?:own )?life",
        "自杀",
    ),
    (r"hang(?:ing)? myself", "上吊"),
    (
        r"self ?harm(?:ing)?|cut(?:ting)? myself|hurt(?:ing)? myself|harm(?:ing)? myself|burn(?:ing)? myself",
        "自残",
    ),
    (r"overdos(?:e|ed|ing)", "吃药过量"),
    (r"sleeping (?:pills|tablets)", "安眠药"),
    (r"pills|tablets|meds|medication", "药"),
    (r"sav(?:ed|ing) up|stockpil(?:ed|ing)|hoard(?:ed|ing)|stash(?:ed)?", "攒了"),
    (
        r"(?:took|swallowed|have taken|just took)(?: a whole| an entire| a| all(?: of)?(?: my| the)?)?"
        r"(?: bottle of)?",
        "吃了一整瓶",
    ),
    (r"jump(?:ing)? (?:off|from)", "跳下"),
    (r"bridge", "桥"),
    (r"(?:roof|rooftop)", "楼顶"),
    (r"disappear forever|vanish forever", "永远消失"),
    (r"disappear|vanish", "消失"),
    (r"everyone|everybody", "大家"),
    (r"(?:my )?(?:best ?friend|friend|bestie|bff)", "朋友"),
    (r"she", "她"),
    (r"he", "他"),
    (
        r"(?:want|wants|wanted|wanna|wish|wishing|would like) to|feel(?:ing)? like|felt like"
        r"|(?:thinking|think|thought) (?:about|of)",
        "想",
    ),
    (r"(?:planning|plan|planned|decided) to", "打算"),
    (r"going to|gonna|about to", "要"),
    (r"enough", "够"),
    (r"tried to|attempted(?: to)?", "试过"),
    (r"dont|do not|doesnt|does not|didnt|did not|not", "不"),
    (r"never", "从不"),
    (r"die(?! of| from| for| laughing)|dying(?! to| of| for)|dead(?! tired| line)", "死"),
    (r"(?:be )?alive|exist|live(?! in| with| at| on| here| there| like| abroad| alone)|living", "活"),
    (r"tonight", "今晚"),
    (r"cut", "割"),
    # Cantonese: 唔 = 不, 落去 = 下去 ("唔想再活落去"), 咗 = 了, 冇 = 没有, 谂 = 想, 听晚 = 明晚,
    # 送晒俾人 = 全送给别人, 啲嘢 = 的东西, 唔使 = 不用.
    (r"唔使", "不用"),
    (r"唔", "不"),
    (r"谂", "想"),
    (r"听晚", "明晚"),
    (r"送晒俾人|送晒", "送人"),
    (r"俾", "给"),
    (r"啲嘢", "的东西"),
    (r"落去", "下去"),
    (r"咗", "了"),
    (r"冇", "没有"),
)

GLOSS_PATTERN = re.compile(
    "(?<![a-z])(?:" + "|".join(f"(?P<g{k}>{regex})" for k, (regex, _) in enumerate(GLOSS)) + ")(?![a-z])"
)


def gloss(match: re.Match[str]) -> str:
    """The Chinese concept for one matched English / Cantonese phrasing."""
    return GLOSS[int(match.lastgroup[1:])][1]
