"""Who gives a speech: personal names next to an office (``省长许昆林``, ``龚正市长``), bylines,
speaker labels (``致辞：饶毅（教师代表）``, ``崔忠付：尊敬的…``) and self-introductions
(``我是来自计算机学院的志愿者李福洲``).

A name is 2-4 characters starting with a common surname (a compound one for 4), and never a
word that only looks like one (同志, 代表, 全市…): 目录, 前言 or 市委书记 must not be taken for a
speaker. Traditional characters count as their simplified forms (汪廣平 is a name, 校長 an office).
"""

from __future__ import annotations

import re
from functools import cache

from speechrag.text import HAN

# Offices that stand next to a name. 代表 and 委员 are left out on purpose: 我代表国务院,
# 县政协委员李明 in a body sentence, 代表大会 are not speakers.
TITLES = (
    "总书记|书记|副书记|总理|副总理|国务委员|委员长|主席|副主席|省长|副省长|市长|副市长|区长|副区长|县长|副县长|"
    "州长|镇长|乡长|旗长|盟长|主任|副主任|部长|副部长|厅长|副厅长|局长|副局长|处长|副处长|科长|秘书长|理事长|"
    "会长|副会长|董事长|总经理|总裁|校长|副校长|院长|副院长|所长|行长|司令员|政委|巡视员|调研员|教授"
)
# Acting (代省长) and deputy forms are offices too.
_TITLE = rf"(?:代|常务)?(?:{TITLES})"

_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武"
    "戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯"
    "纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪"
    "简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎"
    "甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝"
    "郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍"
    "辜羊阿乌母裘亓修邰赫杭况那宿鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣"
    "信展阴昝智幸奉植衡富尧闭由"
)
_COMPOUND_SURNAMES = (
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "夏侯", "令狐", "宇文",
)
# Traditional forms of the surname and office characters, so a Taiwan or Hong Kong page reads
# the same (汪廣平 校長). Only what names and offices need; the text itself is never converted.
_TRAD = str.maketrans(
    "陳劉張楊黃趙吳孫馬羅鄭謝許韓馮鄧蕭葉蘇呂盧鍾譚陸賈韋鄒賀顧龔萬錢嚴湯齊喬龐聶魯詹歐關蘭俞紀單裴塗駱藍"
    "遊靳鮑祁滕屈饒繆簡車項蘆婁竇岑費衛邊師欒隋鄺鞠樂鄢閔蔺盤闕鄔長書縣鄉鎮區廳處務記總經會員屬副紹軍東",
    "陈刘张杨黄赵吴孙马罗郑谢许韩冯邓萧叶苏吕卢钟谭陆贾韦邹贺顾龚万钱严汤齐乔庞聂鲁詹欧关兰俞纪单裴涂骆蓝"
    "游靳鲍祁滕屈饶缪简车项芦娄窦岑费卫边师栾隋邝鞠乐鄢闵蔺盘阙邬长书县乡镇区厅处务记总经会员属副绍军东",
)
_NOT_NAMES = re.compile(
    r"同志|们|各位|代表|目录|前言|讲话|报告|说明|附件|摘要|提纲|全文|全市|全区|全县|全省|全国|我们|大家|"
    r"同学|老师|领导|干部|群众|人民|政府|工作|会议|时间|来源|发布|总结|计划|方案|通知|公司|学院|学校|"
    r"党员|团员|职工|员工|学生|教师|医生|农民|工人|战士|记者|编辑|母亲|父亲|孩子|朋友|先生|女士"
)
NAME_CHARS = rf"[{HAN}]"
_ORG_ENDS = frozenset("院部委局厅办府会司处所校团社队省市区县州旗镇乡")


def simplified(text: str) -> str:
    """``text`` with the traditional surname and office characters this module knows simplified."""
    return text.translate(_TRAD)


def person_name(text: str) -> str:
    """``text`` as a person's name (2-4 characters from a common surname, spaces removed), or ""."""
    name = re.sub(r"\s+", "", text)
    key = simplified(name)
    if not 2 <= len(name) <= 4 or not re.fullmatch(f"[{HAN}]+", name) or _NOT_NAMES.search(key):
        return ""
    if len(name) == 4 and not key.startswith(_COMPOUND_SURNAMES):
        return ""
    if key[-1] in _ORG_ENDS:  # 国务院, 文化部, 市委: an institution, not a person
        return ""
    return name if key[0] in _SURNAMES or key.startswith(_COMPOUND_SURNAMES) else ""


