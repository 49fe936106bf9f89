"""Weak NUM labels for Chinese text: numerals as the People's Daily 1998 corpus tags them (``m``).

The MSRA corpus has no NUM entities, so training adds them with :func:`find_numbers`.

Convention (the hand-checked fixture ``tests/data/num_test.jsonl`` follows it too):

* NUM is a number or numeral expression: ``2642``, ``3.5``, ``1,200``, ``三百万``, ``两``, ``零``,
  multipliers after digits (``3.5万``, ``5亿``), percentages with their sign (``30%``, ``３０％``,
  ``百分之三十``), fractions (``三分之一``), ordinals with 第 (``第三``, ``第3``), approximations
  (``数十``, ``十几``, ``几十``, ``上百``, ``30多``, ``二十余万``, ``十来``个, adjacent numerals
  ``三四``, ``七八十``), Chinese decimals (``三点五``) and ``一半``. Not: ``半`` alone (``半年``),
  ``几``/``数`` alone (``几个``, ``数枚``), Roman numerals.
* Measure words and units are not part of it: ``三百万元`` -> ``三百万``, ``0.5mg`` -> ``0.5``,
  ``5千米`` -> ``5`` (千米/千克/千瓦... are units), ``12.6×10^9/L`` -> ``12.6``. A sign is not
  part of it (``-5`` -> ``5``).
* A range is two numbers: ``3至5``, ``3-5``, ``120/80`` each give two spans.
* Dates and times are not NUM (PD98 tags them ``t``): ``1998年``, ``九八年``, ``3月5日``,
  ``5时30分``, ``下午三点``, ``2024-03-05``, ``8:30``, ``90年代``, ``21世纪``, ``星期一``,
  ``周三``, ``初一``, holidays (``五一``节, ``十一``长假) and plan names (``九五``计划).
  Durations are NUM: ``3年``, ``三个月``, ``5天``, ``10分钟``.
* Words that merely contain numeral characters are not numbers: ``统一``, ``一些``, ``一样``,
  ``一起``, ``一直``, ``万一``, ``十分``, ``千万``不要, ``唯一``, ``之一``,
  names (``三峡``, ``四川``), idioms (``一心一意``), reduplication (``看一看``), determiners
  (``这一``, ``另一``, ``每一``), ``第一时间``, types (``2型``糖尿病), generations (``90后``),
  ``双11``, abbreviations with 大 (``十八大``, ``三大``), and a lone capital-form numeral
  except before a currency unit (``陆``胜民, ``伍``云霞, ``拾``到; ``陆元`` is a number).
* Digits that belong to a code are not numbers (``H1N1``, ``COVID-19``, ``5G``, keycap emoji);
  digits before a unit written in Latin letters are (``10mg``).

Approach: rules plus jieba's dictionary. A regular expression finds candidate numeral
expressions and skips numeric dates, times and versions; context rules drop dates, times and
codes. A candidate written in Chinese numerals is then checked against jieba's dictionary
segmentation of the sentence (HMM off, so it is deterministic): a dictionary word that starts
before the candidate (``统一``, ``之一``) or runs past it without being a numeral-plus-classifier
word (``一直``, ``三峡``) makes it a false friend; jieba tags many lexicalized words ``m``
(``一些``, ``一起``, ``十分``), so a curated stop list overrides those tags. Arabic digits skip
the dictionary. The jieba dictionary is the only model-like input; the rules are data.
Speed: about 45k MSRA sentences in a few seconds (jieba only runs on sentences with a Chinese
numeral candidate).
"""

from __future__ import annotations

import bisect
import functools
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import jieba

from models.tags import Span
from training.lexicon import jieba_dictionary

NUM = "NUM"

_DIGIT = "[0-9０-９]"
_DIGIT_CHARS = frozenset("0123456789０１２３４５６７８９")
# ○ (a white circle) stands for zero in People's Daily text: 二○○○年.
# The financial (capital) forms: 陆, 伍 and 拾 are also surnames and words (陆地, 拾到).
_CN_CAPITALS = "壹贰叁肆伍陆柒捌玖拾佰仟"
_CN_NUMERALS = "零〇○一二三四五六七八九十百千万亿两" + _CN_CAPITALS
_CN_MULTIPLIERS = "十百千万亿拾佰仟"
_CN = f"[{_CN_NUMERALS}]"
_CN_SET = frozenset(_CN_NUMERALS)
# Digit-by-digit numerals, as years are written (一九九八年, 二〇〇八年).
_CN_DIGITS = "〇○零一二三四五六七八九"

