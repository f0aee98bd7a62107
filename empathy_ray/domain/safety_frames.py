"""Frames around a match that make it something other than the writer's own present risk.

The rules (safety_lexicon/acts/concepts/signals) find crisis words and acts. Some messages use the
words without the crisis, and they do so in recurring *kinds* of statement, which safety.py checks
around every match (on the normalised text, where English is lower case and partly glossed):
  * a question or an assessment about someone else: "医生问我有没有…", and a professional's how-to
    about the people they work with ("怎么评估病人的自杀风险", "how should I ask a patient about
    suicidal thoughts", "跟来访者谈自杀的话题") - the writer asserts nothing about themself. Only a
    group the writer serves counts (patients, clients, students, callers), and a writer who comes
    back into the clause ("我", "I", "自己") is outside the frame: "我该怎么跟咨询师说我想死" fires;
    what such a person says, in a "when … says" clause ("来访者说'活着没意思'的时候"), is a case;
  * a history: a risk placed in the past ("十年前", "高中那会儿", "when I was fifteen", "I used to")
    by a writer who says they are well now ("这几年状态一直不错", "clean for four years", "doing
    well"), with nothing saying it came back ("又", "最近", "last night", "again");
  * a topic: a scene, a course, a text or a quoted word ("自杀的情节", "防自杀培训", "关于自杀的电影",
    "“想死”这两个字"), or what clinicians assess ("评估…自杀风险"), unless the writer owns it or is
    looking such texts up ("搜了好多关于自杀方法的文章" fires);
  * a denial after the topic: "自杀这种事我想都没想过", "想死？不存在的" ("想死停不了" fires);
  * a joke: a threat made conditional on an everyday setback ("再挂科我就去跳河") and taken back as
    a joke right after it ("开玩笑的", "lol"), or in English followed by one ("gonna kms if this
    meeting runs over lol"); "不是开玩笑" keeps the match;
  * the writer in English: "i", "me", "my" bring the writer back into a media frame ("I read a novel
    about a girl who wanted to die and now I want to die too") as "我" does in Chinese.
"""

from __future__ import annotations

import re

# The writer, in either language (English arrives lower case, one space between Latin words).
FIRST_PERSON = r"(?:我|自己|(?<![a-z])(?:i|im|ive|id|me|my|myself)(?![a-z]))"
_NOT_ME = rf"(?:(?!{FIRST_PERSON})[^.!?;。])"
WRITER = re.compile(FIRST_PERSON)

# A question about risk put to someone ("医生问我有没有伤害自己的念头", "问来访者有没有自杀的想法")
# asks; it asserts nothing.
QUESTION_FRAME = re.compile(
    r"(?:问|评估|筛查|了解)[^,.!?;:。]{0,10}(?:有没有|是否|是不是|会不会|有无)[^,.!?;:。]{0,4}$"
)

# Asking, assessing or talking about risk with the people a professional serves.
_ASK = (
    r"(?:问|询问|评估|筛查|识别|判断|了解|回应|应对|干预|谈|聊|谈论|讨论|提起|遇到|碰到|面对|发现|处理|ask|asking|asked|assess|assessing"
    r"|screen|screening|talk to|talk with|talk about|talking to|talking with|recognise|recognize|spot|identify"
    r"|respond to|support)"
)
_SERVED = (
    r"(?:病人|患者|病患|来访者|学生|学员|老人|来电者|当事人|求助者|服务对象|青少年|居民|用户|客户|顾客|家属|孩子们|儿童"
    r"|patients?|clients?|students?|people|someone|callers?|residents?|teens?|teenagers?|adolescents|kids|children"
    r"|youth|customers?|service users?)"
)
# The match must be the topic of the asking: right after the group ("病人的", "a patient's"), or after a
# topic word ("关于", "有没有", "about", "whether"); "跟来访者谈完真的不想活了" is no topic and fires.
_GROUP = rf"(?:my |our |我的|我们的)?{_SERVED}"
_TOPIC = rf"{_NOT_ME}{{0,12}}?(?:关于|有关|是否|有没有|会不会|是不是|想不想|有无|about|for|whether|if){_NOT_ME}{{0,10}}$"
ASKED_ABOUT_OTHERS = re.compile(
    rf"{_ASK}{_NOT_ME}{{0,8}}?{_GROUP}(?:(?:的|s|有|说)?$|{_TOPIC})"
    rf"|(?:跟|和|与|对|向|with|to ){_GROUP}{_NOT_ME}{{0,4}}?{_ASK}(?:$|{_TOPIC})"
    # "how should I respond if a teen says…": the group is the subject inside an English how-to question
    # (English states its subjects; a Chinese one may drop "我", so Chinese needs the asking verb).
    rf"|(?<![a-z])(?:how|what)(?![a-z])[^.!?;。]{{0,40}}?{_SERVED}{_NOT_ME}{{0,40}}$"
)
# "来访者说'活着没意思'的时候，应该怎样评估": the words a served person says, in a "when … says" clause
# (quoted or not; normalisation drops ASCII apostrophes), are a case to learn from, not anyone's words now.
_SERVED_SAYS = re.compile(rf"{_SERVED}(?:说|讲|提到|表示)[:]?$")
_WHEN_SAID = re.compile(r"[^,.!?;。]{0,3}?[\"'”’」』]?(?:的时候|时)")


