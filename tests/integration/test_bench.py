"""``python -m bench --scale N`` end to end on the session broker, scaled down: the streamed
production, output counting by end offsets and memory series the million-record run relies on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, KafkaScope

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_scale_run_counts_every_output_and_samples_memory(
    kafka: KafkaScope, tmp_path: Path
) -> None:
    output = tmp_path / "scale.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--scale", "300", "--bootstrap-servers",
         kafka.bootstrap_servers, "--output", str(output)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(output.read_text(encoding="utf-8"))
    assert result["records"] == 300
    # Every 25th record is a long note read in windows; the rest are short.
    assert result["longest_text_chars"] > 300 > result["mean_text_chars"]
    assert result["records_per_s"] > 0
    [rss] = result["rss_mib_per_worker"]
    assert rss["ready"] > 0 and rss["end"] > 0
    assert result["memory_over_time"], "no memory samples"
    assert all(row[3] > 0 for row in result["memory_over_time"])  # the harness's own RSS
    assert "Memory over time" in output.with_suffix(".md").read_text(encoding="utf-8")
