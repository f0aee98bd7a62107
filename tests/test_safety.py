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

LONG_PILLS = (
    "我今年大三，从高二开始就断断续续地失眠，吃了很多药也没什么用。这学期挂了两门课，辅导员找我谈话，"
    "爸妈在电话里只会骂我不争气。室友都在准备考研，只有我每天躺在床上什么都做不了。"
    "我已经偷偷攒了很多安眠药，放在抽屉最里面，有时候会拿出来数一数。我也不知道自己为什么要发这个帖子。"
)
LONG_BURDEN = (
    "结婚五年，老公一直在外地工作，孩子从出生到现在都是我一个人带。婆婆总说我带不好孩子，"
    "老公回来也只是玩手机，我跟他说我很累，他说谁不累。这几个月我经常一个人在厨房里哭，"
    "哭完还要若无其事地给孩子讲故事。有时候我会想，大家没有我会更好吧，孩子也可以交给更会带的人。"
)
LONG_ROOF = (
    "上周项目出了大问题，领导当着全组的面说是我的责任，其实方案是他拍板定的。我连续加了二十天班，"
    "回到出租屋也没有人说话。昨天晚上我一个人站在天台边上，往下看了很久，风很大，后来手机响了我才回去。"
    "现在坐在工位上，脑子里还是那个画面。"
)
LONG_GRIEF = (
    "妈妈是去年冬天走的，胃癌，从查出来到离开只有四个月。她走之前一直拉着我的手说对不起，"
    "说没能看到我结婚。办完葬礼以后我就回到了原来的城市，白天上班像个正常人一样，晚上回到家就开始想她。"
    "我经常梦到她还在厨房做饭，醒来以后枕头都是湿的。我真的好想去陪她。"
)
LONG_TRADITIONAL = (
    "我在台北讀研究所，指導教授每次開會都說我的研究沒有價值，同學們也漸漸不找我吃飯了。"
    "家人覺得我在國外過得很好，我也不敢跟他們說實話。每天晚上躺在床上都覺得活著沒意思，"
    "甚至會想如果我消失就好了，反正也沒有人會在意。"
)

POSITIVE = [
    ("我想自杀", "low"),
    ("真的不想活了", "low"),
    ("好想死啊，每天醒来都是折磨", "low"),
    ("我又忍不住割腕了", "high"),
    ("最近又开始想自残，控制不住", "low"),
    ("我一直在自残，手上都是疤", "high"),
    ("我想结束自己的生命", "low"),
    ("活着没意思", "low"),
    ("活着好累，不想继续了", "low"),
    ("有时候真想从楼上跳下去", "high"),
    ("我已经把药都吃了", "high"),
    ("我偷偷攒了很多安眠药", "high"),
    ("大家没有我会更好", "low"),
    ("外婆去世三个月了，我好想去陪她", "low"),
    ("我想跟这个世界告别了", "high"),
    ("遗书我已经写好了，放在桌上", "high"),
    ("晚上睡觉的时候总希望自己不要再醒来", "low"),
    ("要是我消失就好了", "low"),
    ("我今晚就想结束这一切", "high"),
    ("我想 自 杀", "low"),
    ("我想自殺，真的撐不住了", "low"),
    ("我不是没想过自杀，只是一直没说", "low"),
    ("我已经准备好了绳子", "high"),
    ("如果我死了，家人会不会更轻松一点", "low"),
    ("我在手臂上划了好几道", "high"),
    ("我想从十八楼跳下去", "high"),
    ("最近一直在想怎么死才不痛苦", "high"),
    ("每天都有轻生的念头", "low"),
    ("我觉得自己活不下去了", "low"),
    ("我会用刀片划自己的胳膊", "high"),
    ("我想喝农药", "high"),
    ("烧炭的东西我都买好了", "high"),
    ("三年前我自杀未遂，被送去洗胃", "high"),
    ("爸爸走了，我想去天上陪他", "low"),
    ("我不想活在这个世界上了", "low"),
    ("我打算生日那天离开这个世界", "high"),
    ("我不敢自杀，只能每天这样熬着", "low"),
    ("你说我是不是该去死", "low"),
    ("我怕自己一时想不开", "low"),
    ("我把安眠药都吞了，现在头好晕", "high"),
    ("活着到底有什么意义", "low"),
    ("为什么我还没死，死了就解脱了", "low"),
    ("明天考完试我就去跳河", "high"),
    ("ＷＯ 想死", "low"),
    ("我又自残了，对不起", "high"),
    ("我会伤害自己", "low"),
    ("我真的撑不下去了，觉得活着一点意思都没有", "low"),
    ("有时候过马路的时候会想，要是被车撞死就好了", "low"),
    ("如果明天不用醒来该多好", "low"),
    ("对不起爸妈，下辈子再做你们的孩子", "high"),
    ("我今天去药店买了好几盒安眠药", "high"),
    ("我觉得这个世界没有我也无所谓", "low"),
    (LONG_PILLS, "high"),
    (LONG_BURDEN, "low"),
    (LONG_ROOF, "high"),
    (LONG_GRIEF, "low"),
    (LONG_TRADITIONAL, "low"),
]

