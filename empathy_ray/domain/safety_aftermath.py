"""Crisis rules told by what an act leaves behind, and by the cover it is given.

Blind sets written after the act rules (tests/data/safety/tune7.jsonl, tune8.jsonl) showed the same
gap again and again: people who have just done something rarely name it. They give the dose and what
it does to them ("吃了大半瓶 现在头好晕"), an injury pushed on until it blisters or bleeds ("冲到起泡"),
a relapse counted in days, a car left running with the doors shut, water up to the chest, a rope that
broke. People preparing one give the cover story they told ("老板问我做咩用，我话绑嘢。其实…"), or arrange
for a pet or their accounts, or time a last post. Each family joins two concepts that each occur in
ordinary talk, so that either alone stays quiet:
  * a dose: taking x a large amount of a medicine, or taking a medicine x a symptom felt now;
  * an injury: a harming verb pushed "到" a wound, self-punishment ("我应得的", "不配吃"), a relapse;
  * a body in danger now: an engine running in a closed car or garage, water to the chest, a failed hanging;
  * a cover story: the writer was asked what a means is for and answered with a pretext;
  * arrangements: a pet handed over with food for months, a last post or letters timed to send later,
    an insurance payout meant for after.
Methods asked about (a lethal dose, a painless way, a poison), going over an edge from a height, a cut
that keeps bleeding or a relapse on the body are said outright but in words the other rules need a self
or a plan for; they join a method to a quantity or an outcome.
Every rule runs through the same negation, third-person and history checks as the other rules.
"""

from __future__ import annotations

from empathy_ray.domain.safety_acts import _KIN
from empathy_ray.domain.safety_concepts import _near
from empathy_ray.domain.safety_lexicon import ATTEMPT, FAREWELL, IDEATION, PLAN, SELF_HARM, Rule, _rule

_MEDICINE = (
    r"(药|药片|药丸|安眠药|安定|止痛药|止痛片|降压药|胰岛素|退烧药|农药|除草剂|剂量|一支|扑热息痛|对乙酰氨基酚"
    r"|[\u4e00-\u9fff]{1,3}(西泮|唑仑|洛芬|地平(?!线)))"  # diazepam-, alprazolam-, ibuprofen-, amlodipine-like names
)
_TAKEN = r"((吃|吞|喝|服|打|注射|推)(了|下去|下|掉|完)|一起下(去|肚)了|给自己(推|打|注射)了)"
# Enough that nobody takes it by mistake: a strip or bottle, tens of tablets, "all of it".
_LARGE_AMOUNT = (
    r"((一|成|整|大半|半|一整)(板|瓶|盒)|(十|[二三四五六七八九]十|几十|[1-9][0-9])[几多来]?(片|颗|粒)"
    r"|一(大)?把|(全部|全都|全|都)(吃|吞|打|喝)(了|下去|掉|完))"
)
_SYMPTOM = (
    r"(头(好|很|有点|开始)?晕|好晕|犯恶心|想吐|心跳(得)?(特别|好|很)?快|心慌|(手|脚|手脚|全身)[^,。]{0,4}(抖|麻)|冒冷汗|眼皮(好|很)?重"
    r"|重影|看不清|意识|好想睡|好困|喘不上气|呼吸困难|胃(好|很)?(疼|痛|烧))"
)
_ORDINARY_MEDICINE = (
    r"感冒|发烧|咳嗽|晕车|维生素|钙片|益生菌|退烧|过敏药|医生(让|说|开)|按时|一天[一两三]次|一次[一两半]片"
    r"|还是(咳|疼|痛|烧|不退)|不管用|没效果"
)
# Injuries that a harming act was pushed on to: "擦到破皮渗血", "冲到起泡", "剪了…流了好多血".
_WOUND = r"(破皮|渗血|流血|见血|出血|起(水)?泡|脱皮|结痂|缝针|骨头[^,。]{0,2}(歪|裂|断))"
_HARM_VERB = r"(擦|冲|烫|冻|抓|挠|掐|刮|砸|撕|剪|咬|捶|磨|划|割)"