def served_quote(text: str, clause_start: int, start: int, end: int) -> bool:
    """The match follows "来访者说" (in its clause, or right before an opening quote) and "的时候" follows it."""
    quoted = clause_start > 0 and text[clause_start - 1] in "\"'“‘「『"
    before = text[: clause_start - 1] if quoted else text[clause_start:start]
    return bool(_SERVED_SAYS.search(before) and _WHEN_SAID.match(text, end))


# A clinical topic: a risk word followed by what clinicians assess ("自杀风险", "suicidal ideation") in a
# clause about assessing or screening, with the writer nowhere in it ("医生评估后说我有自杀倾向" fires).
CLINICAL_VERB = re.compile(
    rf"(?:评估|筛查|识别|量表|问诊|assess|screen|evaluat|identify|recogni[sz]){_NOT_ME}{{0,30}}$"
)
# The match names a topic, not an act: a scene ("自杀的情节", "the suicide scene"), a course or an article
# ("防自杀培训", "关于自残的科普文章"), or a word quoted ("“想死”这两个字"). "我脑子里全是…的镜头" keeps the
# match: the writer owns the scene (safety.py checks FIRST_PERSON right before it).
TOPIC_NOUN = re.compile(
    r"(?:的)?(?:情节|镜头|桥段|剧情|戏份|科普|文章|讲座|培训|课程|宣传|预警信号|适应(?:症|证)|禁忌(?:症|证))|的消息"
    r"|(?:风险)?(?:评估)?量表"
    r"|[\"'”’」』](?:这|那)(?:两|三|四|几)?(?:个)?(?:字|词|句话|种话|说法)"
    r"| ?(?:scenes?|storylines?|plot|subplot|themes?|awareness|training|workshop|lecture)(?![a-z])"
)
# "关于自杀的讲座", "推荐几部关于自杀和救赎的电影", "这本书是关于自杀的": the match is what a text is about
# ("我有一些关于自杀的想法" is not a text and fires).
_TEXTS = (
    r"(?:电影|电视剧|剧|书|文章|讲座|课|节目|纪录片|小说|歌|论文|报道|新闻|研究|培训|活动|科普|知识|展览)"
)
ABOUT_TEXT = re.compile(rf"(?:关于|有关)$|{_TEXTS}[^,.!?;。我]{{0,4}}(?:关于|有关)$")
TEXT_AFTER = re.compile(rf"[^,.!?;。]{{0,8}}?的?{_TEXTS}|的" + r"(?=[,.!?;。]|$)")
# ...but looking such texts up is method research, a warning sign: "搜了好多关于自杀方法的文章" fires.
SEARCHING = re.compile(r"搜|查|找|研究|收藏|下载|(?<![a-z])(?:search|googl|look(?:ed|ing)? up)")
CLINICAL_NOUN = re.compile(
    r"(?:的)?(?:风险|意念|倾向|行为|筛查|评估| ?(?:ideation|risk|screening|assessment))"
)

