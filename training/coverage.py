"""How completely each corpus labels the names it contains: of the bare occurrences of a word
(中国, 北京, ...) in a corpus, those that are not part of a longer entity (中国银行), how many are
labelled as an entity themselves.

Corpora that leave many occurrences unlabelled teach a model to skip those names, which is a
convention, not noise: CLUENER labels 11 of its 294 bare 中国, MSRA nearly all. Run it with

    python -m training.coverage [--words 中国,北京,...] [DATA SET ...]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from training.corpora import Example
from training.data import read_data

DEFAULT_WORDS = ("中国", "北京", "美国", "日本", "香港", "台湾", "上海", "英国", "两岸")
DEFAULT_SETS = ("msra-train", "weibo-train", "resume-train", "cluener-train", "boson-train")


@dataclass(frozen=True)
class Coverage:
    labelled: int  # occurrences that are a span of the corpus
    total: int  # those plus the occurrences that overlap no span


def label_coverage(examples: Iterable[Example], words: Sequence[str]) -> dict[str, Coverage]:
    """Per word: its bare occurrences (overlapping ones counted) and how many are a span."""
    labelled = dict.fromkeys(words, 0)
    total = dict.fromkeys(words, 0)
    for example in examples:
        for word in words:
            start = example.text.find(word)
            while start >= 0:
                end = start + len(word)
                if any(span.start == start and span.end == end for span in example.spans):
                    labelled[word] += 1
                    total[word] += 1
                elif all(span.end <= start or end <= span.start for span in example.spans):
                    total[word] += 1
                start = example.text.find(word, start + 1)
    return {word: Coverage(labelled[word], total[word]) for word in words}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.coverage", description=__doc__)
    parser.add_argument("sets", nargs="*", default=list(DEFAULT_SETS), help="data set names")
    parser.add_argument("--words", default=",".join(DEFAULT_WORDS), help="comma-separated")
    args = parser.parse_args(argv)
    words = [word for word in args.words.split(",") if word]
    print("| set | " + " | ".join(words) + " |")
    print("|---|" + "---:|" * len(words))
    for name in args.sets:
        coverage = label_coverage(read_data(name), words)
        cells = (
            f"{c.labelled}/{c.total} ({100 * c.labelled / c.total:.0f} %)" if c.total else "0/0"
            for c in coverage.values()
        )
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