# The middle dot is a decimal point in People's Daily text (6·8万 = 6.8万).
_ARABIC = rf"{_DIGIT}+(?:[,，]{_DIGIT}{{3}}(?!{_DIGIT}))*(?:[.．·・]{_DIGIT}+)?"
_ARABIC_TAIL = "(?:[多余]?[十百千万亿])*[多余]?"
# 来 as in 十来个 / 100来人 (about ten / about a hundred) only before a measure word.
_LAI = f"(?:(?<=[{_CN_MULTIPLIERS}0０])来(?=[个位名人岁天年次分米元斤公户家项件]))?"
_CHINESE = (
    f"(?:[数几上](?=[{_CN_MULTIPLIERS}]))?{_CN}+"
    f"(?:几{_CN}*)?(?:(?<=[{_CN_MULTIPLIERS}])[多余]{_CN}*)?(?:点{_CN}+)?{_LAI}"
)
_NUMBER = f"(?:{_ARABIC}|{_CHINESE})"
# 8:30 is a time; a score like 89:75 is two numbers.
_HOUR = f"(?:[01０１]?{_DIGIT}|[2２][0-4０-４])"
_MINUTE = f"[0-5０-５]{_DIGIT}"

# Alternatives are tried in order at each position; the "skip" ones consume text that holds digits
# but no NUM (numeric dates and times, dotted versions/addresses, event names like 9·11事件, the
# 10^9 of a unit like ×10^9/L, the 双11 shopping festival).
_CANDIDATES = re.compile(
    rf"""
    (?P<skip>
        (?<!{_DIGIT}){_DIGIT}{{4}}[-/.－／．]{_DIGIT}{{1,2}}(?:[-/.－／．]{_DIGIT}{{1,2}})?(?!{_DIGIT})
      | (?<!{_DIGIT}){_HOUR}[:：]{_MINUTE}(?:[:：]{_MINUTE})?(?!{_DIGIT})
      | (?<!{_DIGIT}){_DIGIT}+(?:[.．]{_DIGIT}+){{2,}}
      | (?<!{_DIGIT}){_DIGIT}+[·・]{_DIGIT}+(?=事件|惨案|事变|地震|大地震|特大|暴雨|案件|袭击|空难)
      | (?<!{_DIGIT})10(?:\^[-−]?{_DIGIT}+|[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)
      | 双(?:11|12|十一|十二)
    )
  | (?P<num>
        {_NUMBER}分之{_NUMBER}
      | 第(?:{_ARABIC}{_ARABIC_TAIL}|{_CHINESE})
      | (?<!{_DIGIT}){_ARABIC}(?:[%％‰]|{_ARABIC_TAIL}{_LAI})
      | 一半
      | {_CHINESE}
    )
    """,
    re.VERBOSE,
)
_PER_DAY = re.compile(f"{_NUMBER}[次餐剂片粒]")
_RANGE_TAIL = re.compile(f"(?:至|到|[~～\\-－—–]){_NUMBER}")

# Units that start with 千: "5千米" is five kilometres, not five thousand metres.
_QIAN_UNITS = frozenset("米克瓦卡帕焦伏赫")

# Latin-letter units that may follow digits ("10mg"); other letters make the digits a code ("5G").
_LATIN_UNITS_CASED = frozenset({"g", "m", "s", "h", "l", "L", "d", "t", "V", "W", "U"})
_LATIN_UNITS_ANY_CASE = frozenset(
    """
    mg kg ug μg µg mcg ng ml dl μl µl km cm mm
    μm µm nm min ms iu mmol umol μmol mol mmhg
    kpa pa hz khz mhz ghz kw mw kv ma mah kwh wh
    kj kcal cal gb mb kb tb mbps gbps kbps bps
    bpm px ppm
    """.split()  # noqa: SIM905 (a word list reads better as text)
)

_TIME_OF_DAY = re.compile(
    "(?:上午|下午|晚上|凌晨|早上|中午|傍晚|清晨|夜里|早晨|夜间|今晚|今早|明早|晚|早)$"
)
_TWO_DIGIT_YEAR_CONTEXT = re.compile(
    f"(?:{_DIGIT}+|[{_CN_DIGITS}十]+)月|[底初末中度春夏秋冬]|上半年|下半年"
)
_HOLIDAYS = frozenset({"五一", "十一", "五四", "六一", "七一", "八一", "三八", "一二九", "九一八"})
_HOLIDAY_FOLLOWERS = (
    "节", "劳动节", "国际", "青年节", "儿童节", "妇女节", "建军节", "建党", "国庆", "长假",
    "黄金周", "假期", "前夕", "期间", "前后", "运动", "事变", "惨案",
)  # fmt: skip
_PLANS = frozenset({"八五", "九五", "十五", "十一五", "十二五", "十三五", "十四五"})
_PLAN_FOLLOWERS = ("计划", "规划", "期间", "时期", "末", "初")
_ADVERB_AFTER_QIANWAN = frozenset("不别要莫勿记得注意小心")