# Time: a risk placed in the past by a writer who says they are well now is a history.
# "自残停了两年多了", "戒掉自伤一千天了": a stretch of time without the act is both the past and the recovery.
_HARM_ACT = r"(?:自残|自伤|伤害自己|割自己|划自己|割手腕|割手|划手|割腕)(?:的事|的习惯|这件事)?"
_CLEAN_FOR = (
    rf"(?:{_HARM_ACT}[^,.!?;。]{{0,2}}(?:停|戒)(?:了|掉)?|(?:停|戒)(?:了|掉){_HARM_ACT})"
    r"[^,.!?;。]{0,4}?[0-9一二三四五六七八九十两几百千]+多?(?:年|个月|天|周)"
)
PAST = re.compile(
    r"(?:[0-9]+|[一二三四五六七八九十几两]+)年前|以前|从前|那[一两三几]?年|那阵子|那时|当年|小时候|曾经|过去|那会儿|前几年"
    r"|有一段(?:时间|日子)|"
    + _CLEAN_FOR
    + r"|那段[^,.!?;:。]{0,6}(?:时候|时间|日子)|[0-9一二三四五六七八九十几两]+岁(?:的时候|时|那年|那会儿?)"
    r"|(?:小学|初中|高中|中学|大学|大[一二三四]|读书|上学|研究生|年轻)(?:的)?(?:时候|时|那会儿?|那几年|期间)"
    r"|(?<![a-z])(?:as a (?:teen|teenager|kid|child)|in (?:high school|college|university|my teens|my twenties)"
    r"|back then|at (?:age )?[0-9]{1,2}(?![0-9])|since (?:19|20)[0-9]{2})(?![a-z])"
)
# Not "平静": a sudden calm after a decision is a warning sign, not a recovery ("想好以后反而很平静").
_WELL = r"(?<![不没])(?:不错|挺好|很好|稳定|好多了|安稳|幸福)"  # "很不稳定", "没好多了" are not well
RECOVERED = re.compile(
    r"现在[^。]{0,12}(?<![不没])(?:好(?:多)?了|挺好|很好|不错|稳定|安稳|幸福|没有了|不再|停药|康复|走出来)"
    rf"|日子[^,。]{{0,4}}{_WELL}"
    r"|(?:已经|早就)[^,.!?;:。]{0,6}(?:没有|不再|走出来|康复|痊愈|好了)"
    rf"|(?:这|近)(?:几|些|两|三|四|五|十)年[^。]{{0,10}}{_WELL}|(?:状态|过得)[^,。]{{0,4}}{_WELL}"
    r"|现在[^。]{0,8}(?:结婚了|有了(?:宝宝|孩子)|当(?:了)?(?:妈妈|爸爸)|(?:在做|是|当)[^。]{0,8}志愿者)"
    r"|是怎么(?:好起来|走出来|熬过来|挺过来)的|(?:熬|挺|走)过来了|(?:后来|慢慢|渐渐|终于)[^,。]{0,4}好起来了"
    r"|(?:很久|好久|好几年|几年|基本|再也|早就|很少)(?:没|不)(?:有)?(?:再)?(?:那种|这种|那样的|这样的)?(?:念头|想法|冲动)"
    # Glad to be alive: "庆幸那天被发现了", "还好她留下来了", "谢谢当年拉我一把的人".
    r"|(?:庆幸|幸好|还好)[^,。]{0,10}(?:被(?:救|发现|拉|劝)|留下来|活(?:下来|着)|没(?:死|走))"
    r"|谢谢[^。]{0,12}(?:留下来|活下来|拉我一把|救了我|救回)|(?:不怕了|放下了|释怀了)"
    r"|(?:现在|今年|如今)[^。]{0,12}(?:结婚|有了(?:自己的)?(?:小)?家|有家有|有了(?:宝宝|孩子))|"
    + _CLEAN_FOR
    + r"|(?<![a-z不])(?:doing (?:really |very |so |pretty |much )?(?:well|good|great|fine|okay|ok)"
    r"|clean (?:for|since)|(?:years?|months?) clean|(?:grateful|glad|happy) to ?(?:活|be here)"
    r"|(?:fully )?recovered|in a (?:good|better) place"
    r"|(?:these days|now) (?:im|i am|i feel) (?:\w+ )?(?:happy|good|great|fine|okay|ok|well)"
    r"|happily (?:married|settled)|(?:im|i am) (?:now )?(?:happy|thriving|healthy|stable)"
    r"|(?:im|i am) (?:\w+ )?(?:okay|ok|fine|well|better|good) now)(?![a-z])"
)
RELAPSE = re.compile(
    r"又|复发|(?<![救拉劝抢])回来了|下次|这一?次(?:我)?(?:一定|会|不会再|要)|再试|没忍住|忍不住|想再|破戒|最近|还是会|现在(?:还|也)?(?:会|常|总|想)|昨晚|昨天|前几天|这几天|这周|上周|刚才|刚刚|今晚"
    r"|(?<![a-z])(?:again|relaps\w*|lately|recently|last (?:night|week)|yesterday|tonight|but now)(?![a-z])"
)