_AFTERMATH: tuple[Rule, ...] = (
    # --- a dose taken ---------------------------------------------------------------------------------
    _rule(
        "dose_taken",
        "high",
        (ATTEMPT,),
        _TAKEN
        + r"[^,。]{0,6}?"
        + _LARGE_AMOUNT
        + r"|"
        + _LARGE_AMOUNT
        + r"[^,。]{0,4}?"
        + _MEDICINE
        + r"[^,。]{0,4}?(吃|吞|打|喝)(了|下去|掉|完)"
        + r"|"
        + _MEDICINE
        + r"[^,。]{0,6}?"
        + _TAKEN
        + r"[^,。]{0,4}?"
        + _LARGE_AMOUNT
        + r"|"
        + _MEDICINE
        + r"[^,。]{0,4}?(全部|全都|全|都)(吃|吞|打|喝)(了|下去|掉|完)"
        + r"|"
        + _near(
            _TAKEN + r"[^,。]{0,8}?" + _MEDICINE + "|" + _MEDICINE + r"[^,。]{0,6}?" + _TAKEN, _SYMPTOM, 24
        ),
        context=_MEDICINE + r"|酒|板|片|颗|粒",
        unless=_ORDINARY_MEDICINE,
    ),
    # --- an injury pushed on, self-punishment, a relapse -------------------------------------------------
    _rule(
        "harm_to_a_wound",
        "high",
        (SELF_HARM,),
        _HARM_VERB
        + r"(到|得)[^,。]{0,3}?"
        + _WOUND
        + r"|(这|那)是我(应得|活该)的|我不配(吃|睡|休息|好过)|(故意|惩罚自己)[^,。]{0,6}(不吃|没吃|饿)"
        + r"|(划|割)了[^,。]{0,3}?(这次)?[一两三四五六七八九十几]+(道|刀|条)(?!线|杠)"
        + r"|(留疤|疤)[^,。]{0,6}(怎么|如何)?(遮|藏|挡)|(遮|藏|挡)[^,。]{0,6}(疤|伤口)"
        + r"|(划|割)的(口子|伤口)[^,。]{0,8}(缝针|好深|止不住)|(剪|划|割|扎|刺)(了)?[^。]{0,8}流了(好多|很多|一地|一手)?(的)?血"
        + r"|骨头[^,。]{0,2}(都)?(砸|撞|捶)(歪|裂|断)|(刚|刚刚|刚才|今天|昨晚)(割|划)了(一下)?(手|手腕|胳膊|腿)(?!机|套|工)"
        + r"|(小刀|刀片|美工刀)[^,。]{0,6}藏(在|到|进)|(手腕|胳膊|手臂|大腿)(上)?(全是|都是|好多)(新)?伤",
        context=r"自己|我|手|胳膊|手腕|身上|身体|皮肤|腿|又|这次",
        unless=r"不小心|被[^,。]{0,4}(烫|咬|抓|砸|划)|宝宝|婴儿|孩子|猫|狗|切菜|做饭|手术|剖腹|纹身|烧伤科|骨科|纸|拆箱|快递"
        r"|打球|篮球|足球|运动|摔倒|车祸|玩具|魔术",
    ),
    _rule(
        "relapse_counted",
        "high",
        (SELF_HARM,),
        r"(戒了|坚持了|忍了|clean(了)?)[^,。]{0,4}?[一两三四五六七八九十百几0-9]+[^,。]{0,2}(天|周|个月|年)"
        r"[^。]{0,14}?(没忍住|破戒|破功|又(开始|来了))",
        context=r"刀|刀片|划|割|口子|伤|血|烫|疤",
        unless=r"烟|酒|糖|奶茶|游戏|熬夜|零食|减肥|咖啡|刷手机|赌",
    ),
    # --- a body in danger now -------------------------------------------------------------------------
    _rule(
        "in_danger_now",
        "high",
        (ATTEMPT,),
        _near(
            r"没熄火|发动机(一直)?开着|引擎(一直)?开着",
            r"关(着|上|好|紧)[^,。]{0,4}(车门|车窗|门窗|卷帘门)|(车门|车窗|门窗|卷帘门|车库门)[^,。]{0,6}关(上|好|紧|严)",
            30,
        )
        + r"|(走|站)到水[^,。]{0,2}(到|没过|淹到)[^,。]{0,2}(胸口|脖子|下巴|腰)"
        + r"|(?<![洪潮积])水[^,。]{0,4}(没过|淹到|漫过|到了)[^,。]{0,2}(胸口|脖子|下巴)"
        + r"|"
        + _near(r"绳子断了|绳子[^,。]{0,2}断", r"脖子|做不好|没死成|又失败", 20),
    ),
    # --- a cover story for a means ----------------------------------------------------------------------
    _rule(
        "cover_story",
        "high",
        (PLAN,),
        r"(问我|问起来|问起|跟[^,。]{0,4}说|告诉[^,。]{0,4})[^。]{0,14}?(我说|我话|我讲|说是|我要|是为了)?[^。]{0,20}?[。,]?"
        r"(其实|根本|实际上)[^,。]{0,12}(不是|没有|冇|无|不)",
        context=r"绳|炭|药|除草剂|农药|护栏|防护栏|刀|汽油|煤气|猫|狗",
        unless=r"礼物|惊喜|生日|求婚|装修|钓鱼",
    ),
    # --- arrangements for afterwards --------------------------------------------------------------------
    _rule(
        "pet_provided_for",
        "high",
        (FAREWELL,),
        _near(
            r"(猫|狗|狗狗|猫咪|兔子|仓鼠|鹦鹉)[^,。]{0,6}?(托付|留给|送给|交给|拜托)|(托付|送给|交给)[^,。]{0,6}(猫|狗)",
            r"(粮|罐头)[^,。]{0,8}(个月|够|转过去|钱)|放心了|就(能|可以)放心|不回来了",
            30,
        ),
        unless=r"出国|留学|搬家|出差|旅行|旅游|过敏|怀孕|住院|做手术|回国|移民|度假",
    ),
    _rule(
        "timed_to_send",
        "high",
        (FAREWELL,),
        _near(
            r"最后一条|最后的|信|遗书|留言|告别",
            r"定时[^,。]{0,8}(发|发送|发布)|设(了|好)[^,。]{0,6}(零点|凌晨|明天|之后)[^,。]{0,2}发",
            20,
        ),
        unless=r"生日|祝福|新年|节日|纪念日|营销|广告|公众号|推送|活动",
    ),
    _rule(
        "payout_for_after",
        "high",
        (PLAN,),
        _near(
            r"(保险)?受益人|意外险|寿险",
            r"免责期|看起来像意外|像(是)?意外|(不用|不必)再安排|至少能拿到|拿到(一笔)?钱|还(清|上|得上)",
            30,
        ),
        unless=r"理赔员|代理人|保险公司问|投保人|销售|客户",
    ),
)

