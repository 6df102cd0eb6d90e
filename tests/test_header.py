"""speechrag.header: parse_header on the document fixtures (through read_document) and on
realistic header variants, including lines that must NOT be taken for a header."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from speechrag.formats import read_document
from speechrag.header import MAX_HEADER_LINES, Header, Trailer, find_place, parse_date, parse_header, parse_trailer

DOCS = Path(__file__).parent / "fixtures" / "documents"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "report-nested-tables.docx",
            Header("政府工作报告", "2017-02-11", "李建国", "在青山区第十八届人民代表大会第一次会议上", "青山区", 3),
        ),
        (
            "speech-headings.docx",
            Header(
                "在全市农村饮水安全工作会议上的讲话",
                "2018-03-20",
                "王晓东",
                "在全市农村饮水安全工作会议上",
                "商丘市",
                3,
            ),
        ),
        (
            "old-speech.doc",
            Header("张明同志在全县教育工作会议上的讲话", "2015-09-08", "张明", "在全县教育工作会议上", "", 2),
        ),
        (
            "speech.pdf",
            Header(
                "在全省文化惠民工程推进会上的讲话", "2019-06-12", "赵文华", "在全省文化惠民工程推进会上", "河南省", 3
            ),
        ),
        (
            "page.html",
            Header(
                "仙桃市委书记刘强在全市优化营商环境大会上的讲话",
                "2019-03-05",
                "刘强",
                "在全市优化营商环境大会上",
                "仙桃市",
                2,
            ),
        ),
        (
            "page-gbk.html",
            Header("在全区安全生产工作会议上的讲话", "2020-01-06", "孙丽", "在全区安全生产工作会议上", "海淀区", 3),
        ),
        (
            "report-gbk-crlf.txt",
            Header("政府工作报告", "2018-01-09", "刘宏", "在洛阳市第十五届人民代表大会第三次会议上", "洛阳市", 3),
        ),
    ],
)
def test_fixture_headers(name: str, expected: Header) -> None:
    if name.endswith(".doc") and not (shutil.which("antiword") or shutil.which("catdoc")):
        pytest.skip("apt-get install antiword (bash scripts/dev test does)")
    doc = read_document(DOCS / name)
    header = parse_header(doc.lines, title_hint=doc.title, filename=name)
    assert header == expected
    # the line after the header is the salutation: header lines never become passages, the
    # salutation is left to corpus.py
    assert doc.lines[header.consumed] in ("同志们：", "各位代表：")


VARIANTS: list[tuple[str, list[str], Header]] = [
    (
        "main title + dashed subtitle, date, byline",
        [
            "凝心聚力 砥砺前行 奋力开创经济发展新局面",
            "——在全市经济工作会议上的讲话",
            "（2017年12月28日）",
            "周建华",
            "同志们：",
        ],
        Header(
            "凝心聚力砥砺前行奋力开创经济发展新局面——在全市经济工作会议上的讲话",
            "2017-12-28",
            "周建华",
            "在全市经济工作会议上",
            "",
            4,
        ),
    ),
    (
        "title cut before 上的讲话",
        ["在全县农村人居环境整治工作推进会", "上的讲话", "2018年5月4日", "同志们："],
        Header(
            "在全县农村人居环境整治工作推进会上的讲话", "2018-05-04", "", "在全县农村人居环境整治工作推进会上", "", 3
        ),
    ),
    (
        "subtitle without a dash",
        ["坚定信心 真抓实干", "在全区经济工作会议上的讲话", "各位领导、同志们："],
        Header("坚定信心真抓实干——在全区经济工作会议上的讲话", "", "", "在全区经济工作会议上", "", 2),
    ),
    (
        "date in Chinese numerals",
        ["在全市春季农业生产工作会议上的讲话", "二〇一七年二月十一日", "同志们："],
        Header("在全市春季农业生产工作会议上的讲话", "2017-02-11", "", "在全市春季农业生产工作会议上", "", 2),
    ),
    (
        "government work report with dashed date-and-occasion line and office + name",
        [
            "政府工作报告",
            "——2017年2月11日在青山区第十八届人民代表大会第一次会议上",
            "青山区人民政府区长　　李建国",
            "各位代表：",
        ],
        Header("政府工作报告", "2017-02-11", "李建国", "在青山区第十八届人民代表大会第一次会议上", "青山区", 3),
    ),
    (
        "date + 在…上 sentence without a dash",
        ["政府工作报告", "2018年1月9日在洛阳市第十五届人民代表大会第三次会议上", "各位代表："],
        Header("政府工作报告", "2018-01-09", "", "在洛阳市第十五届人民代表大会第三次会议上", "洛阳市", 2),
    ),
    (
        "newspaper date line with 来源",
        [
            "张三在全市安全生产电视电话会议上强调",
            "2019-03-05 08:12 来源：人民网",
            "3月4日下午，全市安全生产电视电话会议召开。",
        ],
        Header("张三在全市安全生产电视电话会议上强调", "2019-03-05", "张三", "在全市安全生产电视电话会议上", "", 2),
    ),
    (
        "来源 line, then the speech's own date",
        ["在全市招商引资工作会议上的讲话", "来源：市政府办公室", "（2016年3月1日）", "同志们："],
        Header("在全市招商引资工作会议上的讲话", "2016-03-01", "", "在全市招商引资工作会议上", "", 3),
    ),
    (
        "speech date wins over the page's publication date",
        ["在全区安全生产工作会议上的讲话", "发布时间：2020-01-08", "（2020年1月6日）", "同志们："],
        Header("在全区安全生产工作会议上的讲话", "2020-01-06", "", "在全区安全生产工作会议上", "", 3),
    ),
    (
        "speaker in the title: 张三同志在…上的讲话",
        ["张三同志在全县农村工作会议上的讲话", "（2018年1月5日）", "同志们："],
        Header("张三同志在全县农村工作会议上的讲话", "2018-01-05", "张三", "在全县农村工作会议上", "", 2),
    ),
    (
        "…市长 王五同志作政府工作报告",
        ["2019年政府工作报告", "市长 王五同志作政府工作报告", "各位代表："],
        Header("2019年政府工作报告", "", "王五", "", "", 2),
    ),
    (
        "byline with a space inside the name",
        ["在全市教育大会上的讲话", "李　四", "（2016年9月9日）", "同志们："],
        Header("在全市教育大会上的讲话", "2016-09-09", "李四", "在全市教育大会上", "", 3),
    ),
    (
        "year and month only",
        ["在全区组织工作会议上的讲话", "（2015年3月）", "同志们："],
        Header("在全区组织工作会议上的讲话", "2015-03", "", "在全区组织工作会议上", "", 2),
    ),
    (
        "full-width digits",
        ["在全市经济运行分析会上的讲话", "（２０１９年７月１５日）", "同志们："],
        Header("在全市经济运行分析会上的讲话", "2019-07-15", "", "在全市经济运行分析会上", "", 2),
    ),
    (
        "province office",
        ["在全省文化惠民工程推进会上的讲话", "2019年6月12日", "河南省文化和旅游厅厅长　赵文华", "同志们："],
        Header("在全省文化惠民工程推进会上的讲话", "2019-06-12", "赵文华", "在全省文化惠民工程推进会上", "河南省", 3),
    ),
    (
        "an autonomous region in the occasion",
        ["在内蒙古自治区党委全委会上的讲话", "（2020年1月3日）", "同志们："],
        Header("在内蒙古自治区党委全委会上的讲话", "2020-01-03", "", "在内蒙古自治区党委全委会上", "内蒙古自治区", 2),
    ),
    (
        "a division jieba's dictionary does not know, by the short form of its name",
        ["政府工作报告", "寻甸县人民政府县长　马向东", "各位代表："],
        Header("政府工作报告", "", "马向东", "", "寻甸县", 2),
    ),
    (
        "—— date, office + name, occasion and 的讲话 in one line",
        ["2025年湖北省政府工作报告",
            "——2025年1月14日湖北省人民政府主席王丽华在湖北省第十四届人民代表大会第三次会议上的讲话",
         "各位代表："],
        Header("2025年湖北省政府工作报告", "2025-01-14", "王丽华", "在湖北省第十四届人民代表大会第三次会议上",
            "湖北省", 2),
    ),
    (
        "date, occasion, office + name 作政府工作报告。 in one sentence",
        ["2025年湖北省政府工作报告", "来源：湖北日报",
         "2025年1月20日在湖北省第十四届人民代表大会第三次会议上湖北省省长周明翔作政府工作报告。", "各位代表："],
        Header("2025年湖北省政府工作报告", "2025-01-20", "周明翔", "在湖北省第十四届人民代表大会第三次会议上",
            "湖北省", 3),
    ),
    (
        "---- date, name before office, 会议的 without 上",
        ["2025年武汉市政府工作报告", "----2025年1月15日龚明市长在武汉市第十六届人民代表大会第三次会议的政府工作报告",
         "来源：湖北日报", "各位代表："],
        Header("2025年武汉市政府工作报告", "2025-01-15", "龚明", "在武汉市第十六届人民代表大会第三次会议上",
            "武汉市", 3),
    ),
    (
        "a newspaper's own title under the compiler's, then date + occasion + 省长 name",
        ["2025年湖北省政府工作报告", "来源：湖北日报", "政府工作报告",
         "2025年1月14日在湖北省第十四届人民代表大会第三次会议上省长毛建明作政府工作报告。", "各位代表："],
        Header("2025年湖北省政府工作报告", "2025-01-14", "毛建明", "在湖北省第十四届人民代表大会第三次会议上",
            "湖北省", 4),
    ),
    (
        "acting office and a name set off by spaces",
        ["政府工作报告", "——2025年1月19日在湖北省第十四届人民代表大会第三次会议上", "代省长 罗东明　　", "各位代表："],
        Header("政府工作报告", "2025-01-19", "罗东明", "在湖北省第十四届人民代表大会第三次会议上", "湖北省", 3),
    ),
    (
        "an office alone on its line, then the name (国务院总理 / 李　强)",
        ["政府工作报告", "——2024年3月5日在第十四届全国人民代表大会第二次会议上", "国务院总理　", "李　强",
            "各位代表："],
        Header("政府工作报告", "2024-03-05", "李强", "在第十四届全国人民代表大会第二次会议上", "", 4),
    ),
    (
        "a title cut across two lines",
        ["政府工作报", "告", "——2021年3月5日在第十三届全国人民代表大会第四次会议上", "各位代表："],
        Header("政府工作报告", "2021-03-05", "", "在第十三届全国人民代表大会第四次会议上", "", 3),
    ),
    (
        "a web page: published date with 发布人, then a dated caption naming the event",
        ["物流与采购联合会副会长崔明付致辞", "发布时间：2011-07-14 发布人：-新浪财经",
         "2011年7月13日-16日，由武汉市人民政府主办的“2011·东北亚煤炭交易会”在武汉举行。图为副会长崔明付。",
         "崔明付：尊敬的各位来宾，大家下午好。"],
        Header("物流与采购联合会副会长崔明付致辞", "2011-07-14", "崔明付", "在2011·东北亚煤炭交易会上", "武汉市", 3),
    ),
    (
        "an issuer and its date under the title",
        ["武汉市2022年国民经济和社会发展统计公报", "武汉市统计局  国家统计局武汉调查队", "（2023年4月12日）",
         "2022年，全市上下坚持稳中求进。"],
        Header("武汉市2022年国民经济和社会发展统计公报", "2023-04-12", "", "", "武汉市", 3),
    ),
    (
        "an editor's note before the speech names who spoke",
        ["在IPD动员大会上的讲话", "1999年4月17日",
         "【导读】流程的核心是反映业务的本质。任正非很清楚这一点，因此在动员会上放出狠话：学不好就杀头！",
         "我们有幸能找到一个很好的老师。"],
        Header("在IPD动员大会上的讲话", "1999-04-17", "任正非", "在IPD动员大会上", "", 3,
               (("导读", "流程的核心是反映业务的本质。任正非很清楚这一点，因此在动员会上放出狠话：学不好就杀头！"),)),
    ),
    (
        "name + office + 的讲话 in the title, and a date glued to 来源",
        ["国家发展改革委投资司韩志明处长的讲话", "2011年09月26来源：", "各位代表，同志们："],
        Header("国家发展改革委投资司韩志明处长的讲话", "2011-09-26", "韩志明", "", "", 2),
    ),
    (
        "blog metadata: a field and its value on the next line",
        ["看一篇毕业致辞的感受", "发表于", "2016-07-07", "分类于", "思维改变生活", "有人说，美好的理想是廉价的。"],
        Header("看一篇毕业致辞的感受", "2016-07-07", "", "", "", 5),
    ),
    (
        "发言稿 alone is the title",
        ["发言稿", "最近单位决定举办干部培训班，对我们60余人进行了为期一个月的培训。"],
        Header("发言稿", consumed=1),
    ),
    (
        "office + comrade + 在…上 in the title",
        ["仙桃市委书记刘强在全市优化营商环境大会上的讲话", "同志们："],
        Header("仙桃市委书记刘强在全市优化营商环境大会上的讲话", "", "刘强", "在全市优化营商环境大会上", "仙桃市", 1),
    ),
]


@pytest.mark.parametrize(("lines", "expected"), [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_header_variants(lines: list[str], expected: Header) -> None:
    assert parse_header(lines, filename="x.docx") == expected


def test_preamble_lines_are_consumed_but_not_titles() -> None:
    lines = ["附件2", "在全市档案工作会议上的讲话", "（根据录音整理）", "（2021年4月2日）", "同志们："]
    assert parse_header(lines) == Header("在全市档案工作会议上的讲话", "2021-04-02", "", "在全市档案工作会议上", "", 4)


NEGATIVES: list[tuple[str, list[str], Header]] = [
    (
        "a body sentence that starts with a date",
        ["2017年2月11日，区委召开常委会议，研究部署全年工作。", "会议强调，要抓好落实。"],
        Header("讲话稿", consumed=0),
    ),
    (
        "a body sentence about a comrade's speech",
        ["张三同志在会上作了重要讲话，我完全同意。", "下面，我讲三点意见。"],
        Header("讲话稿", consumed=0),
    ),
    (
        "a section heading first",
        ["一、充分认识做好今年工作的重要性", "今年是关键之年。"],
        Header("讲话稿", consumed=0),
    ),
    ("a salutation first", ["同志们：", "今天我们召开会议。"], Header("讲话稿", consumed=0)),
    (
        "开发区 is no place, 目录 is no byline",
        ["在全市开发区工作会议上的讲话", "目录", "同志们："],
        Header("在全市开发区工作会议上的讲话", "", "", "在全市开发区工作会议上", "", 1),
    ),
    (
        "社区 is no place",
        ["在社区工作者表彰大会上的讲话", "同志们："],
        Header("在社区工作者表彰大会上的讲话", "", "", "在社区工作者表彰大会上", "", 1),
    ),
    (
        "全市 / 全县 are no places, and a date inside the body is not the speech's date",
        ["在全县教育工作会议上的讲话", "同志们：", "2016年9月1日，全县新建学校正式开学。"],
        Header("在全县教育工作会议上的讲话", "", "", "在全县教育工作会议上", "", 1),
    ),
    (
        "a body line ending in an office and a name is no speaker line",
        ["会上，我们向全国劳动模范、县政协委员李明学习。"],
        Header("讲话稿", consumed=0),
    ),
    (
        "a greeting with a name is the body, not a title",
        ["大家好，我是本次的项目汇报人，连志林", "宋朝诗人曾有诗。"],
        Header("讲话稿", consumed=0),
    ),
    (
        "an enumerated line is the body, not a title",
        ["一.对于活动提前结束的说明以及后面工作的改进", "二.本次活动的主机监控数据展示"],
        Header("讲话稿", consumed=0),
    ),
    (
        "a date line body sentence ending in 。 without a speech word",
        ["2019年6月12日在全省会议上我们部署了工作。", "下面讲三点意见。"],
        Header("讲话稿", consumed=0),
    ),
    (
        "在工作上 is no occasion (no meeting)",
        ["我们要在工作上下功夫，在落实上见实效。"],
        Header("讲话稿", consumed=0),
    ),
]


@pytest.mark.parametrize(("lines", "expected"), [v[1:] for v in NEGATIVES], ids=[v[0] for v in NEGATIVES])
def test_header_negatives(lines: list[str], expected: Header) -> None:
    assert parse_header(lines, filename="corpus/讲话稿.docx") == expected


TRAILERS: list[tuple[str, list[str], Trailer]] = [
    ("name and date", ["天道酬勤。", "张晓明", "2019.1.2"], Trailer("2019-01-02", "张晓明", consumed=2)),
    ("a byline in Latin letters", ["祝愿各位新年快乐。", "By  yinguoqing", "2017/12/12"],
     Trailer("2017-12-12", "yinguoqing", consumed=2)),
    ("an issuer in brackets", ["农村居民人均可支配收入9268元。", "（青山县统计局）"],
        Trailer(issuer="青山县统计局", consumed=1)),
    ("a photo caption naming the speaker", ["最后谨祝各位校友身体健康！", "汪廣平 校長 (中)"],
     Trailer(speaker="汪廣平", consumed=1)),
    ("signers whose names are images", ["新年快乐！", "党委书记:", "院      长:"], Trailer(consumed=2)),
    ("an end mark", ["谢谢大家！", "（完）"], Trailer(consumed=1)),
    ("an editor's closing note", ["这些原则是不会错的。",
        "（这是邓小平同志在总参谋部机关团以上干部上的讲话。一九七五年一月五日任总参谋长。）"],
     Trailer(speaker="邓小平", occasion="在总参谋部机关团以上干部上", consumed=1)),
    ("a speech's own last sentence is no trailer", ["我们就垮掉了。", "谢谢大家！"], Trailer()),
    ("a date glued to the last paragraph stays there", ["我们明天才会成功。（2014年7月7日）"], Trailer()),
]


@pytest.mark.parametrize(("lines", "expected"), [t[1:] for t in TRAILERS], ids=[t[0] for t in TRAILERS])
def test_trailers(lines: list[str], expected: Trailer) -> None:
    assert parse_trailer(lines) == expected


def test_title_falls_back_to_hint_then_file_name() -> None:
    body = ["同志们：", "今天开会。"]
    assert (
        parse_header(body, title_hint="在全市会议上的讲话_XX网", filename="a/b.docx").title == "在全市会议上的讲话_XX网"
    )
    assert parse_header(body, filename="a/在全市会议上的讲话.docx").title == "在全市会议上的讲话"
    # the hint still gives speaker and occasion when the text has no title line
    hinted = parse_header(body, title_hint="张三同志在全县农村工作会议上的讲话")
    assert (hinted.speaker, hinted.occasion) == ("张三", "在全县农村工作会议上")


def test_header_stops_after_max_lines() -> None:
    lines = ["在全市会议上的讲话"] + ["来源：市政府办公室"] * 20 + ["同志们："]
    assert parse_header(lines).consumed == MAX_HEADER_LINES


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2017年2月11日", "2017-02-11"),
        ("二〇一七年二月十一日", "2017-02-11"),
        ("二〇二〇年十二月三十一日", "2020-12-31"),
        ("二○一九年十月一日", "2019-10-01"),
        ("2019 年 6 月 12 日", "2019-06-12"),
        ("2019-03-05 08:12", "2019-03-05"),
        ("2019/3/5", "2019-03-05"),
        ("2019年6月", "2019-06"),
        ("二〇一九年", "2019"),
        ("2019年2月30日", ""),  # no such day
        ("1066年10月14日", ""),  # out of range for a speech
        ("第3页", ""),
    ],
)
def test_parse_date(text: str, iso: str) -> None:
    assert parse_date(text) == iso


@pytest.mark.parametrize(
    ("texts", "place"),
    [
        (["河南省商丘市人民政府市长"], "商丘市"),  # the most specific of adjacent places
        (["海淀区副区长"], "海淀区"),
        (["在全市经济工作会议上"], ""),
        (["本区人民政府"], ""),
        (["在高新区管委会工作会议上"], ""),
        (["城乡一体化工作"], ""),
        (["在超市食品安全会议上"], ""),
        (["", "在洛阳市第十五届人民代表大会第三次会议上"], "洛阳市"),
    ],
)
def test_find_place(texts: list[str], place: str) -> None:
    assert find_place(texts) == place