# A negation after the risk, topic first: "自杀这种事我想都没想过", "轻生的念头从来没有过", "想死？不存在的".
# It must close the clause: "想死停不了", "自杀这种事我不会告诉别人" are no denial and fire.
_PRON = r"(?:我|我是|我也|我可|我现在|我真的|我从来)"
_ADV = r"(?:从来|绝对|根本|压根|一次也|一点也|完全)"
NEGATED_AFTER = re.compile(
    # The denial needs a topic ("这种事", "的念头"), the writer or an adverb before the negator: a bare
    # "…,以后不会了" closing a farewell ("这些年给你们添麻烦了，以后不会了") is no denial of it.
    rf"(?:(?:这种|这样的|这个|的)(?:事|事情|事儿|念头|想法|傻事|蠢事|话)?{_PRON}?{_ADV}?|{_PRON}{_ADV}?|{_ADV})"
    r"(?:都|也)?(?:想都)?(?:没有|没|不|从没|从未|从来没有|从来没)"
    r"(?:有|想|会|做|干|打算|考虑|动)?(?:过|的|了|啊|呢|吧|做|想)*(?=[,.!?;。~]|$)"
    r"|(?:吗|嘛)?[?](?:不存在的|怎么可能|没有的事|不会的|才不会|想多了|不至于)"
    # "要说不想活了，那绝对没有": the risk raised as a topic, then denied.
    r"|(?:了|的)?,那(?:倒|可|真|绝对|肯定|确实)?(?:是)?(?:没有|不会|谈不上)(?:的|过)?(?=[,.!?;。~]|$)"
    # Others' worry denied in the next clause ("爸妈总觉得我会想不开，我真的没有") ...
    r"|,我(?:真的|根本|完全|其实|并)?(?:没有|没|不会)(?:的|啊|呢|吧|啦)*(?=[,.!?;。~]|$)"
    # ... or a quoted word explained away ("我说「想消失」只是想一个人待几天，没有别的意思").
    r"|[」”\"](?:只是|其实只是|就是说|意思是|指的是|[^。]{0,24}没有别的意思)"
    # ... or words said in anger taken back ("我刚才说'不想活了'纯属气话").
    r"|(?:了|啦)?[」”\"'’]?,?(?:纯属|只是|就是|都是|是)(?:一时的)?(?:气话|随口(?:一)?说|说说而已)(?![吗嘛?])"
)

# A joke: an overstatement - a threat conditional on an everyday setback ("再挂科我就去跳河", "再让我看一集
# 这剧我就要跳楼了"), a degree complement ("作业多到我想跳楼", "绿得我想跳楼") or "想死的心都有了" - taken
# back as a joke within the next words ("哈哈哈", "😂", "(不是)", "开玩笑的", "还好我家住一楼"). Both are
# needed: a laugh alone can mask a real disclosure ("哈哈 我真的不想活了"), and "不是开玩笑" keeps the match.
JOKE_CONDITION = re.compile(
    r"(?:再|要是|如果|这次|下次)[^,.!?;:。]{0,10}(?:不过|挂|没考上|考砸|考不|输|迟到|抢不到|没中|不及格|掉分)[^,.!?;:。]{0,10}$"
    r"|(?:再|要是|如果)(?:让|叫|要|逼)我[^,.!?;:。]{1,16}?我?就?(?:要|得|会)?(?:去|直接)?$"
)
# A degree complement ("多到", "吵得"), not a verb that ends in 到 or 得 ("感到", "觉得": "我觉得想死,哈哈"
# is no overstatement).
OVERSTATED = re.compile(
    r"(?:(?<![感想看遇听做得达收找见受])到|(?<![觉记懂晓显值舍免获])得)(?:我|人)?(?:都|真的|直接)?(?:想|要)?(?:去)?$"
)
OVERSTATED_AFTER = re.compile(r"的心都有了|了都")
_JOKE_MARK = (
    r"哈哈|呵呵|嘿嘿|嘻嘻|233|😂|🤣|😆|😅|狗头|\(不是\)|开玩笑|开个玩笑|说着玩|逗你|住(?:在)?一楼"
    r"|(?<![a-z])(?:lol|lmao|jk|haha\w*|just kidding)(?![a-z])"
)
# Within the rest of the sentence and the start of the next: "想跳楼了都😂", "绿得我想跳楼,还好我家住一楼".
JOKE_LATER = re.compile(rf"[^.!?;。]*[.!?;。]?[^.!?;。]{{0,12}}?(?<!不是)(?<!不)(?:{_JOKE_MARK})")
_NOT_JOKING = re.compile(r"不是(?:在)?开玩笑|没(?:有)?开玩笑|认真的|(?<![a-z])not (?:joking|kidding)")
# English puts the condition after the threat: "gonna kms if this meeting runs over again lol".
JOKE_IF_AFTER = re.compile(r" ?(?:if|when) [^.!?;。]{0,40}?(?<![a-z])(?:lol|lmao|jk|haha)(?![a-z])")


