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

_SEEN = r"(?: (?:that )?(?:im|i am|i was|ive been|i) (?:just )?(?:reading|watching|listening to|read|watched|finished|saw))?"

# English / Cantonese -> Chinese concept, longest phrasing first. Apostrophes are already dropped by
# normalisation ("don't" arrives as "dont"), and one space separates Latin words.
GLOSS: tuple[tuple[str, str], ...] = (
    (r"suicide note|goodbye (?:letter|note)s?", "遗书"),
    (r"suicide (?:prevention|awareness|hotline|rates?|statistics|research)", "自杀预防"),  # a topic
    (r"cover letters?", "求职信"),
    (
        r"(?:better off|happier|fine|okay|ok) (?:without me|if i (?:just )?(?:was |were |am |wasnt |werent )?"
        r"(?:gone|dead|died|disappeared|not here|not around|here))",
        "没有我会更好",
    ),
    (
        r"wont be (?:here|around) (?:when|by the time) (?:she|he|they|you|my mom|my dad|mom|dad) (?:reads?|finds?|sees?)"
        r" (?:it|this)",
        "等她看到的时候我已经不在了",
    ),
    (r"(?:a )?note for", "一封信给"),
    # Media and fiction frames (safety.py treats people inside them as characters, not the writer); "the
    # novel I'm reading" is one frame, the writer who reads it is not its subject.
    (r"(?:novels?|(?:a|the|this|that) (?:book|story|short story|memoir|fanfic))" + _SEEN, "小说"),
    (r"(?:movies?|films?)" + _SEEN, "电影"),
    (r"(?:(?:a|the|this|that) (?:tv )?(?:show|series|drama)|podcasts?)" + _SEEN, "节目"),
    (r"documentar(?:y|ies)" + _SEEN, "纪录片"),
    (r"(?:the )?(?:news|articles?|headlines?|newspapers?)" + _SEEN, "新闻"),
    (r"(?:song|lyrics)" + _SEEN, "歌词"),
    (r"(?:poems?|poetry)" + _SEEN, "诗歌"),
    (r"in (?:english |history |literature |psychology )?class", "课上"),
    (
        r"(?:the|this|that) (?:main character|character|protagonist|narrator|heroine|hero)|protagonists?|narrators?",
        "主角",
    ),
    (r"do (?:the )?same(?: thing)?|do (?:that|it) too|do what (?:she|he|they) did", "那样做"),  # imitation
    (r"wake up", "醒来"),
    # Time words for the past-and-recovered check in safety.py.
    (r"(?:(?:[0-9]+|a few|a couple of|many|some|two|three|five|ten) )?years ago", "几年前"),
    (r"when i was (?:younger|a teenager|a kid|in (?:high )?school|[0-9]+)|i used to", "以前"),
    (
        r"(?:(?:im|i am) (?:doing )?(?:much |a lot |so much )?better now|now (?:im|i am) (?:doing )?(?:much |a lot |so much )?better)",
        "现在好多了",
    ),
    (r"tomorrow", "明天"),
    (r"(?:picturing|imagining|see|seeing) myself", "想"),
    (r"balcony", "阳台"),
    (r"antidepressants|painkillers|insulin|prescriptions?", "药"),
    (r"stop (?:existing|living|being alive)|cease to exist|not exist(?:ing)? anymore", "永远消失"),
    (r"cant (?:do this|take (?:it|this)|go on|keep going)(?: anymore)?", "撑不下去了"),
    (r"never (?:wake|woke|waking) up|not (?:wake|waking) up(?: again)?", "再也不醒"),
    (
        r"(?:no|any) (?:reason|point) (?:in |to )?(?:keep )?living|nothing to live for|not worth living"
        r"|(?:the )?point (?:in|of) (?:living|going on|carrying on)",
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
    (r"hang(?:ing)? myself|hang(?:ed|s)? (?:him|her|them)sel(?:f|ves)", "上吊"),
    (
        r"self ?harm(?:ing)?|cut(?:ting)? myself|hurt(?:ing)? myself|harm(?:ing)? myself|burn(?:ing)? myself",
        "自残",
    ),
    (
        r"(?:dying|death|to die|being dead|killing myself) (?:is|seems|feels like|seems like) (?:the|my) only"
        r" (?:way|option|exit|escape|answer|choice)(?: out)?|end it (?:myself|on my own terms)",
        "只有死才能解脱",
    ),
    (r"overdos(?:e|ed|ing)", "吃药过量"),
    (r"sleeping (?:pills|tablets)", "安眠药"),
    (r"how many (?:pills|tablets)[a-z ]{0,24}(?:take|kill)", "多少片才会死"),  # a lethal-dose question
    (r"cut(?:ting)? (?:myself )?again", "又割伤自己"),
    (r"deeper (?:this time|than (?:last time|before))", "比上次深"),
    (r"hid(?:den|ing|e)?", "藏着"),
    (r"(?:going|go|heading) to the", "要去"),
    (r"(?:driv(?:e|ing)|crash(?:ing)?) (?:my |the )?(?:car )?into", "开车撞向"),
    (r"(?:a )?wall", "墙"),
    (r"wont be (?:around|here)(?: anymore)?(?: to)?", "以后没法"),
    (r"take care of|look after", "照顾"),
    (r"gave(?: away)?", "送给"),
    (r"(?:are|is|were|was) (?:all )?(?:already )?written", "已经写好了"),
    (r"wrote|have written", "写了"),
    (r"letters?", "信"),
    (r"ready", "准备好了"),
    (r"parents", "爸妈"),
    (r"pills|tablets|meds|medication", "药"),
    # Means, acquisition and dates in plain English, so the Chinese means x preparation x time rules
    # apply ("bought rope" -> 买了绳子). Drug names are the over-the-counter and prescription ones most
    # often taken in overdoses; water bodies and "building" are left out (holidays, offices).
    (
        r"tylenol|paracetamol|acetaminophen|panadol|ibuprofen|advil|benadryl|xanax|benzos?|opioids?|oxy(?:codone|contin)?|fentanyl",
        "药",
    ),
    (r"(?:a )?(?:ropes?|nooses?|extension cords?)", "绳子"),
    (r"(?:razor ?)?blades?|razors?|box ?cutters?", "刀片"),
    (r"knife|knives", "刀"),
    (r"(?:a |the |my )?(?:guns?|firearms?|pistols?|rifles?|shotguns?)", "枪"),
    (r"charcoal(?: briquettes)?", "木炭"),
    (r"pesticides?|weed ?killer|rat poison", "农药"),
    (r"(?:the )?(?:train )?tracks|railway line|railroad", "铁轨"),
    (r"cliffs?", "悬崖"),
    (r"bought|purchased|ordered|picked up", "买了"),
    (r"sav(?:ed|ing)(?= (?:up )?(?:my |the |all |some |a few )?(?:pills|tablets|meds|medication))", "攒了"),
    (r"lined up|laid out|counted out", "摆好了"),
    (r"giv(?:e|ing) away|given away", "送给"),
    (r"(?:im |i am )?(?:planning|plotting)(?! to)", "在计划"),
    (r"(?:this|next|on the|the) weekend", "周末"),
    (r"next week", "下周"),
    (r"(?:on )?mondays?", "周一"),
    (r"(?:on )?tuesdays?", "周二"),
    (r"(?:on )?wednesdays?", "周三"),
    (r"(?:on )?thursdays?", "周四"),
    (r"(?:on )?fridays?", "周五"),
    (r"(?:on )?saturdays?", "周六"),
    (r"(?:on )?sundays?", "周日"),
    (r"after (?:my |her |his )?birthday", "过完生日"),
    (r"birthday", "生日"),
    (r"tmrw|tmr|2moro", "明天"),
    (r"for good", "永远"),
    (r"(?:just )?wait(?:ing)? (?:for|till|until)", "等"),
    (r"one ?way ticket", "单程票"),
    (r"(?:my )?last day", "最后一天"),
    (r"(?:my )?last (?:message|post|entry|text)", "最后一条消息"),
    (r"(?:im|i am) on (?:the|a) (?:roof|rooftop|ledge)", "我在楼顶"),
    (r"bbq|barbe?cue|grill(?:ing)?", "烧烤"),
    (r"camping|camp", "露营"),
    (r"(?:im|i am) not coming back|(?:wont|will not) be coming back", "不回来了"),
    (r"(?:i )?dont think (?:ill|i will) be (?:around|here)(?: for| at| by)?", "我大概就不在了"),
    (r"thanks? (?:you )?for everything", "谢谢你做的一切"),
    (r"(?:wont|will not|doesnt|does not|isnt) pick(?:ing)? up|(?:not|isnt) picking up", "电话不接"),
    (r"say(?:ing)? goodbye|said goodbye", "告别"),
    (r"goodbye|bye forever", "再见"),
    (r"schedul(?:ed|e|ing)", "定时"),
    (r"send|sent|post(?:ed)?", "发"),
    (r"standing on(?: the)?(?: edge of)?(?: the)?", "站在"),
    (
        r"(?:with )?(?:my )?(?:legs?|feet|foot) (?:dangling |hanging )?over the (?:edge|railing|side|ledge)",
        "腿跨出去",
    ),
    (r"rn|right now", "现在"),
    (r"how high", "多高"),
    (
        r"(?:i )?(?:wont|will not|dont|do not) need (?:them|it|this|these|those)(?: any ?more)?",
        "以后用不上了",
    ),
    (r"why am i still (?:here|alive)", "为什么我还活着"),
    (r"look(?:ing|ed)? up|search(?:ing|ed)?(?: for)?", "查"),
    (r"cats?", "猫"),
    (r"dogs?", "狗"),
    (r"prepare(?:d)?", "准备"),
    (r"deactivat(?:e|ed)|delet(?:e|ed)", "注销"),
    (r"sav(?:ed|ing) up|stockpil(?:ed|ing)|hoard(?:ed|ing)|stash(?:ed)?", "攒了"),
    (r"(?:just )?(?:took|swallowed|downed) (?:the|a) whole bottle", "吃了一整瓶药"),
    (
        r"(?:took|swallowed|have taken|just took)(?: a whole| an entire| the whole| a| all(?: of)?(?: my| the)?)?"
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
        r"(?:want|wants|wanted|wanting|wanna|wish|wishing|would like) to|feel(?:ing)? like|felt like"
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
    (r"jump(?:ing|ed|s)?", "跳"),  # after "jump off" (跳下), which must win
    # Cantonese: 唔 = 不, 落去 = 下去 ("唔想再活落去"), 咗 = 了, 冇 = 没有, 谂 = 想, 听晚 = 明晚,
    # 送晒俾人 = 全送给别人, 啲嘢 = 的东西, 唔使 = 不用.
    # Internet shorthand: "unalive", "SH" (self-harm), "zs的念头" (自杀), "去tt" (天台).
    (r"unalive(?: (?:my|your)sel(?:f|ves))?", "自杀"),
    (r"googl(?:e|ing|ed)", "搜"),
    (r"(?:a )?burden", "累赘"),
    (r"life is (?:meaningless|pointless)", "活着没意义"),
    (r"sh(?= ?又来了(?:[,.!?;。]|$)|的(?:念头|冲动))", "自残"),
    (r"zs(?=的(?:念头|想法|冲动))", "自杀"),  # bare "想zs" stays ambiguous (早睡), see CORE_WORDS
    (r"(?<=[去上到])tt", "天台"),
    (r"(?:it was )?nice knowing (?:some of )?(?:you|yall|you all|everyone)", "永别了"),
    (r"(?:dont|do not) see (?:a|any) point in (?:waking up|living|going on)", "活着没意义"),
    (r"唔使", "不用"),
    (r"唔好", "不要"),
    (r"你哋", "你们"),
    (r"咁耐", "这么久"),
    (r"搵", "找"),
    (r"(?<=我的)od|od(?= ?(?:了|又|过))", "吃药过量"),  # "我的OD又来了": an overdose
    (r"佢哋", "他们"),
    (r"好啲", "更好"),
    (r"\U00020779", "割"),  # 𠝹, Cantonese "to cut"
    # More Cantonese: 储咗 = 存了, 拣 = 挑, 喺 = 在, 入面 = 里面, 佢 = 他, 嘅 = 的, 咩 = 什么.
    (r"储(?=咗|了|好|够|埋|起)", "存"),
    (r"拣", "挑"),
    (r"喺", "在"),
    (r"入面", "里面"),
    (r"佢", "他"),
    (r"嘅", "的"),
    (r"咩", "什么"),
    # The commonest typo of the core phrase: 想 typed as a same-sounding 像/向/相 ("真的不像活了").
    (r"不(?:像|向|相)活(?=了|下去)", "不想活"),
    (r"唔", "不"),
    (r"谂", "想"),
    (r"听晚", "明晚"),
    (r"送晒俾人|送晒", "送人"),
    (r"俾", "给"),
    (r"啲嘢", "的东西"),
    (r"落去", "下去"),
    (r"咗", "了"),
    (r"冇", "没有"),
    (r"食(?=了|咗|晒|埋)", "吃"),
    (r"而家", "现在"),
    (r"瞓", "睡"),
    (r"企(?=喺|在|咗|住)", "站"),
    # Taiwanese Hokkien and north-eastern words: 袂 = 不会, 欲 = 要, 睏 = 睡, 伊 = 他, 阮 = 我们, 俺 = 我.
    (r"袂精神|袂醒", "不会醒"),
    (r"袂", "不会"),
    (r"按呢", "这样"),
    (r"(?<=我)欲|欲(?=去|死|走)", "要"),
    (r"睏", "睡"),
    (r"伊(?=[^a-z])", "他"),
    (r"阮", "我们"),
    (r"俺", "我"),
    # Emoji that stand for a means or an injury ("又🔪了自己", "💊💊全吞了", "想去🌉上").
    (r"(?:\U0001f52a)+(?=了|自己|手)", "割"),  # 🔪 as a verb: "又🔪了自己"
    (r"(?:\U0001f52a)+", "刀"),
    (r"(?:\U0001fa78)+", "血"),
    (r"(?:\U0001f48a)+", "药"),
    (r"(?:\U0001f309)+", "桥"),
    (r"(?:\U0001faa6|\u26b0\ufe0f?)+", "坟墓"),
    (r"(?:\U0001f480|\u2620\ufe0f?)+", "死"),
    (r"(?:\U0001faa2)+", "绳子"),
    (r"(?:\U0001f998)+", "跳"),  # a kangaroo for "jump"
    (r"(?<=[想去要])4(?=了|[,.!?;。 ]|$)", "死"),  # "真的想4了": 4 (si) for 死
)

GLOSS_PATTERN = re.compile(
    "(?<![a-z])(?:" + "|".join(f"(?P<g{k}>{regex})" for k, (regex, _) in enumerate(GLOSS)) + ")(?![a-z])"
)


def gloss(match: re.Match[str]) -> str:
    """The Chinese concept for one matched English / Cantonese phrasing."""
    return GLOSS[int(match.lastgroup[1:])][1]
