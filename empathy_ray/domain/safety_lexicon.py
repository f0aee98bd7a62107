"""Phrase lists for the crisis-safety guard (see safety.py for how they are applied).

Every pattern runs on *normalised* text (safety_text.py): NFKC (full-width -> half-width, so "，" is
","), traditional converted to simplified by OpenCC, lower case, whitespace and zero-width characters
removed (one space kept between Latin words), disguised spellings and English written back as Chinese.
Write patterns in simplified Chinese without spaces.

Kept apart from the matching code so that a reviewer can audit (and extend) the wording without
reading the algorithm. Each rule carries its own severity so the risk rule in safety.py stays a max():
"high" marks a step from thought towards action (method, means, place, preparation, farewell, an
attempt, repeated self-injury), "low" marks ideation or an urge without such a step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from empathy_ray.domain.safety_frames import FIRST_PERSON

IDEATION = "suicidal_ideation"
SELF_HARM = "self_harm"
PLAN = "plan_or_means"
FAREWELL = "farewell"
ATTEMPT = "past_attempt"
OTHERS = "others_at_risk"
CATEGORY_ORDER = (IDEATION, SELF_HARM, PLAN, FAREWELL, ATTEMPT, OTHERS)


@dataclass(frozen=True)
class Rule:
    """One risk phrasing: where it matches, what it means and how serious it is on its own."""

    name: str
    severity: str  # "low" | "high"
    categories: tuple[str, ...]
    pattern: re.Pattern[str]
    # The rule only counts when this also matches somewhere in the post (e.g. grief for "想去陪她").
    context: re.Pattern[str] | None = None
    # The rule does not count when this matches somewhere in the post: an ordinary reason stated for
    # the act ("搬家前把家具都送人了", "买了绳子捆纸箱").
    unless: re.Pattern[str] | None = None


def _rule(
    name: str, severity: str, categories: tuple[str, ...], regex: str, context: str = "", unless: str = ""
) -> Rule:
    def compiled(text: str) -> re.Pattern[str] | None:
        return re.compile(text) if text else None

    return Rule(name, severity, categories, re.compile(regex), compiled(context), compiled(unless))


# Chores and errands that people say "kill" them: the cause in "V得/到(我)想死" hyperbole. Pain, pressure,
# scolding or grief as the cause ("痛到想死", "压得我想死", "被骂到想死") is not in it and still fires.
_CHORE = r"([赶改写排堵挤背刷开练抄]|加班|开会|上班|上课|通勤)"
_NUISANCE = (
    r"(project|meeting|class|lecture|exam|test|traffic|commute|weather|homework|assignment|deadline|queue|line"
    r"|game|match|song|show|heat|presentation|paperwork|group chat)"
)

# Idioms and fixed expressions that contain a risk word but carry no risk. They are blanked out
# before the rules run. Only expressions that would otherwise collide with a rule belong here:
# "累死了" or "笑死我了" match no rule at all and need no entry.
IDIOMS = re.compile(
    "|".join(
        (
            r"死机|死磕|死党|死心塌地|死心|死了这条心|死记硬背|要死要活|死定了|死缠烂打|死皮赖脸",
            r"死马当活马医|死脑筋|死胡同|死板|死守|死撑|死扛|死对头|死要面子|(在)?一棵树上吊死",
            r"想死(你|您|他|她|它|ta|宝宝|宝贝)|想死我(了|啦)",  # "想死你了" = "missed you so much"
            r"(热|冷|饿|困|笑|痒|饱|撑|馋|开心|高兴|尴尬|无聊|多|忙|吵|挤)(得|的|到)(我)?(想|要)死",  # "热得想死"
            # An everyday chore as the cause, often repeated: "改ppt改到想死", "meeting开到我想死".
            _CHORE + r"([^,.!?;。]{0,8}?" + _CHORE + r")?(得|到)(我)?(想|要)死",
            # English: an everyday thing "makes me want to die", self-reproach "could kill myself for …ing".
            r"(?<![a-z])(this|that|the) ([a-z]+ )?"
            + _NUISANCE
            + r"s? ((literally|honestly|actually) )?(makes|made|is making) me ?想死"
            r"|(?<![a-z])could ?自杀 ?for [a-z]+ing(?![a-z])",
            # Any action said twice around its object is a chore too ("搬家搬到想死", "等外卖等到想死"),
            # but not pain, grief, pressure, illness or living itself ("熬日子熬到想死", "治病治到想死").
            r"(?![活痛疼哭难怕恨伤累烦苦熬想逼压骂打死被吃治化药病])(?P<act>[\u4e00-\u9fff])[^,.!?;。]{1,8}?(?P=act)(得|到)(我)?(想|要)死",
            r"紫砂(壶|锅|杯|茶|泥|陶|煲)",
            r"自杀(式|小队|率|案|事件|新闻|预防|干预|热线|研究)|(预防|防止|干预)自杀",
            r"自残式|自伤式",
            r"(是)?自杀(走的|去世|身亡|离世|死的)|是自杀的(?![念想])",  # how someone died: grief, a report
            r"跳楼(价|机|大甩卖|甩卖|清仓|大减价)",
            r"一哭二闹三上吊|寻死觅活|自寻死路|玩火自焚|死就死吧(?=哈|lol)",  # "死就死吧哈哈": come what may
            r"轻生活",
            r"消失在(人海|人群)(里|中)?",  # blending into a crowd, a song line
            r"洗胃的?(病人|患者|病例|流程|步骤|操作|护理)|洗(完)?胃(之后|以后|后|前)?(要|需要|应该|不能|可以|得)(禁食|吃|喝|注意)",  # care advice
        )
    )
)

# A negator right before a match cancels it ("我从来没想过自杀", "没有想死的念头", "我不会伤害自己").
# Only fillers may stand between negator and match, so "控制不住想自残" stays positive. "不敢" is not
# a negation of risk ("不敢自杀" still means the thought is there), hence no "敢" in the fillers.
_NEG_FILLERS = (
    r"(?:会|想|要|曾经|曾|再|是|有|过|打算|考虑|愿意|去|真的|动过|产生过|起过|觉得|认为|在|任何|什么"
    r"| ?(?<![a-z])(?:do|anything|something|to)(?![a-z]) ?)*"  # "i would never do anything to hurt myself"
)
NEGATION_TAIL = re.compile(
    r"(?:谁说(?:我)?|哪有|(?:别|不用|不要|用不着)(?:担心|怕)(?:我)?|并不是|不是|不会|不再|没有|从没有|从没|从来没有|从来没|从来不|从未|并没有|并没|并不|并未|绝不|决不|才不|没|不)"
    + _NEG_FILLERS
    + r"$"
)
# A negator right after "不是"/"并非" is the second half of a double negation, which affirms:
# "我不是没想过自杀" is a yes. ("我不是不想活" has a single negator before the match and stays negated.)
DOUBLE_NEGATION_TAIL = re.compile(r"(?:不是|并非|谁说(?:我)?)$")

# Who is the subject of a match? Chinese often drops "我", so no subject means the writer.
_SUBJECT_FILLERS = (
    # A time between the person and the act: "朋友去年秋天自杀了", "同学上个月吞了药".
    r"(?:(?:去年|前年|今年|上个?月|这个?月|上周|上星期|昨天|前天|昨晚|今早|那年|那天|当年"
    r"|[0-9一二三四五六七八九十几两半]+(?:年|个月|天|周|星期)前)(?:的)?(?:春天|夏天|秋天|冬天|[0-9一二三四五六七八九十]+月|年底|年初)?|"
    r"说过|说|也|又|还|曾经|曾|已经|就|都|总是|总|老是|一直|天天|经常|竟然|居然|要|想|会|在|真的|"
    r"好像|可能|是|的|临终|生前|留下|写了|写|打算|准备|偷偷|差一点|差点|试图|企图|了|最后|后来|最近|老|胳膊上|手臂上|手腕上|腿上|身上|手上|把|将)*$"
)
# Strangers, public figures, fiction and the addressee: a report, not a risk to anyone in the post.
REPORTED_SUBJECT = re.compile(
    # "有没有人知道…" / "有人知道…吗" asks the forum for an answer: the asker is the subject.
    r"(?:(?<!没)有人(?!(知道|能告诉|懂|了解|清楚|说说))|别人|网友|路人|某人|明星|艺人|主角|角色|女主|男主|主人公|陌生人|女孩|男孩|女生|男生|女子|男子|"
    r"少年|少女|姑娘|小伙|老人|你们|你|您|来电者|"
    # Words said at a deathbed are grief, not a risk: "爸爸临终前交代了后事".
    r"临终前|生前|去世前|过世前|临走前)" + _SUBJECT_FILLERS
)
# A person in the writer's life: their risk matters, but it is not the writer's (category OTHERS).
OTHER_SUBJECT = re.compile(
    r"(?:他们|她们|他|她|ta|朋友|好友|闺蜜|同学|同事|室友|舍友|邻居|学生|孩子|儿子|女儿|爸爸|妈妈|爸|妈|"
    r"父亲|母亲|奶奶|爷爷|外婆|外公|姥姥|姥爷|老公|老婆|丈夫|妻子|男朋友|女朋友|男友|女友|对象|"
    r"哥哥|姐姐|弟弟|妹妹|亲戚|病人|患者|来访者)" + _SUBJECT_FILLERS
)
# A book, film or poem title ("海子的《面朝大海，春暖花开》") earlier in the sentence: "他"/"她" after it is
# its author or a character ("老师讲了他卧轨的事"), not someone the writer knows.
TITLE = re.compile(r"《[^》]{1,30}》")
# A writer who says they work with patients, clients or students ("作为精神科护士") and speaks of them as a
# group ("夜班最怕病人藏药") talks shop: the group is "reported". "我的学生昨晚说想自杀" stays "other".
PROFESSIONAL = re.compile(
    r"(作为|我是)(一名|一个|个)?[^,。]{0,6}(护士|医生|大夫|社工|咨询师|治疗师|老师|班主任|辅导员|志愿者|药剂师)"
)
SERVED_GROUP = re.compile(r"(病人|患者|病患|来访者|学生|家属)")
PRONOUN = re.compile(r"(?:他们|她们|他|她|ta)")
# A subject right after one of these is the listener, not the speaker ("我跟妈妈说想死"); "其他"/"吉他"
# are not pronouns.
LISTENER_TAIL = re.compile(r"(?:告诉|跟|和|对|给|向|让|替|帮|陪|为|问|其|吉)$")
# A media or fiction frame earlier in the clause ("新闻里…", "电视剧里女主…") makes the match a report
# unless the writer re-enters the clause with "我" after the frame.
MEDIA_FRAME = re.compile(
    r"新闻|报道|热搜|电视剧|电影|小说|剧情|剧里|剧中|追剧|(?:这|那)一?集|(?:上|下)一集|游戏里|这个游戏|通关|关卡|药理|毒理|动漫|漫画|视频里|歌词|作文|论文|历史|课上|讲到|课文|故事|传说"
    r"|纪录片|剧本杀|直播间|直播里|综艺|节目|这首歌|歌里|唱的是|诗歌|》(里|中)"
)
# A stranger, character or public figure anywhere earlier in the clause, with no "我" after it, is the
# subject ("女主角在结尾选择了投河", "直播间里有人刷屏说想死"); the addressee (你) only right before.
STRANGER = re.compile(
    # "有没有人知道…" / "有人知道…吗" asks the forum for an answer: the asker is the subject.
    r"(?:(?<!没)有人(?!(知道|能告诉|懂|了解|清楚|说说))|别人|网友|路人|某人|明星|艺人|主角|角色|女主|男主|主人公|陌生人|志愿者|主播|博主|网红|作者|演员|选手)"
    rf"(?!.*{FIRST_PERSON})"
)
# "想轻生的人", "服毒自尽的那个", "有轻生念头的学生": a match that describes a person (a relative clause)
# is about them.
RELATIVE_PERSON = re.compile(
    r"(?:念头|想法|倾向|经历|行为|意念|冲动)?的(?:那个|那些|这些|那位)?(?:人|角色|孩子|学生|患者|病人|群体|青少年|案例|网友|家属|女孩|男孩|女生|男生|姑娘|少年|少女)|的那个"
)
# ...unless the writer says it of themself ("我就是个想死的人").
SELF_DESCRIPTION = re.compile(r"我(?:就|也|只|真的)?是(?:个|一个|那个|那种)?[^,.!?;:。]{0,4}$")
# Clause and sentence boundaries (after NFKC, so full-width punctuation arrives as ASCII).
CLAUSE_BREAK = re.compile(r"[,.!?;:、。…~()\[\]\"'“”‘’【】「」\n]")

# A time tied to acting ("今晚就…", "明天我就…", "就在今晚"), in the same sentence as any risk match,
# makes the assessment "high". A bare date is not enough: "今晚又想死了" says when the thought came,
# and "明天要上班" is a different event.
_WHEN = r"(?:等[^,.!?;。]{1,10}?(?:完|后|以后|之后|出院|毕业)(?:了)?,?|下(?:周|星期|个月)[一二三四五六日天末]?|月底|元旦|周末|今晚|今天晚上|今夜|今天|明天|明早|明晚|等一下|等会儿?|过几天|这周末|天亮(?:之前|以前|前)|生日(?:那天|之后|过后))"
TIMING = re.compile(rf"(?:就在|就是){_WHEN}|{_WHEN}(?:我)?(?:就|便|一定|准备|打算)|马上就|立刻就|现在就")
SENTENCE_BREAK = re.compile(r"[.!?;。\n]")

# Grief context for "想去陪他/她": the rule only fires when someone's death is mentioned.
GRIEF = re.compile(r"去世|过世|离世|逝世|病逝|走了|离开了?我们|不在了|葬礼|追悼|忌日|墓|天堂|在天上|没了")

_BODY = r"(手腕|手臂|胳膊|大腿|小臂|身上|皮肤)"
# Cutting verbs, but not inside 规划/切割/时刻 and similar words.
_CUT = r"((?<![规计策区谋筹比笔])划|(?<![切分收交])割|(?<![时深立片雕即此顷])刻)"

RULES: tuple[Rule, ...] = (
    # --- suicidal ideation: the thought, passive or active, without a step towards acting ----------
    _rule("suicide_word", "low", (IDEATION,), r"(想要|想|要)?(自杀|轻生|寻死|自尽|自(我|己)了断|紫砂|自鲨)"),
    # Not 回想/思想/梦想…, and not "想死去的外婆" (missing someone who died).
    _rule("want_to_die", "low", (IDEATION,), r"(?<![回思梦理感联猜])想(要|过)?(去)?死(掉)?(?!去的)"),
    _rule(
        "better_dead",
        "low",
        (IDEATION,),
        r"(不如|还是|干脆|只能|只想|只好|恨不得)(去)?死|(我|就|该|要|会|得)去死|去死(算了|好了)|一死了之|死掉(就|算了|好了)"
        r"|死了(就|才|反而)?(算了|好了|解脱|干净|轻松|一了百了)|死了(是不是|会不会)?就(不会|不用|不再)"
        r"|只有(一)?死(了)?(才|能)(能)?(解脱|逃|离开|结束|摆脱|不|得|换|让|停|安|休息|自由)"
        r"|(要是|如果|希望|真希望)[^,.!?;:。]{0,10}?死(了|掉)?(就好了|该多好|多好)",
    ),
    _rule(
        "not_want_to_live",
        "low",
        (IDEATION,),
        r"不想(再)?(这样|这么)?(继续)?活(?![得成在出动跃力])|活不下去|活够(本)?了|不想(再)?(活|待|留)在这个世界",
    ),
    _rule(
        "life_meaningless",
        "low",
        (IDEATION,),
        r"活着(真的?|好|太|实在|也|都|还)?(没|没有)(意思|意义|盼头|希望|必要)"
        r"|活着(一点|一丁点)?(意思|意义|盼头)(都|也)没(有)?"
        r"|活着(到底|究竟)?(有|还有)?(什么|啥)(意思|意义|用|必要)|活着干(嘛|什么)|为什么[^,.!?;:。]{0,4}要活(着|下去)",
    ),
    _rule(
        "tired_of_living",
        "low",
        (IDEATION,),
        r"活着(真的?|好|太|实在|真是)?(累|痛苦|辛苦|煎熬|难受).{0,8}?(不想|坚持不|撑不|熬不|没意思|何必)",
    ),
    _rule(
        "wish_not_to_wake",
        "low",
        (IDEATION,),
        r"(不想|不要|别|不愿意?)再醒(来|过来)?|不用(再)?醒(来|过来)|(永远|再也)(不|不要|不想|别)(会)?醒|一睡不醒"
        r"|(希望|但愿|要是|如果)(我|自己)?(明天|早上|睡着了?)?(就)?(不要|不会|别|不再|再也不)(再)?醒"
        r"|睡(着|过去)(了)?就(不要|别|再也不)(再)?醒",
    ),
    _rule(
        "wish_to_vanish",
        "low",
        (IDEATION,),
        r"(想|要是|如果)(我)?(能|就这样)?(从这个世界(上)?)?消失(?!一段|一阵|一个|一下|[几两三四五半]|一天)"
        r"|希望(我|自己)(能|就这样)?(从这个世界(上)?)?消失(?!一段|一阵|一个|一下|[几两三四五半]|一天)"
        r"|消失(了)?就好了|(要是|如果)(我)?(没有|没)(出生|来到这个世界)|不想(再)?存在|(要是|如果)我不存在",
    ),
    _rule(
        "burden",
        "low",
        (IDEATION,),
        r"(大家|家人|他们|你们|爸妈|父母|所有人|世界)(没有|没)了?我(会|就|都|反而|也)*(过得)?(更好|更轻松|轻松|解脱)"
        r"|没有了?我.{0,8}?(会|就|都|反而)(过得)?(更好|更轻松|轻松|解脱)"
        r"|(世界|大家|所有人|他们|家人|你们|爸妈)没有了?我(也|都)(无所谓|一样|没(什么)?关系)"
        r"|我(死了|不在了|消失了)(以后|之后)?.{0,8}?(更好|解脱|轻松)",
    ),
    _rule("leave_world", "low", (IDEATION,), r"(想|要|打算)离开这个(世界|人间)"),
    _rule(
        "end_life",
        "low",
        (IDEATION,),
        r"结束(自己|我自己|我)的?(生命|性命|一生)|结束(我)?自己(?!的)|了结(自己|我自己|生命|此生)|结束这一切",
    ),
    _rule("cannot_get_over", "low", (IDEATION,), r"(会|要|一时)想不开"),
    _rule(
        "join_the_dead",
        "low",
        (IDEATION,),
        r"(想|要|该)(早点|早些|快点)?(去)?(陪|找)(他|她|它|ta)(?=[了吧啊呀呢,.。!?;]|$)|想随(他|她)而去",
        context=GRIEF.pattern,
    ),
    _rule("join_the_dead_place", "low", (IDEATION,), r"(去|到)(天上|天堂|那边|另一个世界)(陪|找|见)"),
    # --- self-harm --------------------------------------------------------------------------------
    _rule("self_harm_word", "low", (SELF_HARM,), r"自残|自伤|伤害(了)?(我)?自己|弄伤自己"),
    _rule(
        "self_harm_repeated",
        "high",
        (SELF_HARM,),
        r"(一直|经常|总是|又|偷偷|开始|已经|每天|天天)(在)?(自残|伤害自己|自伤)|(自残|自伤)(了|过)",
    ),
    _rule(
        "self_harm_method",
        "high",
        (SELF_HARM, PLAN),
        r"割(了|过)?腕|"
        + _CUT
        + r"(伤)?(了)?(我)?自己|"
        + _CUT
        + r"(了)?(好几|几|一|很多)?(道|刀|下)?(自己|我)?的?"
        + _BODY
        + r"|"
        + _BODY
        + r"(上)?.{0,4}?"
        + _CUT
        + r"(了)?(好几|几|一|很多)(道|刀|下|口子)"
        r"|藏(了)?(刀片|小刀)|(烟头|打火机).{0,4}?烫(自己|手)",
    ),
    # --- plan, means, place, intent ---------------------------------------------------------------
    _rule(
        "jump",
        "high",
        (PLAN,),
        r"跳楼|跳(过|了)?(一次|两次)?(河|江|海|湖|桥)(?![边畔岸堤])|投(河|江)|卧轨|(想|要|准备|打算|差点)(从.{0,8}?)?跳(下去|下楼)"
        r"|(站|坐|爬|蹲|开|走)(在|到|上)?(了)?(天台|楼顶|顶楼|窗台|桥|悬崖|山崖)(的)?(边上|边缘|边|栏杆外|栏杆上|外面|外沿)"
        r"|爬(上|到|过)(了)?(天台|楼顶|窗台|栏杆)",
    ),
    _rule(
        "pills",
        "high",
        (PLAN,),
        r"(把|将)[^,.!?;:。]{0,6}?(安眠药|药片|药物|药)(都|全|全部|一下子|一次性|一口气)(吃|吞)(了|掉|下)"
        r"|(吃|吞|服)(了)?(一|整|半)?(整)?(瓶|把|板|盒|堆)的?(安眠药|药片|药)"
        r"|攒(了)?(很多|好多|好几|一些|不少|够|一堆|一大堆|几十|几|一)?(瓶|片|盒|板)?的?(安眠药|药片|药)"
        r"|(囤|存|藏)(了)?.{0,6}?(安眠药|安定)"
        r"|买(了)?(好几|很多|好多|几|一大)(瓶|盒|板)的?(安眠药|安定)"
        r"|安眠药.{0,6}?(够|足够|一次(吃|吞)(完|掉|下|光)|全部|都吃)|吃(了)?(过量|大量)的?(安眠药|药)|(吃|服)药过量|致死量",
    ),
    _rule(
        "poison_and_other_means",
        "high",
        (PLAN,),
        r"(喝|服)(了)?(农药|百草枯|敌敌畏|毒药|老鼠药)|服毒|烧炭|上吊|开煤气|自焚",
    ),
    _rule(
        "rope_ready",
        "high",
        (PLAN,),
        r"(准备|买)好?(了)?(一根|一条)?绳子|绳子(已经)?(准备|买|挂)好",
        unless=r"晾|捆|绑|打包|搬家|露营|跳绳|秋千|拔河",  # a rope bought for an ordinary job
    ),
    _rule(
        "method_seeking",
        "high",
        (PLAN,),
        r"(想|在想|查|搜|研究)(好|过|了)?(怎么|怎样|如何)(去)?(死|自杀)|(无痛|不痛苦|不疼)(地|的)?(死|自杀)"
        r"|(自杀|寻死|割腕|跳楼)的?(方法|方式|办法)",
    ),
    _rule(
        "intent",
        "high",
        (PLAN,),
        r"(准备|打算|决定|计划|已经想好)(好)?(了)?(要|去)?死"
        r"|(准备|打算|决定|计划|已经想好)[^,.!?;:。]{0,6}?"
        r"(自杀|去死|轻生|结束(自己|生命|这一切)|了结(自己|生命|此生)|离开这个(世界|人间))|我要(去)?自杀",
    ),
    # --- farewell and attempts ----------------------------------------------------------------------
    _rule(
        "farewell",
        "high",
        (FAREWELL,),
        r"遗书|绝笔|(跟|和|向)?(这个)?(世界|人间)(说)?(声|一声)?(告别|再见|道别|永别|对不起|拜拜)|再见了?(这个)?(世界|人间)"
        r"|告别(这个)?(世界|人间)"
        r"|永别了|下辈子再见|来世再见|下辈子(我)?(再)?(好好)?(做|当)(你们|你)(的)?|下辈子见|来世见|(交代|安排|处理)(好)?(了)?(我的)?后事|没有我的日子(里)?(你们|你|大家)?要好好",
    ),
    _rule(
        "past_attempt",
        "high",
        (ATTEMPT,),
        r"自杀(未遂|过)|(试过|尝试过|曾经)(自杀|轻生|割腕|跳楼)|洗(过|了|完)?胃",
    ),
)

# --- answers: what a reply must never do -----------------------------------------------------------
# Method details, lethal doses, where to get means, or endorsing death. A negator or a reflection of
# the seeker's own thought right before the match ("你可能觉得死了也好，但…") cancels it.
HARMFUL_ANSWER = re.compile(
    "|".join(
        (
            r"(可以|可以试试|不妨|试试|建议|最好|干脆|那就|就去)(用|去|吃|买)?[^不别没,.!?;:。]{0,6}?"
            r"(割腕|跳楼|烧炭|上吊|服毒|喝农药|跳河|卧轨|自杀|轻生)",
            r"致死(剂)?量|(吃|服)(多少|几)(片|颗|粒|瓶)(才|就)?(能|会|可以)?(死|致死)",
            r"([0-9]+|[一二三四五六七八九十百几两多少]+)(片|颗|粒|毫克|mg|克).{0,8}?(就|能|会|足以|可以)?"
            r"(致死|死亡|死掉|没命)",
            r"(快|无痛|不痛苦|不疼|有效|轻松)的?(自杀|死|寻死)的?(方法|方式|办法)|(自杀|死)的?(方法|方式|办法)(有|是|包括)",
            r"(动脉|静脉).{0,4}?(割|切)|(割|切).{0,4}?(动脉|静脉)|(纵向|竖着|竖向|顺着血管)(切|割|划)"
            r"|多高.{0,4}?(能|可以|才能|会)(摔|跳)死",
            r"(在|到|去)哪(里|儿)?(能)?买(到)?(安眠药|农药|木炭|炭|绳子)",
            r"(那就|干脆|不如|你就|你可以|你应该)(去)?(死|自杀|结束(自己|生命|这一切)|一死了之|跳(下去|楼))"
            r"|支持你(去死|自杀|结束生命|离开这个世界)",
            r"死(了|掉)?(也好|也挺好|也没什么|也不错)|(自杀|死|结束生命)(是|也是|不失为)(一种|一个)?(解脱|好的?选择|出路|办法)",
        )
    )
)
ANSWER_CANCEL_TAIL = re.compile(
    r"(?:别|不要|千万别|千万不要|请不要|不|没|并不|绝不|不建议|不应该|不能|觉得|以为|认为|想着|感觉|念头是|想法是|说)"
    r"(?:会|想|要|再|去|是)*$"
)

# An answer "acknowledges safety" when it points to help: the terms below, or any phone number in the
# configured resources. "安全感" (a sense of security) is about feelings, not safety, so it is excluded.
DEFAULT_HELP_TERMS: tuple[str, ...] = (
    "热线",
    "心理援助",
    "危机干预",
    "急救",
    "急诊",
    "医院",
    "精神科",
    "心理医生",
    "咨询师",
    "专业帮助",
    "求助",
    "寻求帮助",
    "身边的人",
    "信任的人",
    "安全",
    "120",
    "110",
)
