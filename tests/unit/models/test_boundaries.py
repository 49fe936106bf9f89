"""Name boundaries: markers, sentence punctuation and unpaired brackets trimmed from names, or
the span dropped."""

from __future__ import annotations

import pytest

from models.boundaries import name_span, name_spans, names
from models.tags import Span


@pytest.mark.parametrize(
    ("text", "span", "expected"),
    [
        ("@张伟说", Span(0, 3, "PER"), Span(1, 3, "PER")),  # the mention marker is not the name
        ("#高德地图#", Span(0, 6, "ORG"), Span(1, 5, "ORG")),
        ("去了北京。", Span(2, 5, "LOC"), Span(2, 4, "LOC")),
        ("北京、上海", Span(0, 5, "LOC"), None),  # two names run together: no cut is safe
        ("@A@B", Span(0, 4, "PER"), None),
        ("路口吗?二二", Span(0, 6, "LOC"), None),
        ("@#", Span(0, 2, "PER"), None),  # nothing left
        ("Queen Mary Hospital", Span(0, 19, "ORG"), Span(0, 19, "ORG")),  # spaces are fine
        ("共1,000人", Span(1, 6, "NUM"), Span(1, 6, "NUM")),  # numbers are exempt
        ("张伟", Span(0, 2, "PER"), Span(0, 2, "PER")),
        ("   @奇趣博文", Span(0, 8, "PER"), Span(4, 8, "PER")),  # white space trimmed too
        ("哈哈哈哈", Span(0, 4, "PER"), None),  # laughter
        ("大爱阿门门门", Span(0, 6, "LOC"), None),
        ("TH000", Span(0, 5, "ORG"), Span(0, 5, "ORG")),  # digits may repeat
        ("张\ufffd伟", Span(0, 3, "PER"), None),  # text lost in decoding
        # A bracket or quotation mark whose other half is not in the name is not part of it.
        ("云帆科技（Yunfan Tech）宣布", Span(5, 17, "ORG"), Span(5, 16, "ORG")),
        ("《人民日报》", Span(0, 5, "ORG"), Span(1, 5, "ORG")),
        ("据新华社” 报道", Span(1, 6, "ORG"), Span(1, 4, "ORG")),  # white space, then the mark
        ("中国石油（集团）公司", Span(0, 10, "ORG"), Span(0, 10, "ORG")),  # pairs stay
        ("《人民日报》", Span(0, 6, "ORG"), Span(0, 6, "ORG")),
        # One still inside after trimming: the span ran across the mark; no cut is safe.
        ("人民日报》办", Span(0, 6, "ORG"), None),
        ("北京市朝阳区『双桥制药』", Span(0, 11, "ORG"), None),
        ("梁（启超）", Span(0, 4, "PER"), None),
        ("美国《世界新闻报》", Span(0, 8, "ORG"), None),
        ("“福特”号航母", Span(1, 5, "ORG"), None),
        # An escaped line break from a JSON/CSV export is white space, not part of a name.
        ("\\n\\n富顺县东湖镇", Span(0, 7, "LOC"), Span(4, 7, "LOC")),
        ("四川富顺县\\r\\n", Span(2, 9, "LOC"), Span(2, 5, "LOC")),
        ("公开\\n\\n发行", Span(2, 6, "LOC"), None),  # nothing left
        ("中\\n\\n国证监会", Span(0, 9, "ORG"), None),  # across a break: no cut is safe
        ("AB\\CD公司", Span(0, 7, "ORG"), None),  # any other backslash is a mark
        # A person's name ends before a title or the anonymizing 某.
        ("邀请温女士签字", Span(2, 5, "PER"), Span(2, 3, "PER")),
        ("熊某某被抓获", Span(0, 3, "PER"), Span(0, 1, "PER")),
        ("杨处长表示", Span(0, 3, "PER"), Span(0, 1, "PER")),
        ("某某说", Span(0, 2, "PER"), None),  # nothing left
        ("女士们", Span(0, 2, "PER"), None),
        ("张医生的医院", Span(0, 3, "ORG"), Span(0, 3, "ORG")),  # persons only
        ("周总理", Span(0, 3, "PER"), Span(0, 3, "PER")),  # 总 is left alone
    ],
)
def test_name_span(text: str, span: Span, expected: Span | None) -> None:
    assert name_span(text, span) == expected


def test_name_spans_keep_scores_of_what_they_keep() -> None:
    text = "@张伟、李娜去了北京"
    scored = [(Span(0, 3, "PER"), 0.9), (Span(1, 6, "PER"), 0.4), (Span(8, 10, "LOC"), 0.8)]
    assert name_spans(text, scored) == [(Span(1, 3, "PER"), 0.9), (Span(8, 10, "LOC"), 0.8)]


def test_names_drop_what_name_span_drops() -> None:
    text = "@张伟、李娜去了北京"
    spans = [Span(0, 3, "PER"), Span(1, 6, "PER"), Span(8, 10, "LOC")]
    assert names(text, spans) == [Span(1, 3, "PER"), Span(8, 10, "LOC")]