# A dictionary word that runs past a Chinese numeral is a numeral-plus-classifier word when its
# rest starts with one of these (三年, 五年计划, 一个半).
_CLASSIFIERS = frozenset(
    "个位名人次年岁天周日月时分秒种类件项条只头匹张本册部台辆架艘家所座栋层间套户口元角块斤吨"
    "米克升度倍届期批轮场趟遍回级点等成片粒支剂针瓶盒袋包杯碗份组对双副篇首句段章节页例床县省市国党"
    "亩股笔幅枚颗根株棵滴毫公英千平立款步美港欧季门封扇把盏堆群串束捆顶任代辈班起宗桩曲幕集卷版"
    "胎罐桶箱厘顷尺寸丈里码旬载局"
)
# Dictionary words that look like numeral words (jieba often tags them m) but are lexicalized:
# adverbs, discourse markers and set phrases, not counts.
_LEXICALIZED = frozenset(
    """
    一些 一下 一下子 一起 一点 一点儿 一点点 十分 一阵 一面 一番 一会儿 一会
    一方面 一路 一路上 一度 万岁 一身 五一 一辈子 一一 一手 一行 万一 万万 一线
    第一线 第一手 一派 一刻 一丝 一二 一贯 四下 四方 四处 四面 四周 一脸 一味
    万里 千里 万分 万家 一生 一系列 一部分 一眼 一声 一道 一次性 一口气 一连 一再
    一向 一律 一同 一齐 一旦 一举 一心 一早 一概 一经 一晃 一新 一带 三番 一流
    一体 一世 一时 一时间 一来 二来 一则 二则 一共 一口 一头 一把手 一等奖 零件
    零部件 三角 三角形 八角 一家人 百分点 百分比 一点一滴
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
# One-character words that form a dictionary word with the numeral after them (近三成, 前三名).
_QUANTITY_PREFIXES = frozenset("近前约逾超达共仅每")
# Proper names, abbreviations and idioms: a numeral inside them is not a count (三角洲, 四人帮).
_NAME_AND_IDIOM_TAGS = frozenset({"ns", "nr", "nrt", "nrfg", "nt", "nz", "j", "i"})


@dataclass(frozen=True)
class _Dictionary:
    tokenize: Callable[[str], Iterable[tuple[str, int, int]]]
    tags: dict[str, str]  # part of speech of dictionary words that contain a Chinese numeral


@functools.cache
def _dictionary() -> _Dictionary:
    jieba.setLogLevel(logging.WARNING)
    path = jieba_dictionary()
    tokenizer = jieba.Tokenizer(str(path))  # private instance: others may add words to jieba's
    tokenizer.initialize()
    tags: dict[str, str] = {}
    with path.open(encoding="utf-8") as file:
        for line in file:
            parts = line.split()
            if len(parts) == 3 and len(parts[0]) > 1 and not _CN_SET.isdisjoint(parts[0]):
                tags[parts[0]] = parts[2]

    def tokenize(text: str) -> Iterable[tuple[str, int, int]]:
        return tokenizer.tokenize(text, HMM=False)  # type: ignore[no-any-return]

    return _Dictionary(tokenize, tags)


def find_numbers(text: str) -> list[Span]:
    """NUM spans in ``text`` (character offsets, end exclusive), sorted and non-overlapping."""
    spans: list[Span] = []
    tokens: list[tuple[str, int, int]] | None = None
    for match in _CANDIDATES.finditer(text):
        if match.group("num") is None:
            continue
        start, end = match.span()
        end = _strip_unit_qian(text, start, end)
        if (
            end == start
            or _rejected_by_context(text, start, end)
            or _only_circles(text, start, end)
        ):
            continue
        if not _has_digit(text[start:end]):
            if tokens is None:
                tokens = list(_dictionary().tokenize(text))
            start = _check_against_words(text, start, end, tokens)
            if start < 0:
                continue
        spans.append(Span(start, end, NUM))
    return spans


def _only_circles(text: str, start: int, end: int) -> bool:
    """A lone ○ is a bullet or a placeholder, not a zero."""
    return text.count("○", start, end) == end - start


def _has_digit(text: str) -> bool:
    return not _DIGIT_CHARS.isdisjoint(text)


def _strip_unit_qian(text: str, start: int, end: int) -> int:
    if text[end - 1] == "千" and end < len(text) and text[end] in _QIAN_UNITS:
        end -= 1
        while end > start and text[end - 1] in "多余":
            end -= 1
    return end


def _rejected_by_context(text: str, start: int, end: int) -> bool:
    candidate = text[start:end]
    return (
        (_has_digit(candidate) and _is_code(text, start, end))
        or _is_temporal(text, start, end)
        or _is_name(text, candidate, end)
        or (candidate == "一" and start > 0 and _is_determiner_yi(text, start, end))
        or _is_lone_capital(text, candidate, end)
    )


def _is_lone_capital(text: str, candidate: str, end: int) -> bool:
    """One capital-form numeral is an amount only before a currency unit (陆元); otherwise it is a
    surname or a word (陆胜民, 伍云霞, 拾到, 忠贞不贰). Runs (壹仟, 拾壹) are amounts."""
    numerals = [char for char in candidate if char in _CN_SET]
    return (
        len(numerals) == 1
        and numerals[0] in _CN_CAPITALS
        and text[end : end + 1] not in ("元", "圆", "角")
    )


def _is_determiner_yi(text: str, start: int, end: int) -> bool:
    """这一/那一/另一/每一 (this, that, another, each) and 看一看 (reduplication) are not counts."""
    before = text[start - 1]
    return before in "这那另每哪任" or (end < len(text) and before == text[end])


def _is_latin(char: str) -> bool:
    return char != "" and (
        ("a" <= char.lower() <= "z") or ("ａ" <= char.lower() <= "ｚ") or char in "μµ"
    )


def _is_code(text: str, start: int, end: int) -> bool:
    """Digits that are part of an identifier (H1N1, COVID-19, 5G, www.163.com, keycap emoji)."""
    before = text[start - 1] if start > 0 else ""
    if _is_latin(before) or (
        before and before in "-_.@#－" and start > 1 and _is_latin(text[start - 2])
    ):
        return True
    after = text[end] if end < len(text) else ""
    if after and after in "\ufe0f\u20e3":
        return True
    if after and after in "-_.@－" and end + 1 < len(text) and _is_latin(text[end + 1]):
        return True
    if _is_latin(after):
        letters_end = end
        while letters_end < len(text) and _is_latin(text[letters_end]):
            letters_end += 1
        if letters_end < len(text) and (text[letters_end].isdigit()):
            return True
        unit = text[end:letters_end]
        folded = unit.translate(_FULLWIDTH_TO_ASCII)
        return not (folded in _LATIN_UNITS_CASED or folded.lower() in _LATIN_UNITS_ANY_CASE)
    return False


_FULLWIDTH_TO_ASCII = {code: code - 0xFEE0 for code in range(0xFF21, 0xFF5B)}


def _is_temporal(text: str, start: int, end: int) -> bool:
    candidate = text[start:end]
    if _is_temporal_suffix(text, start, end, end):
        return True
    # In a range ("3至5日", "1998至2000年") the first number takes the second one's suffix.
    range_tail = _RANGE_TAIL.match(text, end)
    if range_tail and _is_temporal_suffix(text, start, end, range_tail.end()):
        return True
    before = text[max(0, start - 2) : start]
    single = len(candidate) == 1
    if before in ("星期", "礼拜") and single:
        return True
    if before.endswith("周") and single and candidate in "一二三四五六":
        return text[end : end + 1] not in set("次遍回趟天个小")
    if before.endswith("初") and single and candidate in "一二三四五六七八九十":
        return True
    # "3月5" and "十月十五" (a day without 日) are dates; "每月3次" is not.
    return (
        len(before) == 2
        and before[1] == "月"
        and (before[0] in _DIGIT_CHARS or before[0] in _CN_SET)
        and text[end : end + 1] not in set("次个")
    )


def _is_temporal_suffix(text: str, start: int, end: int, at: int) -> bool:
    candidate = text[start:end]
    after = text[at : at + 2]
    if after.startswith(("年代", "世纪")):
        return True
    if after.startswith("年"):
        return _is_year(text, start, end, at)
    if after.startswith("日"):
        # 3日 is a date; 3000日元 is money and 一日三次 is "three times a day".
        return not (after.startswith("日元") or _PER_DAY.match(text, at + 1))
    if after.startswith("月"):
        return True
    if after.startswith("号"):
        return start > 0 and text[start - 1] == "月"
    if after.startswith("时"):
        return "点" not in candidate and not candidate.startswith("第")
    time_chain = start >= 2 and text[start - 1] in "时点" and _is_numeral(text[start - 2])
    if after.startswith(("分", "秒")) and time_chain:
        return True
    if "点" in candidate and after.startswith(("分", "刻")):
        return True  # 三点五十分, 三点一刻
    if "点" in candidate or after.startswith("点"):
        time_of_day = _TIME_OF_DAY.search(text, max(0, start - 3), start) is not None
        if time_of_day:
            return True
        if after.startswith("点"):
            rest = text[at + 1 : at + 3]
            return (
                rest.startswith(("钟", "半", "整"))
                or re.match(f"(?:{_NUMBER})分", text[at + 1 : at + 8]) is not None
            )
    return False


def _is_numeral(char: str) -> bool:
    return char in _DIGIT_CHARS or char in _CN_SET


def _is_year(text: str, start: int, end: int, at: int) -> bool:
    candidate = text[start:end]
    if text[max(0, start - 2) : start] == "公元":
        return True
    if all(char in _DIGIT_CHARS for char in candidate):
        if len(candidate) == 4:
            return True
        if len(candidate) == 2:
            before = text[start - 1] if start > 0 else ""
            return (before != "" and before in "'’‘") or _TWO_DIGIT_YEAR_CONTEXT.match(
                text, at + 1
            ) is not None
        return False
    if all(char in _CN_DIGITS for char in candidate) and len(candidate) >= 2:
        if len(candidate) >= 3:
            return True
        # 三四年 (three or four years) counts; 九八年 ('98) is a year.
        first, second = (_CN_DIGITS.index(char) for char in candidate)
        return second != first + 1
    return False


def _is_name(text: str, candidate: str, end: int) -> bool:
    rest = text[end : end + 8]  # longer than any follower word below
    return (
        (candidate in _HOLIDAYS and rest.startswith(_HOLIDAY_FOLLOWERS))
        or (candidate in _PLANS and rest.startswith(_PLAN_FOLLOWERS))
        or (candidate == "千万" and rest[:1] in _ADVERB_AFTER_QIANWAN)
        or (candidate.startswith("第") and rest.startswith("时间"))  # 第一时间: at once
        or (len(candidate) <= 2 and rest.startswith("型"))  # 2型糖尿病: a type, a name
        or (not _has_digit(candidate) and rest.startswith("大"))  # 十八大, 三大: abbreviations
        or (_GENERATION.fullmatch(candidate) is not None and rest.startswith("后"))  # 90后
    )


_GENERATION = re.compile("[0-9０-９][0０5５]")


def _token_start(token: tuple[str, int, int]) -> int:
    return token[1]


def _check_against_words(
    text: str, start: int, end: int, tokens: list[tuple[str, int, int]]
) -> int:
    """The candidate's start if the dictionary segmentation supports it as a numeral, else -1.

    A leading 数/几/上/第 that belongs to the word before (总数, 以上, 次第) is dropped first.
    """
    tags = _dictionary().tags
    first = max(0, bisect.bisect_right(tokens, start, key=_token_start) - 1)
    for index in range(first, len(tokens)):
        word, word_start, word_end = tokens[index]
        if word_start >= end:
            break
        if word_end <= start:
            continue
        if word_start < start:
            if text[start] in "数几上第" and word_end == start + 1:
                return (
                    _check_against_words(text, start + 1, end, tokens)
                    if (start + 1 < end and _CHINESE_FULL.fullmatch(text, start + 1, end))
                    else -1
                )
            # 近三成, 前三名, 近两年来: a one-character prefix, then numeral + measure word
            if (
                word_start == start - 1
                and text[word_start] in _QUANTITY_PREFIXES
                and (word_end <= end or _is_measure_rest(text[end:word_end]))
            ):
                continue
            return -1
        if (
            word_end >= end
            and (
                word in _LEXICALIZED
                or (
                    tags.get(word) not in ("m", "mq")  # 十分钟 is a numeral word, 十分必要 is not
                    and any(
                        word[:length] in _LEXICALIZED
                        for length in range(end - word_start, len(word))
                    )
                )
            )
        ):
            return -1
        # jieba's m tag alone proves nothing (一点一滴, 零下 and 万一出 are all m).
        if word_end > end and (
            tags.get(word) in _NAME_AND_IDIOM_TAGS or not _is_measure_rest(text[end:word_end])
        ):
            return -1
    return start


def _is_measure_rest(rest: str) -> bool:
    """The rest of a word after its numeral starts with a measure word and holds no numeral
    (一点一滴, 三心二意 are idioms)."""
    return rest[0] in _CLASSIFIERS and _CN_SET.isdisjoint(rest)


_CHINESE_FULL = re.compile(f"{_NUMBER}分之{_NUMBER}|{_CHINESE}")
