"""Two model directories side by side on the same data sets: which one to promote.

Each set is scored for both models with the same types (strict entity P/R/F1 per type and
micro, training.metrics); :func:`render` prints one table per set with the F1 change. Gold on the
correction files is the reviewers' word, so "corrections" rows say whether the new model learned
what the old one got wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.runtime import NerModel
from training.corpora import Example
from training.evaluate import default_types, evaluate_model
from training.metrics import Report


@dataclass(frozen=True)
class SetComparison:
    name: str
    sentences: int
    old: Report
    new: Report


def compare_models(
    old: NerModel,
    new: NerModel,
    sets: Sequence[tuple[str, Sequence[Example]]],
    progress: bool = False,
) -> list[SetComparison]:
    """Score both models on every set, over the types either model has and the set annotates."""
    comparisons = []
    for name, examples in sets:
        types = list(dict.fromkeys([*default_types(old, examples), *default_types(new, examples)]))
        comparisons.append(
            SetComparison(
                name,
                len(examples),
                evaluate_model(old, examples, types, progress).report,
                evaluate_model(new, examples, types, progress).report,
            )
        )
    return comparisons


def render(old_label: str, new_label: str, comparisons: Sequence[SetComparison]) -> str:
    """One table per set: P/R/F1 of OLD and NEW per type and micro, and the F1 change."""
    blocks = [f"OLD = {old_label}\nNEW = {new_label}"]
    header = (
        f"{'type':<8}{'OLD P':>8}{'OLD R':>8}{'OLD F1':>8}"
        f"{'NEW P':>8}{'NEW R':>8}{'NEW F1':>8}{'ΔF1':>8}{'support':>9}"
    )
    for comparison in comparisons:
        rows = [f"{comparison.name}: {comparison.sentences} sentences", header]
        names = [*comparison.old.per_type, "micro"]
        for name in names:
            old = comparison.old.micro if name == "micro" else comparison.old.per_type[name]
            new = comparison.new.micro if name == "micro" else comparison.new.per_type[name]
            rows.append(
                f"{name:<8}{old.precision:>8.2f}{old.recall:>8.2f}{old.f1:>8.2f}"
                f"{new.precision:>8.2f}{new.recall:>8.2f}{new.f1:>8.2f}"
                f"{new.f1 - old.f1:>+8.2f}{old.support:>9}"
            )
        blocks.append("\n".join(rows))
    return "\n\n".join(blocks)
