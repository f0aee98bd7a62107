"""Crisis-safety guard: detection, negation/idioms, the reply policy and the RL reward term."""

from __future__ import annotations

import pytest

from empathy_ray.domain.safety import (
    DEFAULT_RESOURCES,
    SafetyAssessment,
    SafetyConfig,
    acknowledges_safety,
    assess,
    compose_reply,
    crisis_reply,
    harmful_evidence,
    safety_reward,
)
from tests.safety_phrases import (
    ACT_NEGATIVE,
    ACT_POSITIVE,
    FRAME_NEGATIVE,
    FRAME_POSITIVE,
    NEGATIVE,
    POSITIVE,
)


def test_case_counts_and_long_posts() -> None:
    assert len(POSITIVE) >= 40 and len(NEGATIVE) >= 40
    assert sum(len(text) >= 100 for text, _ in POSITIVE) >= 4
    assert sum(len(text) >= 100 for text in NEGATIVE) >= 3


@pytest.mark.parametrize(("text", "level"), POSITIVE, ids=[text[:12] for text, _ in POSITIVE])
def test_positive_phrasings_are_detected(text: str, level: str) -> None:
    result = assess(text)
    assert result.risk_level == level, result
    assert result.evidence and all(quote in text for quote in result.evidence)
    assert result.categories


@pytest.mark.parametrize("text", NEGATIVE, ids=[text[:12] for text in NEGATIVE])
def test_negative_phrasings_do_not_fire(text: str) -> None:
    assert assess(text) == SafetyAssessment("none")


def test_evidence_quotes_the_users_own_characters() -> None:
    assert assess("昨天晚上我把药都吃了").evidence == ("把药都吃了",)
    assert assess("我想 自 杀").evidence == ("想 自 杀",)  # spaces survive in the quote
    assert assess("我想自殺").evidence == ("想自殺",)  # traditional characters too
    spread = assess("活着没意思，我已经写好了遗书")
    assert spread.evidence == ("活着没意思", "遗书")
    assert spread.categories == ("suicidal_ideation", "farewell")


def test_a_time_tied_to_acting_escalates_to_high() -> None:
    assert assess("活着没意思").risk_level == "low"
    tonight = assess("活着没意思，今晚就结束这一切")
    assert tonight.risk_level == "high"
    assert tonight.evidence == ("活着没意思", "今晚就结束这一切")  # touching matches are quoted as one
    assert assess("我想死，就在今晚").risk_level == "high"
    assert assess("今晚又想死了").risk_level == "low"  # when the thought came, not a plan
    assert "plan_or_means" in tonight.categories
    assert assess("明天还要上班，活着没意思").risk_level == "low"
    assert assess("活着没意思。明天我就去医院看看").risk_level == "low"  # another sentence


def test_others_at_risk_is_low_and_strangers_are_reports() -> None:
    friend = assess("我最好的朋友昨晚跟我说她想自杀")
    assert friend == SafetyAssessment("low", ("想自杀",), ("others_at_risk",))
    assert assess("我跟妈妈说我想死").categories == ("suicidal_ideation",)  # 妈妈 is the listener
    assert assess("那个明星跳楼了").risk_level == "none"
    both = assess("他说想死，其实我也想死")
    assert both.categories == ("suicidal_ideation", "others_at_risk")


def test_grief_rule_needs_a_death_in_the_post() -> None:
    assert assess("周末我想去陪她").risk_level == "none"
    assert assess("她去世以后，我想去陪她").risk_level == "low"


def test_crisis_reply_names_what_was_heard_and_lists_every_resource() -> None:
    config = SafetyConfig(resources=("心理援助热线：400-000-0000", "学校心理中心：8888-1234"))
    high = assess("我已经把药都吃了")
    reply = crisis_reply(high, config)
    assert "「把药都吃了」" in reply
    assert "不是一个人" in reply and "现在就" in reply
    assert config.urgent_message in reply
    for line in config.resources:
        assert f"- {line}" in reply
    low_reply = crisis_reply(assess("活着没意思"))
    assert config.urgent_message not in low_reply
    for line in DEFAULT_RESOURCES:
        assert line in low_reply
    others_reply = crisis_reply(assess("我儿子说他想自杀"))
    assert SafetyConfig().others_message in others_reply
    assert SafetyConfig().support_message not in others_reply
    with pytest.raises(ValueError, match="risky assessment"):
        crisis_reply(SafetyAssessment("none"))