LONG_IDIOMS = (
    "今天真的是累死了，早上地铁挤得要命，到公司电脑又死机了，改了一上午的方案全没了。"
    "中午和死党吃饭吐槽，她讲了个段子笑死我了。下午老板又让我死磕那个bug，烦死了。"
    "晚上回家看了一集要死要活的剧情，狗血得不行。不过总的来说，日子还是要过的。"
)
LONG_NEGATED = (
    "最近工作压力确实很大，每天回家都很晚，和男朋友也经常吵架。朋友看我状态不好，很担心我，"
    "我跟她说我从来没想过自杀，也不会伤害自己。我只是想知道怎么调整心态，"
    "怎么跟男朋友好好沟通，不要每次都吵到半夜。希望有经验的人给点建议。"
)
LONG_NEWS = (
    "今天刷手机看到新闻里有人跳楼了，是一个刚毕业的年轻人，评论区很多人在讨论职场压力。"
    "我看完心里挺不舒服的，想到自己刚工作的时候也很迷茫。想问问大家，刚入职场的人怎么才能更好地适应，"
    "遇到压力的时候一般怎么排解？"
)
LONG_GAME = (
    "昨晚和室友开黑，我玩的角色死了好几次，队友还一直骂我，最后我们靠一波团战杀死比赛了，"
    "那一刻真的超开心。今天上课困死了，老师讲的死亡笔记里的推理题我完全没听进去，只能回去死记硬背了。"
)

NEGATIVE = [
    "笑死我了",
    "今天加班累死了",
    "饿死了，外卖怎么还没到",
    "热死了，空调又坏了",
    "困死了，昨晚只睡了四个小时",
    "气死我了，他又迟到",
    "烦死了，作业怎么这么多",
    "刚才那一下吓死我了",
    "电脑又死机了",
    "手机还是死机了，只能重启",
    "这道题我跟它死磕到底",
    "周末和死党去看电影",
    "她对他死心塌地",
    "考试只能死记硬背了",
    "这部剧要死要活的剧情太狗血了",
    "打死也不说",
    "我才不想死呢",
    "我从来没想过自杀",
    "我不会伤害自己的，放心",
    "我不是不想活，只是太累了",
    "没有想死的念头，就是有点低落",
    "最后那个三分球杀死比赛了",
    "游戏里我的角色死了好几次",
    "最近在追死亡笔记",
    "我早就对他死心了",
    "新闻里有人跳楼了，看得我很难受",
    "想死你了，什么时候回来",
    "这个紫砂壶真好看",
    "商场搞跳楼价大甩卖",
    "电视剧里女主跳楼了，我哭了好久",
    "我不想活得这么累",
    "我不想活在别人的期待里",
    "不想活动，周末只想躺着",
    "最近想消失一段时间，去云南旅行",
    "医生给我开了安眠药，睡眠好多了",
    "我们在天台上吃烧烤",
    "用刀划开快递的时候不小心割了一下手",
    "这次考试死定了",
    "还是死了这条心吧",
    "学校组织了预防自杀的讲座",
    "奶奶去世了，周末我去陪陪爷爷",
    "我想去陪她逛街",
    "今天热得想死",
    "我从没有过轻生的念头",
    "这是个轻生活方式的讲座",
    "那个明星自杀的新闻刷屏了",
    "你去死吧，渣男",
    "我很想死去的外婆",
    "我要好好规划自己的人生",
    "时刻提醒自己要早睡",
    "我吞药片一直很困难",
    "这个项目没有我也一样能完成",
    "坐在阳台边上喝茶",
    "跳楼机太刺激了",
    LONG_IDIOMS,
    LONG_NEGATED,
    LONG_NEWS,
    LONG_GAME,
]


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