def is_joke(text: str, end: int, prefix: str) -> bool:
    """An overstatement taken back as a joke (see above), and nothing in the message saying it is not one."""
    if _NOT_JOKING.search(text):
        return False
    if JOKE_IF_AFTER.match(text, end):
        return True
    overstated = (
        JOKE_CONDITION.search(prefix) or OVERSTATED.search(prefix) or OVERSTATED_AFTER.match(text, end)
    )
    return bool(overstated and JOKE_LATER.match(text, end))


# A means with its ordinary use in the same sentence: "买了两袋木炭,晚上在楼下院子里烤串", "绳子买好了,
# 明天去攀岩", a cut from shaving, old medicines for a return box. Sentence by sentence, not the whole post:
# a barbecue earlier in a long post does not explain pills or charcoal later in it, and "家里没有烤炉" is no
# barbecue. A cover story or a deliberate act is no use: "跟家里人说是烧烤用的", "老板问我是不是要烤肉,我说是",
# "切菜的时候故意划了一道".
ORDINARY_MEANS = (
    (
        re.compile(r"炭"),
        re.compile(r"烤串|撸串|肉串|涮肉|铜锅|炭炉|烧烤|烤肉|火锅|野餐|(?<!没有)(?<!没)烤炉"),
    ),
    (re.compile(r"绳"), re.compile(r"攀岩|登山|露营|帐篷|跳绳")),
    (
        re.compile(r"伤口|口子|刀口|划痕"),
        re.compile(r"刮胡子|剃须|切菜|切肉|切到手|拆快递|削(?:皮|水果|苹果)|摔(?:了|倒)"),
    ),
    (re.compile(r"药"), re.compile(r"过期药|药品回收|回收点|回收箱")),  # old medicines handed in
)
COVER_STORY = re.compile(r"说是|说要|我说|问我|借口|假装|骗|瞒|其实|故意|(?<![a-z])(?:told|said|pretend)")


def ordinary_means(match: str, sentence: str) -> bool:
    """The matched means has its ordinary use named in the same sentence (see ORDINARY_MEANS)."""
    if COVER_STORY.search(sentence):
        return False
    return any(means.search(match) and use.search(sentence) for means, use in ORDINARY_MEANS)


# Mourning: someone in the writer's life died by suicide, and the writer grieves ("今天是他生日，我点了两碗面",
# "到现在还会梦到他", "下周是他的追悼会"). The death is not a risk the writer can still act on; the
# writer's own words about themselves are checked on their own.
BEREAVEMENT = re.compile(
    r"忌日|追悼会|葬礼|告别式|头七|周年|墓|骨灰|遗像|去世|离世|过世|走了(以后|之后|这么久)|梦(到|见)(他|她|ta)"
    r"|走出来|过去(了)?[半一两三四五六七八九十几]+(年|个月)|没人再提|(他|她)(的)?生日|想念(他|她)|怀念"
)

# A report told as a story: a media frame opens the sentence and a stranger or character acts in it
# ("今天本地新闻说一名男子在大桥上想轻生，被民警拉了回来"); later clauses without "我" are still the report.
STORY_PERSON = re.compile(
    r"男子|女子|男孩|女孩|少年|少女|网友|主角|女主|男主|角色|凶手|死者|嫌疑人|一名|一位|明星|艺人"
)