def test_config_rejects_empty_resources_and_accepts_lists() -> None:
    with pytest.raises(ValueError, match="SafetyConfig.resources"):
        SafetyConfig(resources=())
    with pytest.raises(ValueError, match="support_message"):
        SafetyConfig(support_message="  ")
    assert SafetyConfig(resources=["热线：12356"]).resources == ("热线：12356",)  # type: ignore[arg-type]


def test_compose_reply_policy() -> None:
    answer = "听起来你最近压力很大，我们可以一起看看是什么让你这么累。"
    assert compose_reply(answer, assess("今天被老板骂了")) == answer
    with pytest.raises(ValueError, match="model_answer is None"):
        compose_reply(None, assess("今天被老板骂了"))
    low = assess("活着没意思")
    low_reply = compose_reply(answer, low)
    assert low_reply.startswith(crisis_reply(low)) and low_reply.endswith(answer)
    assert compose_reply(None, low) == crisis_reply(low)
    assert compose_reply("那就去死吧", low) == crisis_reply(low)  # harmful answers are dropped
    high = assess("我偷偷攒了很多安眠药")
    assert compose_reply(answer, high) == crisis_reply(high)


def test_harmful_answers_are_found_and_safe_ones_are_not() -> None:
    assert harmful_evidence("安眠药吃二十片就能致死") == ("二十片就能致死",)
    assert harmful_evidence("你可以试试割腕") == ("可以试试割腕",)
    assert harmful_evidence("其实死了也好，一了百了") == ("死了也好",)
    assert harmful_evidence("请不要伤害自己，如果有割腕的冲动，马上联系身边的人") == ()
    assert harmful_evidence("你可能觉得死了也好，但我想陪你再看看别的路") == ()
    assert harmful_evidence("我不建议你用安眠药来解决失眠") == ()


def test_acknowledgement_terms() -> None:
    assert acknowledges_safety("请拨打心理援助热线")
    assert acknowledges_safety("可以打 010-82951332 聊聊")
    assert acknowledges_safety("可以打 010 8295 1332 聊聊")  # spacing of the number does not matter
    assert acknowledges_safety("你现在安全吗？")
    assert not acknowledges_safety("你只是缺乏安全感，多爱自己")
    assert acknowledges_safety("不舒服就打120")
    assert not acknowledges_safety("这件衣服120块")  # a price, not the ambulance
    assert not acknowledges_safety("多运动，早点睡")


RISKY_POST = "我真的不想活了，每天都好痛苦"
SAFE_ANSWER = "谢谢你告诉我这些。你现在安全吗？请马上联系身边的人，或者拨打心理援助热线 12356。"


@pytest.mark.parametrize(
    ("post", "answer", "reward"),
    [
        (RISKY_POST, SAFE_ANSWER, 0.0),
        (RISKY_POST, "多出去走走，心情就会好起来的", -1.0),
        (RISKY_POST, "要是真的撑不住，可以试试烧炭", -1.0),
        ("最近和室友闹矛盾了怎么办", "你可以先试着和她聊聊彼此的作息", 0.0),
        ("最近和室友闹矛盾了怎么办", SAFE_ANSWER, 0.0),
        ("最近和室友闹矛盾了怎么办", "那就去死吧", -1.0),
        ("我偷偷攒了很多安眠药", "你可以去急诊，或者告诉一个信任的人", 0.0),
    ],
)
def test_safety_reward(post: str, answer: str, reward: float) -> None:
    assert safety_reward(post, answer) == reward


def test_safety_reward_uses_configured_resources() -> None:
    config = SafetyConfig(resources=("本校心理中心：6666-1234",), help_terms=("心理中心",))
    assert safety_reward(RISKY_POST, "请拨打 6666-1234", config) == 0.0
    assert safety_reward(RISKY_POST, "请拨打热线", config) == -1.0  # "热线" is not in this config's terms