# What may follow a name in a header line, and precede one.
_AFTER_NAME = set("在作同的出致讲，。、；：,.;:（(）) 为于等率主")
_BEFORE_NAME = set("日月年，、：:；;—-（()） 省市区县局委厅部司处院校会团社所办队")


@cache
def _title_pattern() -> re.Pattern[str]:
    return re.compile(_TITLE)


def people_in(text: str) -> list[tuple[str, str]]:
    """``(name, office)`` for each person ``text`` names next to an office: ``省长许昆林作…``,
    ``自治区主席王莉霞在…``, ``龚正市长在…``, ``韩志峰处长的讲话``. The office is the title word
    with what precedes it in the same phrase (``四川省人民政府省长``). A name must end at a
    boundary (在, 作, 的, punctuation, the end), so 2, 3 and 4 character names are told apart."""
    key = simplified(text)
    found: list[tuple[str, str]] = []
    for m in _title_pattern().finditer(key):
        s, e = m.span()
        for length in (3, 2, 4):
            name = text[e : e + length]
            after = key[e + length : e + length + 1]
            if len(name) == length and (not after or after in _AFTER_NAME) and person_name(name):
                start = max(key.rfind(c, 0, s) for c in "，。；：:、 —-（(日上") + 1
                found.append((name, text[start:e]))
                break
        else:
            for length in (3, 2, 4):
                if s - length < 0:
                    continue
                name = text[s - length : s]
                before = key[s - length - 1] if s - length > 0 else ""
                if (not before or before in _BEFORE_NAME) and person_name(name):
                    found.append((name, text[s:e]))
                    break
    return found


# A speaker named on a line of their own: 致辞：饶毅（教师代表、科学家）, 主讲人：张三, By yinguoqing.
_LABELLED = re.compile(
    rf"^(?:致辞|讲话|发言|演讲|主讲|主讲人|讲话人|发言人|报告人|演讲人|作者)[:：]\s*(?P<name>{NAME_CHARS}(?:\s?{NAME_CHARS}){{1,3}})"
    r"\s*(?:[（(][^）)]{0,30}[）)])?$"
)
_BY = re.compile(r"^(?:By|BY|by)\s+(?P<name>[A-Za-z][A-Za-z .'-]{1,40}|[\u4e00-\u9fff]{2,4})$")


def labelled_speaker(line: str) -> str:
    """The speaker a labelled line names (``致辞：饶毅（教师代表、科学家）``, ``By yinguoqing``)."""
    m = _LABELLED.match(line)
    if m and person_name(m.group("name")):
        return person_name(m.group("name"))
    m = _BY.match(line)
    return m.group("name").strip() if m else ""


# A paragraph that opens with its speaker's name and a colon: 崔忠付：尊敬的李万才市长，….
_SPEAKER_COLON = re.compile(rf"^(?P<name>{NAME_CHARS}{{2,4}})[:：]\s*\S")


def speaker_label(paragraph: str) -> str:
    """The name a transcript's paragraph opens with (``崔忠付：尊敬的…``), or ""."""
    m = _SPEAKER_COLON.match(paragraph)
    return person_name(m.group("name")) if m else ""


# 我是来自客服中心京东旗舰店的刘晓敏，/ 我是海外拓展组的李富涛，/ 我是本次的项目汇报人，连志林 /
# 我叫张三。The name ends the clause; what precedes it is where the speaker comes from.
_SELF = re.compile(r"(?:我是|我叫|本人是|我的名字是)(?P<rest>[^。！？!?；;]{0,40})")
_ROLE_END = re.compile(
    r"(?:的|志愿者|代表|汇报人|演讲人|演讲者|发言人|主讲人|学生|同学|员工|老师|队员|成员|选手|负责人)$"
)


def self_introduction(paragraph: str) -> str:
    """The name a speaker gives for themself near the start of a speech, or ""."""
    for m in _SELF.finditer(paragraph[:200]):
        rest = re.split(r"[，,。！!？?；;]", m.group("rest"))
        clause = m.group("rest")[: len(rest[0])]
        # the name closes the first clause (我是…的李富涛，), or stands alone in the second (…汇报人，连志林)
        candidates = [clause]
        if len(rest) > 1 and _ROLE_END.search(clause):
            candidates.append(rest[1])
        for part in candidates:
            part = part.strip()
            for length in (3, 2, 4):
                name, before = part[-length:], part[: -length]
                if len(part) >= length and (not before or _ROLE_END.search(before)) and person_name(name):
                    return name
    return ""
