"""Compositional crisis rules: what a person does or arranges, not which crisis word they use.

The word rules in safety_lexicon.py catch "自杀", "跳楼", "安眠药". People at highest risk often avoid
those words and describe acts instead: walking into traffic, counting pills, giving the cat away
"because I won't need these things". Each family below joins two concepts, so that it covers
phrasings nobody listed:
  * means: a movement (走进, 往…走, 撞向, 躺, 沉) x a lethal place or object (车流, 铁轨, 河里, 护栏), or
    gathering (攒, 囤, 数, 买好) x a means (药, 炭, 麻绳, 刀片), or "enough" x medication;
  * farewell acts: handing over (托付, 送人, 转给, 写给) x an absent future (以后用不上, 我走了以后);
  * attempts: a just-done act (刚, 已经, 全部) x swallowing/drinking x a means;
  * self-harm acts: a harming verb (撞, 咬, 扎, 烫, 拔, 饿) x oneself or one's own body;
  * veiled ideation: sleep or disappearance x forever/never again, absence ("少了我也不会有人发现").
Every rule runs through the same negation, idiom and third-person checks as the word rules.
"""

from __future__ import annotations

from empathy_ray.domain.safety_lexicon import ATTEMPT, FAREWELL, IDEATION, PLAN, SELF_HARM, Rule, _rule

_END = r"(?=[,.!?;:。~]|$)"  # the end of a clause
_LETHAL_PLACE = (
    r"(车流|车道|马路中间|马路上|铁轨|轨道|海里|河里|江里|湖里|深水|护栏|大货车|火车|地铁|桥墩|悬崖|山崖)"
)
_LETHAL_MEANS = r"(安眠药|降压药|农药|百草枯|刀片|木炭|炭|麻绳|绳子|绳索)"
_KIN = r"(爷爷|奶奶|外公|外婆|姥姥|姥爷|爸爸|妈妈|爸|妈|老伴|老公|老婆|孩子|儿子|女儿|哥哥|姐姐)"
_BODY = r"(手|腿|胳膊|手臂|手腕|大腿|头发|脸|皮肤|身体|肚子)"
# A movement towards a lethal place is only a method when the writer wants it or names its end:
# "想…撞向护栏", "往车流里走过去就好了"; not "差点撞上护栏", "孩子往海里跑".
_INTENT = r"(想|打算|准备|计划|冲动|好几次|闭上眼睛|干脆)[^,.!?;。]{0,12}?"
_FINALITY = r"[^。!?]{0,10}?(就好了|就什么都|结束|一了百了|不回头|不回来|解脱)"
_MOVE = (
    r"((往|朝|向|走进|走到|走向|冲进|冲向|冲到|躺到|躺在|开进|开到|撞向|撞上|跳进|沉进|走入)[^,.!?;。]{0,4}?"
    + _LETHAL_PLACE
    + r"|(站台|铁轨|轨道|马路边)[^。!?]{0,14}?(往前|迈一步|迈出去|跳下|冲出去)|(铁轨|轨道)[^,。]{0,6}?(躺|卧)"
    r"|(方向盘|油门)[^,。]{0,6}?(撞|冲))"
)
# Walking or lying down into traffic, onto rails or off a cliff needs no stated intent.
_WALK_INTO_DEATH = (
    r"(往|朝|走进|走向|冲进|冲向|躺到|躺在)[^,.!?;。]{0,6}?(车流|车道|马路中间|铁轨|轨道|悬崖|山崖)"
    r"([^,.!?;。]{0,2}?(走|冲|躺|迈|跳))?"
    r"|(站台|铁轨|轨道|马路边)[^。!?]{0,14}?(想|冲动)[^。!?]{0,14}?(往前|迈一步|迈出去|跳下|冲出去)"
)
_DROP = (
    r"(从[^,.!?;。]{0,10}?(楼|窗户|窗|阳台|天台|楼顶|桥)(上|口|边)?(跳|翻|下去|掉下去)"
    r"|(阳台|窗户|窗台|天台|楼顶|栏杆|桥)[^。!?]{0,8}?(翻|跳|爬)(过去|下去|出去)|跳下[^,。]{0,4}?(桥|楼|悬崖|阳台|窗|天台|楼顶))"
)
_ORDINARY_USE = r"(?<!一)捆|绑|晾|打包|搬家|露营|烧烤|野餐|火锅|烤肉|装修|跳绳|感冒|发烧|过敏"