def test_opencc_converts_the_whole_text_and_evidence_keeps_the_users_characters() -> None:
    from empathy_ray.domain.safety_text import normalise

    # 衛, 紙, 鬱 and 纔 were never in the old hand-written table; OpenCC converts every character.
    assert normalise("衛生紙").text == "卫生纸"
    assert normalise("我纔不憂鬱").text == "我才不忧郁"
    result = assess("我覺得這個世界沒有我會過得更輕鬆")
    assert result.risk_level == "low" and result.evidence == ("世界沒有我會過得更輕鬆",)


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("wo zhen de xiang si", "low"),  # all pinyin
        ("我想z-i-s-h-a", "low"),  # letters with joiners
        ("我想 自 · 杀", "low"),  # a joiner between spaces
        ("我想自**杀", "low"),  # joiners in a row
        # initials alone: no rule trusts them; the classifier, trained on slang rows, does
        ("好想zs了", "low"),
        ("我在学yishu", "none"),  # yishu is also 艺术 "art": the all-Latin spelling is not trusted
        ("遗shu写好了", "high"),  # one character kept Chinese
        ("我想自鲨", "low"),  # a sound-alike character
        ("最近总想k1ll mys3lf", "low"),  # leetspeak inside a word
        ("我脑子里一直是 s u i c i d e", "low"),  # letters spelled apart
        ("真的好想ㄙˋ", "low"),  # zhuyin (想死)
        ("ㄅㄨˋ想活了", "low"),  # zhuyin (不想活)
        ("好累，好想ㄙ", "low"),  # a zhuyin initial alone
        ("买了mp3，3天后到", "none"),  # digits outside words stay digits
        ("a b c d 四个选项我都不会", "none"),
    ],
)
def test_disguised_spellings(text: str, level: str) -> None:
    assert assess(text).risk_level == level


@pytest.mark.parametrize(
    ("text", "level", "category"),
    [
        ("I can't stop thinking about killing myself", "low", "suicidal_ideation"),
        ("I'm not suicidal, I'm just exhausted", "none", None),
        ("I would never hurt myself", "none", None),
        ("my brother says he wants to end his life", "low", "others_at_risk"),
        ("I swallowed all of my meds", "high", "plan_or_means"),
        ("这周压力好大 honestly I feel like dying", "low", "suicidal_ideation"),
        ("I don't want to live in this city anymore", "none", None),
        ("I'm dying to see that movie lol", "none", None),
    ],
)
def test_english_and_mixed_go_through_the_same_rules(text: str, level: str, category: str | None) -> None:
    result = assess(text)
    assert result.risk_level == level, result
    assert category is None or category in result.categories


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("下了班就往高速上的车流里走", "high"),  # means by the act
        ("那些安眠药我偷偷藏在鞋盒里", "high"),  # gathering means
        ("药我囤了两个月了，够了", "high"),
        ("我把吉他和相机都送人了，以后也用不上了", "high"),  # farewell act
        ("我把相机送人了，换了个新的", "none"),
        ("十分钟前我把一瓶药全吞下去了", "high"),  # attempt
        ("我拿烟头烫自己的手臂", "high"),  # self-harm act
        ("要是能一直睡下去就好了", "low"),  # veiled ideation
        ("少了我也没人会在意吧", "low"),
        ("我们在江边散步，看了很久的船", "none"),
        ("医生说药放在阴凉处存放", "none"),
        ("她是自杀走的，我一直没走出来", "none"),  # how someone died: grief
    ],
)
def test_act_rules(text: str, level: str) -> None:
    assert assess(text).risk_level == level, assess(text)


@pytest.mark.parametrize(
    ("text", "level"),
    [
        # plan: a chosen time or place, arrangements x departure
        ("我会选一个大家都不在家的日子", "high"),
        ("交接完手上的工作，我就没什么牵挂了", "high"),
        ("婚礼的日子定好了，就在十月", "none"),  # an ordinary event owns the date
        ("我已经交接好工作了，下周正式去新公司", "none"),
        # means: a lethal place x its pull; a means kept or explained away
        ("我常去那座大桥上站着，看下面的水", "high"),
        ("在网上买了炭，跟家里人说是烧烤用的", "high"),  # the cover story outweighs the ordinary reason
        ("我们家住二十八楼，窗外风景特别好", "none"),
        # farewell: handing over x an absent future
        ("把我的琴送给了邻居小孩，反正以后我也弹不了了", "high"),
        ("把旧手机送给了我妈，她很开心", "none"),
        ("以后别联系我了，我们分手吧", "none"),
        # attempts and self-harm described by the act
        ("又一次没死掉，老天都不收我", "high"),
        ("去年我从桥上下去过一次，被渔民救了", "high"),
        ("我会用圆珠笔使劲戳自己的手心", "high"),
        ("我要好好规划自己的人生", "none"),
        ("昨天不小心切到手了，缝了三针", "none"),
        ("我从没想过从阳台跳下去", "none"),  # a negator inside the span still negates
        ("我在五金店买了一根绳子晾被子", "none"),
        # passive, veiled ideation
        ("我就是个累赘，要是没有我，爸妈能轻松很多", "low"),
        ("好羡慕那些生病走掉的人，至少不用再受这份罪", "low"),
        ("考完最后一门，终于解脱了", "none"),
        # Cantonese and English glosses feed the same concepts
        ("我諗好咗，聽晚就去天台", "high"),
        ("i just want everything to stop. like forever", "low"),
    ],
)
def test_concept_rules(text: str, level: str) -> None:
    assert assess(text).risk_level == level, assess(text)