_LEAVING_FOR_GOOD = r"退休|离职|辞职|毕业|调走|搬家|出国|留学|旅行|旅游|出差|回老家|移民|退群|换号|卸载|注销账号|最后一天|交接|同事|下周"
# Plans, farewells and veiled wishes that the word and act rules missed in blind sets.
_SAID_PLAINLY: tuple[Rule, ...] = (
    _rule(
        "said_goodbye_for_good",
        "high",
        (FAREWELL,),
        r"(下线|离开|走|告别|退出)[^。]{0,6}(永久|永远)的那种|这次是真的(再见|走了|告别)|对不起(大家|你们|各位)[^。]{0,6}(我)?先走了"
        r"|(跟|和|向)(所有人|大家|每个人)[^,。]{0,4}(告别|道别|说(了)?再见)|拜托(你|你们)[^,。]{0,3}(帮我)?照顾(它|牠|我的(猫|狗))"
        r"|结束[^,。]{0,4}我(也|就)(要)?(跟着)?结束",
        unless=_LEAVING_FOR_GOOD,
    ),
    _rule(
        "means_sought",
        "high",
        (PLAN,),
        r"(吃|打|喝|注射)多少[^,。]{0,10}(救不回来|醒不过来|会死|致死|没命|昏迷)"
        r"|(哪|哪栋|哪里|哪个)[^,。]{0,10}(楼顶|天台|顶楼)[^,。]{0,6}(不锁|没锁|能上去|上得去|开着)|越高越好"
        r"|(搜|查|看)[^。]{0,10}多高|"
        + _near(r"(搜|买)[^,。]{0,6}(被)?屏蔽|(不让|不给|不肯)(我)?买", r"换(了)?(个)?说法|还是买到|绕过", 30)
        + "|"
        + _near(r"药店|药房|药", r"不会起疑|不会怀疑|不被发现|免得(被)?怀疑", 30)
        + r"|(数过|数了|一共|总共|攒了|攒到|攒够|存了|存到|收着)[^。]{0,8}(十|[二三四五六七八九]十|几十|百|[1-9][0-9])[几多来]?(片|颗|粒|支)"
        r"|(存|攒|囤)起来[^。]{0,16}(个月|周)的量|" + _MEDICINE + r"[^。]{0,12}(够不够|够吗|够了吗)"
        r"|(猎枪|枪)[^。]{0,20}(打得开|钥匙|密码|子弹)|(去|进)枪库"
        r"|(买|拿|弄)(了)?[^,。]{0,10}(一大把|一把|几盒|几瓶|[两三四五]瓶)[^,。]{0,2}(止痛片|止痛药|安眠药|安定)",
        context=r"楼|桥|药|片|颗|粒|枪|炭|绳|农药|除草剂|胰岛素|多少|屏蔽",
        unless=r"药剂|配药|药房工作|患者|病人|分装|药盒|每周|一周的|游戏|吃鸡|射击场|靶场|打猎|疗程|出差|旅行|误服|宝宝|孩子",
    ),
    _rule(
        "going_up_or_gassing",
        "high",
        (PLAN,),
        r"(完|以后|之后)[^,。]{0,4}(我)?就(上|去|爬)[^,。]{0,8}(顶楼|天台|楼顶)(?![^,。]{0,6}(晒|收|看|拍|吃|喝|烧烤|乘凉|玩|吹风))"
        r"|(然后|再)从[^,。]{0,10}(顶楼|天台|楼顶|阳台|窗户|窗台)[^,。]{0,4}(下去|跳)"
        r"|"
        + _near(
            r"(煤气|燃气|天然气)[^,。]{0,2}(开开|打开|开着)",
            r"一了百了|不醒|关(好|紧)?门窗|趁[^,。]{0,6}没人",
            24,
        )
        + r"|(爬|上|去)[^,。]{0,6}(楼顶|天台)[^。]{0,8}(让|叫)(他|她|他们|你)[^,。]{0,4}(看着|后悔)"
        + r"|"
        + _near(r"站在(楼顶|天台|顶楼|桥上|桥边|江边|河边)", r"现在|此刻|想让[^,。]{0,4}知道", 24),
        unless=r"看烟花|拍照|风景|日出|日落|晒被子|乘凉|约会|维修|检修|燃气公司|煤气公司|抄表",
    ),
    _rule(
        "wish_never_born",
        "low",
        (IDEATION,),
        r"(希望|但愿|要是)(自己|我)?[^,。]{0,2}(从来|从未)?没(有)?(被)?生(下来|出来)|(我)?不该(被)?生(下来|出来)"
        r"|(希望|但愿)[^,。]{0,10}(飞机|航班)[^,。别不]{0,3}(掉下来|坠毁|出事)|死的(为什么)?(是|系)[^,。]{0,4}不是我|为什么不是我死|该死的是我"
        r"|睡(下去|过去)[^,。]{0,6}(不会|不再|别|不要)(再)?醒|(许愿|祈祷|希望|盼着)[^。]{0,4}明天(别|不要)(再)?来"
        r"|谁(也|都)不用记得我|活(到|了)[^,。]{0,4}(差不多|够)了|为什么(我)?还活着|(这条命|我的命)[^,。]{0,4}(换|值)[^,。]{0,6}(保险|钱)"
        r"|"
        + _near(r"宁可没生|没生过我|当没生|去死|消失", r"如(他们|你们|她|他|你)所愿", 40)
        # the writer's own death imagined for the regret it would bring; Cantonese and Hokkien wishes
        + r"|(要是|如果|假如)我(真的)?死了[^。]{0,14}(会不会|是不是|能不能)[^。]{0,12}"
        r"(愧疚|内疚|后悔|难过|伤心|哭|想起我|记得我|回来看)"
        r"|((我|自己)(真系|真的|早点)?|(想|谂)(住|着)(我|自己)?)死(咗|了)(就好|算数|算啦|好过)|(無|无)想欲活",  # 咗: 了
    ),
    _rule(
        "down_together",
        "high",
        (IDEATION,),
        # a parent who thinks of going over the edge with the child in their arms; going down to play
        r"(抱着|带着|搂着)(她|他|孩子|宝宝|女儿|儿子|娃)[^。]{0,8}一起(跳下去|下去算了|下去就)"
        r"|一起(跳下去|下去)[^。]{0,4}(就)?(都)?(解脱|算了|一了百了)",
        unless=r"楼下|下楼|散步|晒太阳|游泳|玩水|滑梯|蹦床|泳池|水上乐园|蹦极|跳伞",
    ),
)

