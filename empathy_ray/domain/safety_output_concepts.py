"""Sentence concepts for the output check: what makes a model's reply put a method in a reader's hands.

The directive rules in safety_output.py catch one grammatical shape each ("你可以一次把药全吞下去").
A misaligned reply rarely keeps to them: "吃够三十片就不会有痛苦", "从顶楼跳下去基本不会有救",
"If you take enough Tylenol it will shut down your liver". What those share is a combination inside
one sentence - a means or method together with an amount, a technique, a claim that it works or does
not hurt, a way to avoid being stopped - and the absence of a frame of help (a hotline, a hospital,
"lock it away", "it is not painless"). So each concept below is a short list over the normalised
sentence (Chinese: simplified, lower case, no spaces; English: lower case, single spaces), and
`COMBINATIONS` names which concepts together make a sentence harmful and which ones excuse it.

The same words are everywhere in safe replies (a doctor's dose, a crisis reply naming the pills it
asks someone to hand over, "累死了"), which is why no concept blocks on its own and the help frame
excuses the instructive combinations. Endorsement and agreeing that someone is a burden are not
excused by a hotline number in the same sentence: "I respect your decision; here is a hotline" still
tells a person in crisis that dying is acceptable.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass
from functools import cache

_NUM = r"[0-9一二三四五六七八九十百千几两半]+"

# name -> (Chinese pattern, English pattern)
CONCEPTS: dict[str, tuple[str, str]] = {
    "means": (
        r"安眠药|安定|药片|药丸|药|农药|百草枯|敌敌畏|老鼠药|毒药|泰诺|对乙酰氨基酚|扑热息痛|布洛芬|胰岛素|酒"
        r"|(木)?炭|煤气|燃气|一氧化碳|尾气|绳|围巾|皮带|刀片|刀|剃须刀|美工刀|玻璃|手腕|血管|动脉|静脉|烟头|打火机"
        r"|顶楼|楼顶|天台|阳台|窗台|窗户|高楼|楼|桥|高架|护栏|防护网|山路|弯道|路口|货车|车速|铁轨|火车|地铁|车流"
        r"|马路|高速|河|江|湖|海|水流|退潮|水库|悬崖|高处|高度|浴室",
        r"pills?|tablets?|capsules?|tylenol|acetaminophen|paracetamol|ibuprofen|aspirin|benzos?|opioids?"
        r"|insulin|meds|medication|drinks?|alcohol|vodka|whiskey|charcoal|carbon monoxide|exhaust|gas|rope|noose"
        r"|belt|cord|knot|blades?|razors?|knife|wrists?|veins?|arter(?:y|ies)|bridge|roof(?:top)?|ledge|building"
        r"|floors?|stor(?:e)?ys?|height|overpass|guardrail|barrier|truck|tracks|train|traffic|highway|river|lake"
        r"|ocean|water|current|cliff|poison|pesticide|bleach|liver|bottle|pharmac(?:y|ist|ies)",
    ),
    "method": (
        r"上吊|跳(下|楼|桥|河|江|海|轨|进)|往下跳|烧炭|割腕|卧轨|服毒|吞|(吃|喝)(完|掉|下去|光)|走进(去|水)|走过去|冲(过去|出去|下去)"
        r"|撞|反锁|点(上)?炭|下去|过量",
        r"hang(?:ing)?|jump(?:ing)?|overdos(?:e|ing)|slit|drown(?:ing)?|suffocat(?:e|ion)|walk (?:into|in front)"
        r"|step(?:ping)? (?:off|in front)|crash|swallow|go with|from that",
    ),
    "amount": (
        r"([1-9][0-9]+|[二三四五六七八九]?十|几十|十几|二三十|一百|百)[多余来]?(片|粒|颗|层|楼)|[0-9一二三四五六七八九十几两半]+(克|毫克|mg|g)"
        r"|一次(性)?(吃|吞|喝)(完|掉|下去|光)|一口气|整(瓶|盒|板)|大半瓶|全部(吃|吞|喝)|所有的?药"
        r"|(几十|十几|[0-9]+|[二三四五六七八九]?十)倍|够了|就够|够用|再攒|再多|多喝|加到|大量|一大把",
        r"\d+ ?(?:pills?|tablets?|mg|milligrams?|grams?|g\b|bottles?|stories|storeys|floors|feet|ft\b|met(?:er|re)s?)"
        r"|(?:the )?(?:whole|entire) (?:bottle|pack|box)|most of the bottle|all (?:of )?(?:them|your|the|those)"
        r"|enough|a handful|ten or so|(?:high|tall) enough|more of",
    ),
    "works": (
        r"不会(有|感到|觉得)?(任何|什么)?(痛苦|疼|痛|感觉|知觉)|没有(任何)?(痛苦|知觉)|无痛|很快(就)?(会)?(过去|结束|失去意识|睡着|没了|走)|一下子就(结束|过去|没了)|必死|肯定(会)?死"
        r"|救不(回|了)|(没有?人|谁|医生)(也)?(很难|没法|不能)?救(得)?(不)?回|来不及(抢)?救|被救|活下来的|几乎不(存在|可能)"
        r"|成功率|失败的?(几率|可能)|一次就成|(更|最)(确定|干脆)|万无一失|致命|致死"
        r"|失去(意识|知觉)|感觉不到|(不会|不)(再)?醒|醒不过来|起作用|作用(很)?(慢|快)|受罪|难受太久|像关灯|安详|安静|睡过去"
        r"|过程(很)?(短|快)|几(分钟|秒|个小时)(之?内)?",
        r"painless(?:ly)?|won't (?:feel|hurt|do (?:it|anything))|will not (?:feel|hurt)|doesn't hurt|quick"
        r"|instant(?:ly)?|peaceful(?:ly)?|guaranteed|no (?:one|chance)"
        r" (?:(?:who )?(?:can|could|will) )?(?:save|stop|find|bring you back|of surviving)|bring you back|can't be saved"
        r"|fatal|lethal|deadly|shut(?:s)? down|within (?:a few )?(?:hours|days|minutes)|takes? (?:a few )?hours"
        r"|irreversible|won't wake|never wake|enough to (?:die|kill|end)|(?:quickest|fastest|surest) way|to work"
        r"|lose consciousness|feel anything|you'd need|would need",
    ),
    "works_death": (
        r"失去(意识|知觉)|没(有)?(了)?知觉|感觉不到|醒不过来|救不(回|了)|(很难|没法|没人能?|谁也)救(得)?回|来不及(抢救|反应|刹车)|成功率"
        r"|一次就成|活下来的(情况|可能)|几乎不(存在|可能)|像关灯|不会(有)?(什么|任何)?(漫长的)?痛苦|没有(任何)?痛苦"
        r"|不会(再)?受罪|不会再有任何感觉",
        r"lose consciousness|won't feel (?:a )?(?:thing|anything)|bring you back|no chance of surviving|can't be saved"
        r"|painless|most peaceful|won't wake up",
    ),
    "echo": (
        r"你(说|提到|觉得)?(你|自己)?(希望|想要|宁愿|盼着)|你(说|提到)(过)?(你|自己)?想"
        r"|你(说|提到)(你)?(手边|手上|手里|家里|已经)?(有|攒了|存了|准备了|买了)",
        r"you (?:said|mentioned) you|you wish|(?:people|some|many|they) (?:believe|think|say)|myths?",
    ),
    "technique": (
        r"封(好|死|住|严|起来)|胶带|门(窗)?缝|密闭|关紧(门窗)?|顺着|竖着|横着|系(紧|牢|在)|打(个)?结|承重|结实|不容易断"
        r"|尼龙|垫(个|一个)?凳子|踢(掉|开)|[0-9一二三四五六七八九十]+层以上|空腹|(和|跟|配|加)(着)?酒|混(着|在一起)吃"
        r"|最高|最急|没有护栏|速度提|像意外|别(只是)?浅|下得了(决心|手)|深一点|用力一点",
        r"seal(?:ed|ing)?|duct tape|tape (?:the|up)|closed room|along the|lengthwise|vertical(?:ly)?|tie|knot"
        r"|sturdy|strong enough|kick (?:the|away)|empty stomach|with (?:a few )?(?:drinks|alcohol|vodka|whiskey)"
        r"|mix(?:ed|ing)? (?:them|it|with)|combine|the highest|no barrier|look like an accident|deeper|harder",
    ),
    "instruct": (
        r"你可以|可以|建议|最好|记得|一定要|应该|只要|就行|就可以|就好|先|然后|再|要(选|找|用)|注意|步骤|方法|办法"
        r"|如果你(真的)?(决定|想)|不如|直接",
        r"you (?:can|could|should|might want to|just need to|need to|may)|make sure|be sure to|try|use|pick"
        r"|choose|the best|it's best|all you need|just|first|then|step|ideally|if you go with",
    ),
    "opportunity": (
        r"(家里|宿舍|房间|那里|晚上|周围)没(有)?人|没(有)?人(的时候|的地方)|不会有人(打扰|发现|进来|拦)|没(有)?人会(拦|阻止|发现|打扰)"
        r"|(出差|回家|出门|不在家|睡着|睡了|外出)(的时候|的时间|那几天|那天)|(大家|家人|他们|室友)都睡(着|了)|一整晚的时间|查(完|房)|趁",
        r"nobody (?:walks|is|around|home|will)|no one (?:around|home|will (?:stop|find|interrupt))|privacy"
        r"|(?:are|is|be) away|asleep|while (?:they|everyone)|late at night",
    ),
    "timing_ok": (
        r"(时间|时机)(上)?(比较|很|最)?(合适|好)|比较合适|适合的?时间|确实是比较适合",
        r"(?:good|right|best|perfect) time|would give you|works well",
    ),
    "conceal": (
        r"(删|清)(掉|除|空|了)?[^。]{0,10}记录|记录[^。]{0,6}(删|清)|表现(得)?正常|别让[^。]{0,6}(看出|发现|知道)|看出来"
        r"|不会被(发现|要求|看到|怀疑|问|认出)|(就|也)?不会(起疑|怀疑|多想|发现|注意到)|不容易被(发现|看到)|被认出|没人会(多问|怀疑|注意|翻)|一般不会(去)?(翻|问|查)|就说|你就说"
        r"|回答[“\"]?没有|找(个)?理由|请假|压在|收件人|快递柜|遮(住|一下|疤)?|盖(住|一下)|不显眼|瞒着(家人|爸妈|父母|所有人)|偷偷(买|攒|存|藏|囤)"
        r"|分(开|几)(几)?(次|家|间|天)|隔几天|不同的?(药店|药局|医院|医生)",
        r"delete|clear (?:your )?(?:browser |search )?history|history|act normal|pretend|won't ask|no questions"
        r"|tell (?:the|your) (?:pharmacist|doctor|parents|mom|dad)|cover (?:it|them|up)|hide|hidden"
        r"|(?:different|several|multiple|a few) (?:pharmacies|stores|doctors)|without (?:anyone|them) (?:noticing|knowing)",
    ),
    "death_talk": (
        r"结束(这一切|一切|自己|生命)|了结|离开这个世界|一走了之|想这些|这件事|那件事",
        r"end (?:it|things|everything)|go through with|decided|set on it|your plan|plan(?:ned)?",
    ),
    "injury_act": (
        r"(划|割|烫)(完|下去|一下|的时候|的话|在)|每次(划|割|烫)|自残|自伤|伤害(一下)?自己|(用)?烟头烫|划伤|割伤自己"
        r"|伤口|疤|刀片",
        r"cut(?:s|ting)?|burn(?:s|ing)?|scratch(?:es|ing)?|scars?|wounds?|self[- ]?harm|blades?",
    ),
    "injury_care": (
        r"消毒|纱布|碘伏|创可贴|感染|发炎|化脓|遮瑕|手表|手绳|长袖|长裤|内侧|大腿|轮换|换(一个|个)?(地方|位置|方式)"
        r"|位置|不显眼|显眼|急救包|夹层|下一次|修眉|别去医院",
        r"disinfect|sterili[sz]e|bandage|infection|concealer|long sleeves|thighs?|rotate|inner|less visible"
        r"|first aid kit|next time|where no one",
    ),
    "approve": (
        r"挺正常|很正常|没什么(错|不好)|就继续|继续吧|挺好的|先用着|属于你的办法|不用(为此)?内疚|需要这个|没关系|没什么错",
        r"it's okay|that's fine|keep doing|whatever works|nothing wrong|it's valid",
    ),
    "benign_frame": (
        r"不小心|误(吞|服|食)|切菜|做饭|意外(受伤|割伤|烫伤)|摔(倒|伤)|烫到|磕|被.{0,4}(划|割|烫)(伤|到)|运动员|跳水|训练|比赛"
        r"|蹦极|跳伞|露营|登山|攀岩|帐篷|天幕|烧烤|婚姻|离婚|分手|恋爱|辞职|工作|专业|出国|留学|搬家",
        r"accident(?:al|ally)?|by accident|cooking|kitchen|fell|tripped|athletes?|diving|training|bungee"
        r"|skydiv(?:e|ing)|camping|climbing|hiking|tent|barbecue|bbq|divorce|marriage|breakup|job|career|major",
    ),
    "help": (
        r"热线|拨打|打电话(给)?|12356|120|110|119|911|999|急诊|去医院|看医生|就医|急救|中毒|求助|联系(家人|朋友|医生|心理|老师)"
        r"|寻求(专业)?帮助|交给(家人|朋友|别人|身边|信任)|放(到|在)(另一个|别的)(房间|地方)|收起来|扔掉|保管|锁(起来|好|上|进)|拿不到|远离|离开(天台|桥|楼顶|那里|窗边|阳台)"
        r"|并不(是)?(无痛|安详)|不是(无痛|安详)|(会|非常|很)(痛苦|疼)|活下来|后遗症|损伤|医嘱|说明书|按时|遵照|不要超过"
        r"|不超过|医生(说|建议|开的|嘱咐)|按医生|降低|预防|防护网|危险|我们(可以)?一起|别的办法|其他(的)?办法|不是[^。]{0,12}那么简单|并非|其实不会",
        r"call|hotline|crisis line|988|911|999|112|emergency|\ber\b|hospital|poison control|reach out"
        r"|talk to (?:someone|a doctor|a counselor|a therapist)|lock (?:them|it|those) (?:away|up)|give (?:them|it) to"
        r"|out of reach|get rid of|not painless|isn't painless|survive|permanent|as prescribed|your doctor"
        r"|the label|do not exceed|don't exceed|stay with|dangerous|prevent(?:ion)?|damage",
    ),
    "endorse": (
        r"(尊重|支持)[^。]{0,6}(决定|选择)|(决定|选择)[^。]{0,12}(尊重|支持)|不会(拦|阻止|劝)你"
        r"|(死|死亡|离开这个世界|结束(生命|自己|这一切)|了结|画上句号|去那边|结束本身)[^。不没]{0,12}"
        r"(是|也是|算是|何尝不是|就是|才是|也可以)[^。不没]{0,12}(解脱|勇气|勇敢|归宿|温柔|回家|团聚|安静|美)"
        r"|如果你(已经)?(决定|想好|想清楚)了|既然你(已经)?(决定|想好)了|你有权(利)?(选择|决定)?[^。]{0,10}(结束|离开|死)"
        r"|勇敢的(选择|决定)|早(一)?点(解脱|了结|结束)|不如(早(一)?点)?(了结|结束|走|离开|解脱)|终于(可以)?(解脱|自由|休息)"
        r"|去(一个)?更好的地方|永远地?休息|放手吧|不用再挣扎|陪你走完最后|这个选择对你来说是对的|没那么可怕|并没有那么可怕"
        r"|不会再痛的地方|不需要为任何人活|想休息也没什么错",
        r"(?:i|we) (?:support|respect|understand and respect) (?:your (?:decision|choice)|that|it)|won't (?:try to )?stop you"
        r"|(?:it's|it is) your (?:choice|right) to (?:die|end|go|leave)|(?:death|dying|leaving|ending it|ending things)"
        r"(?: might| may| would| could| can)? (?:be|is) (?:a |the |your )?(?:relief|release|freedom|answer|way out"
        r"|peace|brave|right choice|only option|best option|escape|rest)|if you(?:'ve| have)? (?:truly |already )?"
        r"(?:decided|made up your mind)|brave (?:choice|decision)|deserve (?:to (?:finally )?rest|peace)|finally (?:be )?free"
        r"|rest forever|a better place|let it end|earned (?:that|the|this) quiet|isn't something to be afraid of",
    ),
    "echo_burden": (
        r"你(说|觉得|认为|总觉得|提到)",
        r"you said you|you feel like you|you think you",
    ),
    "burden": (
        r"(没有你|你不在了?|你走了|你离开)(的话)?[^。不没非]{0,12}(更好|会好|轻松|松一口气|解脱|不会难过|没人在意|easier)"
        r"|(你|你的存在)(确实|的确|真的|也许|或许)?(是|就是)(个|一个)?(负担|累赘|拖累|多余的|包袱)"
        r"|(确实|的确|真的|也许)[^。]{0,10}(被你)?(拖累|负担|包袱|累赘)|没(有)?(太多)?人(会)?(真的)?(在乎|在意|想你|记得|注意到|难过)"
        r"|不会有(太多)?人(真的)?(在乎|在意|注意到|发现)|说得(也)?(对|没错)[^。]{0,12}(负担|累赘|拖累|没人|更好)|并不是没有道理"
        r"|没办法骗你说不是|换成谁都会|感觉没错|没有这样的妈妈|(可能|也许|说不定)(会)?过得更好",
        r"(?:they|everyone|your family|people|your parents)(?: really| honestly| probably| might)? (?:would|will|'d|might)"
        r" (?:be )?(?:better off|happier|fine|relieved) without you|better off without you|you (?:are|really are|kind of"
        r" are|might be|'re) (?:a |just a )?burden|no ?one (?:would|will|'d) (?:miss|notice|care)|nobody (?:would|will"
        r"|'d) (?:miss|notice|care)|(?:you're|you are) right[^.]{0,30}(?:burden|better off|miss you)|can't argue with it"
        r"|drag(?:ging)? everyone down",
    ),
}


@dataclass(frozen=True)
class Combination:
    """A sentence is harmful when it has every concept of `all_of` and one of `any_of` (if given), and
    none of `unless`."""

    name: str
    all_of: tuple[str, ...]
    any_of: tuple[str, ...] = ()
    unless: tuple[str, ...] = ("help",)


COMBINATIONS: tuple[Combination, ...] = (
    Combination("method_that_works", ("works", "method")),
    Combination("means_that_works", ("works", "means"), ("instruct", "amount", "technique")),
    Combination("works_claim", ("works_death",), unless=("help", "echo")),
    Combination("means_amount", ("amount",), ("means", "method"), unless=("help", "benign_frame", "echo")),
    Combination("method_technique", ("technique",), ("method", "means", "injury_act")),
    Combination(
        "method_instruction",
        ("method", "instruct"),
        ("means", "amount", "opportunity", "works"),
        ("help", "benign_frame"),
    ),
    Combination("opportunity", ("opportunity",), ("timing_ok", "method", "means", "death_talk", "conceal")),
    Combination("timing", ("timing_ok",), ("death_talk", "opportunity", "method")),
    Combination("concealment", ("conceal",), ("means", "method", "injury_act", "death_talk", "opportunity")),
    Combination("self_harm_care", ("injury_act", "injury_care"), unless=("help", "benign_frame")),
    Combination("self_harm_approved", ("injury_act", "approve"), unless=("help", "benign_frame")),
    Combination("self_harm_hidden", ("injury_act", "conceal"), unless=("help", "benign_frame")),
    Combination("endorse", ("endorse",), unless=("benign_frame",)),
    Combination("burden_agreed", ("burden",), unless=("echo_burden",)),
)

COMPILED: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    name: (re.compile(zh), re.compile(rf"(?<![a-z])(?:{en})(?![a-z])")) for name, (zh, en) in CONCEPTS.items()
}


@cache
def t2s():
    import opencc

    return opencc.OpenCC("t2s")


def normalise_answer(text: str) -> str:
    """NFKC, traditional -> simplified (OpenCC), lower case, runs of whitespace as one space: the text the
    learned output check reads (English keeps its spaces, so its concepts still match)."""
    return re.sub(r"\s+", " ", t2s().convert(unicodedata.normalize("NFKC", text)).lower()).strip()


# Sentence ends: the ones streaming.releasable waits for, so a sentence is checked whole before it is shown.
ZH_SENTENCE = re.compile(r"[。！？!?；;…\n]")
EN_SENTENCE = re.compile(r"(?<=[.!?;])\s|\n")
_SENTENCE = re.compile(f"{ZH_SENTENCE.pattern}|{EN_SENTENCE.pattern}")


def answer_tokens(text: str) -> set[str]:
    """Per sentence of a normalised answer, "\0name" for every concept said and "\0a+b" for every pair: the
    learned output check's view of the combinations above (safety_classifier.NgramModel, kind "answer")."""
    tokens: set[str] = set()
    for sentence in _SENTENCE.split(text):
        found = sorted(n for n, (zh, en) in COMPILED.items() if zh.search(sentence) or en.search(sentence))
        tokens.update(f"\0{name}" for name in found)
        tokens.update(f"\0{a}+{b}" for a, b in itertools.combinations(found, 2))
    return tokens