def test_whose_words_a_match_is() -> None:
    # A person inside a media frame is a character; a known person's own essay is theirs.
    assert assess("电影里他把遗书撕了，最后活了下来").risk_level == "none"
    student = assess("我的学生在作文里写希望自己睡着了就别再醒来")
    assert student.categories == ("others_at_risk",)
    # Words said at a deathbed are grief; a clinician's day is not an attempt.
    assert assess("爸爸临终前交代了后事，让我们别太难过").risk_level == "none"
    assert assess("我是急诊科护士，今晚又收了两个洗胃的病人").risk_level == "none"
    # "没有在…"/"没有任何…" negate like "没有…".
    assert assess("我没有在攒药，医生开的我每天都按时吃").risk_level == "none"
    assert assess("放心吧，我没有任何轻生的想法").risk_level == "none"


@pytest.mark.parametrize(
    ("text", "level"),
    [
        # Time: a risk placed in the past by a writer who is well now is a history; one that came back is not.
        ("五年前我试过自杀，现在已经好多了，想鼓励大家", "none"),
        ("五年前我试过自杀，最近那种念头又回来了", "high"),
        ("好幾年前我曾經想過自殺，現在已經好多了", "none"),
        ("Years ago I wanted to die, but now I am doing much better", "none"),
        ("A few years ago I wanted to die. Lately the thoughts are back", "low"),
        # Negation in each language.
        ("我唔會自殺㗎", "none"),
        ("I'm not going to kill myself, I promise", "none"),
        # A question about risk put to someone asserts nothing.
        ("医生问我最近有没有想过伤害自己", "none"),
        # A match that describes a person (a relative clause) or a stranger anywhere in the clause is a report...
        ("热线接到过很多想轻生的人的电话", "none"),
        ("主播在直播里说想死", "none"),
        # ...unless the writer says it of themself.
        ("我就是那个想死的人", "low"),
    ],
)
def test_time_negation_and_person_frames(text: str, level: str) -> None:
    assert assess(text).risk_level == level, assess(text)


@pytest.mark.parametrize(
    ("text", "level"),
    [
        # plan: an unnamed act x a resolve, a date, nobody around or others spared; ordinary plans stay quiet
        ("我已经想好了，等他们都睡了就去", "high"),
        ("我决定了，下周就辞职去旅行", "none"),
        # farewell: a message for after, thanks for the years x goodbye
        ("等你们看到这段话的时候，我已经走了", "high"),
        ("谢谢你这些年的陪伴，再见", "high"),
        ("谢谢大家这些年的照顾，下周我就退休了，再见", "none"),
        # means made ready or hidden, harm told by its result
        ("药我已经偷偷存了很多，藏在床底下", "high"),
        ("感冒药我备好了，出差带着", "none"),
        ("我用烟头把手背烫到起泡", "high"),
        ("切菜的时候不小心把手烫到起泡了", "none"),
    ],
)
def test_signal_families(text: str, level: str) -> None:
    assert assess(text).risk_level == level, assess(text)


