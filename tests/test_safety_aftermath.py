"""The rules that read an act by what it leaves behind or how it is asked about (safety_aftermath.py), and
the frames that keep grief, others' worry and calm after a decision from being misread. Every phrasing is
our own; each risky one stands beside a look-alike in the same words that must stay quiet."""

from __future__ import annotations

import pytest

from empathy_ray.domain.safety import SafetyAssessment, assess


@pytest.mark.parametrize(
    ("text", "level"),
    [
        # a dose and what it does now; the same medicine taken as prescribed
        ("昨晚把一整瓶安眠药都吞了，早上居然醒了", "high"),
        ("咳嗽药水喝了一整瓶还是咳，要换药吗", "none"),
        ("药已经吞下去了，腿开始发软，是不是快了", "high"),
        ("面条吃下去了，怎么还没饱", "none"),
        # what a rope or a blade left; a love bite, a sports injury
        ("那天晚上以后脖子上一圈勒出来的淤青，只能穿高领", "high"),
        ("脖子上有块紫印，同事一直笑我", "none"),
        ("左手腕昨晚缝了七针，今天护士说要等精神科来看", "high"),
        ("踢球摔倒撑地，手腕缝了四针", "none"),
        # a foot over the railing, or back from it just now; a hurdler's stride
        ("两条腿已经跨过护栏了，底下的车灯好亮", "high"),
        ("刚刚从窗台翻出去又爬回来了，手还在抖", "high"),
        ("跨栏的时候腿迈出去太早，被栏绊倒了", "none"),
        ("刚才把那板药全吃完了，手脚开始发麻", "high"),
        ("睡前吃了三十多片，现在心跳好快", "high"),
        ("感冒药吃了两片，头有点晕，先睡了", "none"),
        ("医生让一天吃两片降压药，吃完有点头晕正常吗", "none"),
        # an injury pushed on until it bleeds or blisters; an accident that did the same
        ("拿指甲一直抠手背，抠到出血才停", "high"),
        ("洗碗的时候不小心被开水烫到起泡了", "none"),
        ("戒了五十天，今晚还是没忍住，刀片就在枕头底下", "high"),
        ("戒烟戒了五十天，今晚还是没忍住抽了一根", "none"),
        # danger now: a running engine in a shut garage; water up to the chest
        ("车停在车库里没熄火，卷帘门我已经关上了", "high"),
        ("一步一步往海里走，水已经没过胸口了", "high"),
        # a cover story for a means; a present bought in secret
        ("店员问我买这么多炭干嘛，我说烧烤。其实我连烤炉都没有", "high"),
        ("老公问我买绳子做什么，我说是绑箱子用的，其实是给他的生日惊喜", "none"),
        # arrangements for afterwards; the same arrangements before a trip
        ("狗托付给表姐了，狗粮够吃半年，这下我放心了", "high"),
        ("出国读书前把狗托付给表姐了，狗粮够吃半年", "none"),
        ("写给家里的信设了定时，下周一早上发出去", "high"),
        ("同事生日的祝福设了定时，零点发出去", "none"),
        ("保单受益人改成了我弟，免责期到下个月就满了", "high"),
        # asking how much it takes; a parent asking about a child's dose
        ("那种药一次吃多少会昏迷醒不过来", "high"),
        ("孩子发烧，布洛芬一次吃多少毫升", "none"),
        # a goodbye, then silence; a friend whose battery died
        ("她发了一张空药瓶的照片，然后手机就关机了", "low"),  # someone else: others at risk
        ("她说手机快没电了，然后就关机了", "none"),
        # passive wishes said sideways
        ("每晚睡前都许愿，明天别来了", "low"),
        ("真希望自己从来没被生下来", "low"),
        # emoji, Cantonese, English
        ("又🔪了手臂 🩸止不住", "high"),
        ("食咗成瓶药 而家好想瞓", "high"),
        ("just took the whole bottle, my hands are shaking", "high"),
        # a lethal dose or a painless way asked about; doses asked for a child, from a label, as a worry
        ("降压药吞多少片心脏会直接停", "high"),
        ("妈妈的降压药，一口气吃一整板会怎么样", "high"),
        ("发烧了，布洛芬吃几片能好得快一点", "none"),
        ("安眠药吃几片能睡过去，失眠三天了", "none"),
        ("这个药一次吃几片，吃了会难受吗", "none"),
        ("家里的安定攒了二十多片，一次吃了能不能睡过去", "high"),
        ("想找个不痛苦的办法，烧炭是不是没那么痛苦", "high"),
        ("有没有人知道 paracetamol 吃多少会直接 liver failure", "high"),  # a forum question is the asker's
        ("布洛芬一次吃多少片，说明书丢了", "none"),
        ("宝宝误吞了一片降压药会怎么样，急", "none"),
        ("有人知道布洛芬一次吃几片吗", "none"),
        # a poison sought; the same poison in a novel or a ban
        ("百草枯现在网上还能买到吗，急用", "high"),
        ("这本推理小说里凶手用的是氰化物", "none"),
        ("百草枯为什么被禁用了", "none"),
        # over the edge from a height; out of a window for chores, a fire or a cat
        ("考完试我就直接从宿舍楼顶翻出去", "high"),
        ("我妈从阳台翻出去晾衣服，吓死我了", "none"),
        ("着火的时候从窗户出去逃生要注意什么", "none"),
        # a cut that keeps bleeding, a relapse on the body, burns pressed in; bleeding of other kinds
        ("刀片划得太深了，血一直在往外滴", "high"),
        ("昨晚又割了，这次在小臂上", "high"),
        ("用烟头在手臂上摁了两下，不疼", "high"),
        ("月经量大血一直流止不住", "none"),
        ("不小心被烟头烫到手臂上，起泡了", "none"),
        ("又划了一道线，这本书我画得乱七八糟", "none"),
        # one's own death imagined for the regret it would bring; a will, a parent's question
        ("要是我死了，他们会不会有一点点愧疚", "low"),
        ("如果我死了，爸妈会不会后悔当初那样对我", "low"),
        ("如果我死了，存款和房子是不是要先写好遗嘱", "none"),
        # Cantonese and Hokkien wishes; a villain in a series
        ("我成日谂住死咗就好", "low"),
        ("阮真正無想欲活矣", "low"),
        ("套剧入面个奸角死咗就好啦，睇到好嬲", "none"),
        ("我觉得那个渣男死了就好", "none"),
        # over the edge with the baby; going down with her to play
        ("好几次站在窗边想，干脆抱着她一起下去算了", "high"),
        ("想着我们俩一起跳下去就都解脱了", "high"),
        ("抱着宝宝一起下去楼下晒太阳", "none"),
        ("周末带着儿子一起跳下去泳池玩水", "none"),
    ],
)
def test_aftermath_rules(text: str, level: str) -> None:
    assert assess(text, learned=False).risk_level == level, assess(text, learned=False)


@pytest.mark.parametrize(
    "text",
    [
        "我最好的朋友前年冬天自杀了，今天是他的忌日，我去墓地坐了一下午",  # mourning, not a risk now
        "新闻里说一名女子在江边想轻生，被路人劝了回来，希望她以后平安",  # the report goes on past a comma
        "爸妈总担心我会想不开，我真的没有",  # others' worry, denied
    ],
)
def test_grief_reports_and_denials_stay_quiet(text: str) -> None:
    assert assess(text, learned=False) == SafetyAssessment("none")


def test_calm_after_a_decision_is_not_a_recovery() -> None:
    # "现在很平静" after a plan is a warning sign, not the writer being well now
    assert assess("三年前我就想过跳楼，现在想好了，反而很平静", learned=False).is_risky