RULES: tuple[Rule, ...] = (
    # --- means described by the act ---------------------------------------------------------------
    _rule(
        "walk_into_danger",
        "high",
        (PLAN,),
        _INTENT + _MOVE + "|" + _MOVE + _FINALITY + "|" + _WALK_INTO_DEATH + r"|把自己(沉|淹)",
    ),
    _rule(
        "fall_from_height",
        "high",
        (PLAN,),
        _INTENT
        + _DROP
        + "|"
        + _DROP
        + _FINALITY
        + r"|(现在|此刻|正)(站)?在(楼顶|天台|顶楼|桥上|江边|河边|铁轨)"
        + _END,
    ),
    _rule(
        "gather_means",
        "high",
        (PLAN,),
        # Saving up, hiding or counting any medicine; hoarding it only when it is "enough".
        r"(攒|藏|数)(了|过|好|够|在)*[^,.!?;。]{0,8}?药|药[^,.!?;。]{0,8}?(攒|藏|数)(了|过|好|够|在)"
        r"|(囤|存(?!放|储))(了|好)?(够|满|很多|好多)[^,.!?;。]{0,6}?药|药[^,.!?;。]{0,8}?(囤|存)(够|满)"
        r"|(囤|存(?!放|储))(了|过|好|够)*[^,.!?;。]{0,8}?"
        + _LETHAL_MEANS
        + r"|(买|准备|备|弄)(了|好|回来|到)*[^,.!?;。]{0,6}?(木炭|炭|麻绳|绳子|绳索|刀片|农药|百草枯|老鼠药)"
        r"|(木炭|炭|麻绳|绳子|绳索|刀片)[^,。]{0,4}?(也|都)?(买|准备|备)(好|了|回来)"
        r"|(药|药片|安眠药|降压药)[^。!?]{0,12}?(够了|足够|够我)|够[^,。]{0,4}?药[^,。]{0,4}?(攒|囤|存)"
        r"|药[^。!?]{0,12}?一次(吃完|吞完|吞下|吃掉)"
        r"|(农药|百草枯|敌敌畏|老鼠药|安眠药)[^。!?]{0,14}?(拧开|打开|倒出)"
        r"|刀片[^,。]{0,4}?(锋利|够快)|(哪种|哪个|什么|最快|不痛|最不痛)[^,。]{0,4}?死法",
        unless=_ORDINARY_USE,
    ),
    _rule(
        "hanging_and_gas",
        "high",
        (PLAN,),
        r"(皮带|绳子|绳)[^,。]{0,6}?(挂|系|套)(在|上|到)[^,。]{0,4}?(门框|横杆|房梁|吊扇|脖子|梁)"
        r"|(横杆|门框|房梁|吊扇)[^。]{0,8}?(结实|试过|承重|比了比)"
        r"|(打开|拧开|开着|开了)[^,。]{0,4}?(煤气|燃气|天然气)[^。]{0,12}?(关(上|好|紧)?(门|窗)|睡|不醒)",
    ),
    _rule(
        "sealed_room",
        "high",
        (PLAN,),
        r"(门窗|门缝|窗户|房间)[^,。]{0,4}?(都)?(封|堵)(好|死|上|严)",
        context=r"炭|煤气|燃气",
    ),
    _rule(
        "go_and_not_return",
        "high",
        (PLAN,),
        r"(去|到)[^,。]{0,8}?(桥|江边|河边|海边|湖边|水库|悬崖|山里|楼顶|天台|铁轨)[^。!?]{0,10}?(不会再回来|再也不回来|不回来了)",
    ),
    _rule(
        "hands_on_date",
        "high",
        (PLAN,),
        r"(打算|准备|决定|计划)[^,.!?;。]{0,10}?动手" + _END + r"|是(我的)?最后一天",
        context=r"(时间|日子|日期|地点)[^,。]{0,4}?(定好|选好|挑好|想好)|时间表|期限|结束",
    ),
    # --- farewell acts ------------------------------------------------------------------------------
    _rule(
        "give_away_for_after",
        "high",
        (FAREWELL,),
        r"(以后|今后|反正)[^,.!?;。]{0,8}?(都|也)?(用不上|用不着|不需要)了|我(走|不在|离开)了?(以后|之后)"
        r"|(密码|账号|存款|银行卡)[^。!?]{0,20}?(以后|留给|收拾)",
        context=r"托付|送人|送给|送回|留给|交给|转给|写给|写在纸上|捐了",
        unless=r"搬家|毕业|出国|留学|回国|换了新|买了新|断舍离|出差|旅行|装修",
    ),
    _rule(
        "last_words",
        "high",
        (FAREWELL,),
        r"不想在这(个)?世(界|上)?留下|(以后|从今以后|今后)(都)?(不用|别|不要)(再)?等我了|最后一次(发帖|发消息|联系你们|跟你们说|说话)(?!求|问)"
        r"|(想说的话|遗言|最后的话)[^。]{0,10}?(录|写)(下来|好)|(我的)?骨灰[^,。]{0,8}?就(行|好|可以)"
        r"|(让|叫)(他|她|他们|你们|你)?(别|不要)(怪|责怪)(自己)",
    ),
    # --- attempts -----------------------------------------------------------------------------------
    _rule(
        "just_took",
        "high",
        (ATTEMPT,),
        r"(刚才|刚刚|刚|已经|小时前|分钟前|昨晚)[^,.!?;。]{0,6}?(吃|吞|喝)(了|下|掉)[^,.!?;。]{0,4}?"
        r"(很多|好多|一大把|一把|全部|所有|一整|整|一瓶|几十|一堆)[^,.!?;。]{0,4}?(药|农药|安眠药|百草枯)|(药|安眠药)[^,.!?;。]{0,8}?(全部|都|全)(吃|吞)(下去|掉)"
        r"|(喝|服)(了)?[^,.!?;。]{0,4}?(农药|百草枯|敌敌畏|毒药|老鼠药)|洗(过|了)胃|烧(过|了)炭"
        r"|把我(救|拉)(下来|回来)|被(救|抢救)回来",
    ),
    _rule(
        "did_something_foolish", "high", (ATTEMPT,), r"做(了|过)傻事", context=r"住院|医院|抢救|急诊|救回来"
    ),
    # --- self-harm acts -----------------------------------------------------------------------------
    _rule(
        "harm_own_body",
        "high",
        (SELF_HARM,),
        r"(撞|咬|扎|烫|掐|抓|划|割|砸|刺|拔)(伤|破|烂)?(了)?(我)?自己(的)?"
        + _BODY
        + r"|撞墙[^。]{0,8}?(头晕|流血|为止|肿)|伤害了(我)?自己|(拳头)砸墙[^。]{0,8}?(破|骨折|流血)"
        r"|(按|压|戳|烫)在(了)?(我)?自己(的)?"
        + _BODY
        + r"|(全是|都是|好多|很多|一道道|新的)[^,。]{0,3}(刀痕|划痕|割痕|刀口|血痕)"
        r"|故意[^,。]{0,10}?(烫|冲|割|划|扎)[^,。]{0,4}?(手臂|手|腿|自己)|(饿|惩罚)自己",
        unless=r"缺钙|宝宝|婴儿|长牙|几个月大",  # a baby biting its fingers is teething, not self-harm
    ),
    # --- veiled, passive ideation -------------------------------------------------------------------
    _rule(
        "sleep_forever",
        "low",
        (IDEATION,),
        r"(永远|一直|就这样)(地)?睡(下去|过去)|再也不用(再)?(醒|面对|起来)|不用再面对明天|睡(下去|过去)[^,。]{0,8}?(再也|永远)"
        r"|(想|要|能)?永远(地)?消失|(从这个世界(上)?|彻底)消失",
    ),
    _rule(
        "absence_unnoticed",
        "low",
        (IDEATION,),
        r"(少了|没了|没有了?)我(也|都)?(不会有人|没人|没有人)(会)?(发现|在意|在乎|难过|注意)"
        r"|(找不到我|我不在了?|我消失了?)[^。!?]{0,12}?(没什么人|没人|没有人|不会有人)(会)?(在意|在乎|发现|难过)"
        r"|(世界上|这个世界)(少了|没了)我|早点(离开|走|消失|死)[^,。]{0,6}?(都|也)?好"
        r"|没有(任何|什么)?(留恋|牵挂)|(出车祸|被车撞|得绝症|生病|死)的(人)?是我(就好了|该多好)"
        r"|不配活|在等(死|结束)|我(大概|可能|也许|应该|很快)*就不在了"
        r"|(去|到)一个[^,。]{0,10}?地方[^。]{0,8}?(再也不|永远不)回来",
    ),
    _rule("go_die", "low", (IDEATION,), r"(安心|可以)(地)?去死"),
    _rule(
        "join_the_dead_kin",
        "low",
        (IDEATION,),
        r"(想|要)(去)?(陪|找)(我)?" + _KIN + r"(?!玩|吃|逛|聊|说|喝)",
        context=r"去世|过世|离世|逝世|病逝|走了|走的|不在了|葬礼|忌日|墓|天堂|在天上",
    ),
)