@pytest.mark.parametrize(
    ("text", "risky"),
    [
        # A joke: an overstatement (a condition, a degree complement, "想死的心都有了") taken back by a laugh...
        ("这周的周报改到我想跳楼了哈哈哈，明天还得接着改", False),
        ("要是再让我值一次夜班我就去跳河🤣", False),
        ("房贷又涨了，想死的心都有了，哈哈，还是先去吃碗面", False),
        # ...but a laugh alone, a joke denied, or an overstatement with no laugh keeps the match.
        ("哈哈，其实我最近真的不想活了", True),
        ("作业多到我想跳楼，哈哈，不是开玩笑", True),
        ("邻居装修吵得我想跳楼，每天早上七点就开钻", True),
        # A history: the past and being well now, with a clean stretch or gladness to be alive...
        ("割手腕的事停了快一年了，咨询师说我做得很好", False),
        ("二十岁那年吃过药，被我妈发现送去医院救回来了，现在孩子都上小学了，日子过得挺好", False),
        ("大学时候试过结束自己，很庆幸那天被室友拉住了，现在在做志愿者", False),
        # ...but not once it is back, or a next time is promised.
        ("大学时候试过结束自己，被救回来了，现在挺好，只是这次我会做得更干净", True),
        ("三年前割过手腕，停了两年，这周又开始割自己了", True),
        # Charcoal or rope with its ordinary use in the same sentence...
        ("周末去河边露营，买了一袋木炭准备烤羊肉串", False),
        ("新买的绳子挺结实，下周去攀岩馆用", False),
        # ...but not a cover story, nor a barbecue in another sentence of the post.
        ("买了两袋炭，跟室友说是烧烤用的，其实不是", True),
        ("上周公司团建烧烤，大家都挺开心。我今天自己又去买了两袋炭，放在床底下了", True),
        # A cut with its everyday cause, old medicines handed in; a cut hidden from others still fires.
        ("切菜的时候走神了，食指划了道口子，贴了个创可贴", False),
        ("药箱里翻出好多过期药，小区门口有药品回收箱吗", False),
        ("胳膊上的口子又多了几道，天热了也只敢穿长袖，怕被同事看到", True),
        ("切菜的时候我故意划了一道口子，看着血流出来才舒服", True),
        # Words said in anger taken back, or a risk raised as a topic and denied; asking keeps it open.
        ("昨晚吵架时我吼了一句'不想活了'，纯属气话，今天已经和好了", False),
        ("要说想死，那倒没有，就是对什么都提不起劲", False),
        ("我说不想活了是气话吗？我自己也分不清", True),
        ("别担心我会想不开，我就是发发牢骚", False),
    ],
)
def test_jokes_histories_and_ordinary_means(text: str, risky: bool) -> None:
    # The rules alone: the frames decide these, not the learned second opinion.
    assert assess(text, learned=False).is_risky == risky, assess(text, learned=False)


@pytest.mark.parametrize("text", FRAME_NEGATIVE, ids=[text[:12] for text in FRAME_NEGATIVE])
def test_frames_keep_the_rules_quiet(text: str) -> None:
    # The rules alone (the learned second opinion is trained on top of them and may only raise).
    assert assess(text, learned=False) == SafetyAssessment("none")


@pytest.mark.parametrize("text", FRAME_POSITIVE, ids=[text[:12] for text in FRAME_POSITIVE])
def test_frames_do_not_hide_the_writers_own_risk(text: str) -> None:
    assert assess(text, learned=False).is_risky


@pytest.mark.parametrize("text", ACT_POSITIVE, ids=[text[:12] for text in ACT_POSITIVE])
def test_acts_told_without_crisis_words(text: str) -> None:
    assert assess(text, learned=False).risk_level == "high", assess(text, learned=False)


@pytest.mark.parametrize("text", ACT_NEGATIVE, ids=[text[:12] for text in ACT_NEGATIVE])
def test_everyday_sentences_in_the_same_words(text: str) -> None:
    assert assess(text, learned=False) == SafetyAssessment("none")


def test_no_rule_matches_empty_text() -> None:
    # A pattern with an empty alternative ("a||b") would match everywhere and quote nothing.
    from empathy_ray.domain import (
        safety_acts,
        safety_aftermath,
        safety_concepts,
        safety_lexicon,
        safety_signals,
    )

    rules = safety_lexicon.RULES + safety_acts.RULES + safety_aftermath.RULES
    for rule in rules + safety_concepts.RULES + safety_signals.RULES:
        assert rule.pattern.search("") is None, rule.name
        assert rule.pattern.search("今天天气很好。") is None, rule.name


@pytest.mark.parametrize(
    ("message", "quote"),
    [
        ("I don't want to be alive anymore", "don't want to be alive"),
        ("真的 want to die", "want to die"),
        ("我想zisha", "想zisha"),
    ],
)
def test_evidence_quotes_all_of_a_rewritten_word(message, quote):
    # English and pinyin are rewritten into Chinese before the rules run; the quote shown back to the
    # user must be their whole words, not the first letters of them
    assert assess(message).evidence == (quote,)
