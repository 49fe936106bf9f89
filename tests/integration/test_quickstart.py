"""The README's main command, ``scripts/quickstart.sh``, end to end on its own broker."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SAMPLES = REPO_ROOT / "streams" / "data" / "sample_records.jsonl"


@pytest.mark.timeout(600)
def test_quickstart_prints_one_entity_event_per_sample_record(
    tmp_path: Path, serving_model_dir: Path
) -> None:
    port, controller, web = free_port(), free_port(), free_port()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("NERSTREAM_")},
        "NERSTREAM_LOCAL_DATA_DIR": str(tmp_path / "kafka"),
        "NERSTREAM_LOCAL_PORT": str(port),
        "NERSTREAM_LOCAL_CONTROLLER_PORT": str(controller),
        "NERSTREAM_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
        "NERSTREAM_WORKER_WEB_PORT": str(web),
        "NERSTREAM_WORKER_DATA_DIR": str(tmp_path / "worker"),
        "NERSTREAM_MODEL_MODEL_DIR": str(serving_model_dir),
    }
    try:
        run = subprocess.run(
            ["bash", "scripts/quickstart.sh"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=540,
            check=False,
        )
    finally:
        subprocess.run(
            [str(REPO_ROOT / ".venv/bin/nerstream"), "local", "down", "--wipe"],
            env=env,
            capture_output=True,
            check=False,
        )
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    ids = [json.loads(line)["id"] for line in SAMPLES.read_text(encoding="utf-8").splitlines()]
    printed = re.findall(r"^\s+\d+:\d+\s+(\S+)\s", run.stdout, flags=re.MULTILINE)
    assert sorted(printed) == sorted(ids), run.stdout[-3000:]
    assert f"{len(ids)} of {len(ids)} records delivered" in run.stdout