_DEATH = r"走了|去世|过世|离世|没了|没的|不在了|葬礼|忌日|墓"
# Acts of others and of the writer that are told, like the ones above, by their circumstances.
_TOLD_BY_CIRCUMSTANCE: tuple[Rule, ...] = (
    _rule(
        "goodbye_then_silence",
        "high",
        (FAREWELL,),
        _near(
            r"((发|晒)(了)?[^,。]{0,4})?(空(的)?药瓶|药瓶[^,。]{0,3}空|遗书|告别信)",
            r"不回(消息)?|关机|联系不上|不接|打不通|失联",
            30,
        )
        + "|"
        + _near(
            r"撑不下去|撑不住了|熬不下去",
            r"(你|你们)(要)?保重|(别|不要)(哭|喊|难过)|照顾好(自己|妈|爸|弟|妹)",
            40,
        )
        + r"|帮我(跟|和|向|对)[^,。]{0,6}(说|讲|道)(声|个)?(对不起|sorry|再见|谢谢)",
        unless=_LEAVING_FOR_GOOD + r"|过年|加班|上课|考试",
    ),
    _rule(
        "platform_edge",
        "high",
        (PLAN,),
        _near(
            r"站台|月台|(地铁|列车|火车|车)进站|铁轨|轨道",
            r"(想|冲动|声音)[^,。]{0,8}(往下跳|往前迈|迈一步|跳下去|冲出去|往前走)",
            40,
        )
        + r"|(想|要|打算|准备)[^,。]{0,6}(桥|楼顶|天台|顶楼|阳台|窗)(上|边)?[^,。]{0,4}往下跳",
    ),
    _rule(
        "follow_the_dead",
        "low",
        (IDEATION,),
        r"(琢磨|想|打算|准备)[^,。]{0,4}(跟|和|随)[^,。]{1,3}(一块儿|一起|一同)(走|去)(?![^,。]{0,2}(玩|逛|吃|旅|看|买))"
        r"|(明天|今晚|过几天|就|准备)(要)?去(陪|找)(我)?" + _KIN + r"(?!玩|吃|逛|聊|说|喝)",
        context=_DEATH,
    ),
)

# Poisons nobody keeps for a household reason (rat poison and farm sprays are everyday, so not here).
_POISON = r"(氰化物|氰化钾|砒霜|百草枯|敌敌畏|毒鼠强|河豚毒|cyanide)"
_HOW_MUCH = r"((吃|吞|服|打|注射|喝|推)(了)?(多少|几)(片|粒|颗|盒|瓶|板|单位|支|毫克|克|mg)?|多少(片|粒|颗|单位|毫克|mg))"
# What the dose would do, asked as the point of taking it: death or not waking. "能睡过去", "会难受吗" or
# "好得快一点" are what insomnia, side effects and colds make people ask, so they are not here.
_DEATHLY = (
    r"(会|能)(不会)?(直接)?(死|没命|衰竭)|(心跳|心脏|呼吸)[^,。]{0,4}停|停止(呼吸|心跳)|醒不过来|一睡不醒|不(会)?(再)?醒"
    r"|致死|死得(快|了)|肝衰|failure|lethal|fatal"
)
# Taking a whole strip or bottle at once, asked about at all ("会怎么样", "疼不疼", "快吗").
_BULK = r"(一口气(吞|吃|喝|服)|(吞|吃|喝|服)(下)?(一整|整|一)(板|瓶|盒)|全(部)?(吞|吃)(下去|了|掉))"
_ASK = r"会怎么样|会不会|快(吗|不)|疼不疼|痛不痛|痛苦(吗|不)|多久"
_BODY = r"(手腕|胳膊|手臂|小臂|大臂|大腿|腿上|肚子|身上|皮肤)"
# Methods asked about, acquired or already used, whose words the other rules need a self or a plan for.
_ASKED_OR_DONE: tuple[Rule, ...] = (
    _rule(
        "lethal_dose_asked",
        "high",
        (PLAN,),
        _near(_HOW_MUCH, _DEATHLY, 24)
        + "|"
        + _near(_BULK, _ASK, 24)
        + "|"
        + _near(_MEDICINE + r"|煤气|燃气|一氧化碳|炭", r"不痛苦|没那么痛苦|最不痛苦", 30),
        context=_MEDICINE
        + r"|"
        + _POISON
        + r"|煤气|燃气|一氧化碳|炭|paracetamol|对乙酰氨基酚|布洛芬|阿司匹林",
        unless=r"误服|误吞|误食|宝宝|孩子|小孩|婴儿|狗|猫|宠物|说明书|医生(说|让|建议)|病人|患者|考试|药理|作业",
    ),
    _rule(
        "poison_sought",
        "high",
        (PLAN,),
        _near(_POISON, r"买|弄到|搞到|哪里有|哪儿有|渠道|私我|急用|网购|代购", 20),
        unless=r"小说|推理|剧|电影|新闻|案件|历史|禁(售|用)|种地|地里|庄稼|果树|虫|农场|科普|化学课|实验室",
    ),
    _rule(
        "over_the_edge",
        "high",
        (PLAN, ATTEMPT),
        r"(就|直接|然后|再|便)从[^,。]{0,8}(楼|阳台|窗户|窗台|天台|楼顶|顶楼|桥)[^,。]{0,3}(翻出去|翻下去|跳下去)"
        r"|(就|直接|然后|再|便)从[^,。]{0,8}(窗户|窗台|阳台)[^,。]{0,3}出去"
        r"|从[^,。]{0,8}(楼|阳台|窗户|窗台|天台|楼顶|顶楼|桥上)[^,。]{0,3}(翻了出去|翻出去了|跳了下去|跳下去了)",
        unless=r"晾|晒|收衣服|逃生|火灾|着火|消防|演习|猫|狗|鸟|小偷|救人|抓|钥匙|锁在门外|忘带",
    ),
    _rule(
        "wound_kept_open",
        "high",
        (SELF_HARM,),
        _near(
            r"(划|割|刀片|美工刀|小刀)",
            r"血[^,。]{0,6}(止不住|停不下来|一直(在)?(往外)?(冒|流|滴))|止不住(血|地流)",
            20,
        )
        + r"|(又|还是|再)(划|割)了[^。]{0,8}(在)?"
        + _BODY
        + r"|(烟头|熨斗|打火机|发夹|烙铁|烧红|烤红)[^。]{0,12}(摁|按|烫|碰|贴)[^,。]{0,4}(在)?[^,。]{0,2}"
        + _BODY
        + r"|(烟头|熨斗|打火机|发夹|烙铁)[^,。]{0,4}(在)?"
        + _BODY
        + r"[^,。]{0,3}(摁|按|烫|碰|贴)",
        unless=r"不小心|切菜|做饭|鼻血|月经|经期|牙|手术|宝宝|孩子|狗|猫|纹身|蚊子|被(烫|划|割)",
    ),
    _rule(
        "taken_just_now",
        "high",
        (ATTEMPT,),
        # waiting for what was swallowed to act, a neck ringed by a rope, a cut wrist stitched
        r"(吃|吞|喝)下去(了)?[^。]{0,16}(是不是快了|怎么还没(死|走))"
        + r"|脖子(上)?[^,。]{0,2}一圈[^,。]{0,3}(紫|勒|红|淤)|脖子上[^,。]{0,4}勒痕"
        + r"|"
        + _near(r"手腕[^,。]{0,6}缝", r"精神科|心理|会诊|自己(划|割)|又(划|割)", 24),
        unless=r"误服|误吞|误食|宝宝|孩子|小孩|婴儿|狗|猫|宠物|不小心|切菜|玻璃|车祸",
    ),
)

RULES: tuple[Rule, ...] = _AFTERMATH + _SAID_PLAINLY + _TOLD_BY_CIRCUMSTANCE + _ASKED_OR_DONE
