#!/usr/bin/env bash
# Quick start: install, start a local Kafka, and run the main job on a few sample records.
# For now the main job is the pass-through slice (each record copied unchanged from
# quickstart.source to quickstart.sink by the Faust worker); the broker is left running.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
.venv/bin/nerstream local up

.venv/bin/python - <<'PY'
"""Produce a few records, run `nerstream passthrough` until they are copied, print the copies."""

import signal
import subprocess
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from streams import local_kafka
from streams.settings import load_settings

SOURCE, SINK, GROUP = "quickstart.source", "quickstart.sink", "nerstream-quickstart"
SAMPLES = [
    "张伟在北京大学读书。",
    "联合国总部位于纽约。",
    "李娜于2011年获得法网冠军。",
    "阿里巴巴集团在杭州成立。",
    "王芳把3本书送给了上海图书馆。",
]

settings = load_settings()
bootstrap = settings.kafka.bootstrap_servers
local_kafka.create_topics(bootstrap, [SOURCE, SINK], partitions=1)

# Read the sink from its current end, so a rerun prints only this run's copies.
reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{GROUP}-reader"})
for _ in range(20):  # a topic created a moment ago may not be in the metadata yet
    try:
        start = reader.get_watermark_offsets(TopicPartition(SINK, 0), timeout=10)[1]
        break
    except KafkaException:
        time.sleep(0.5)
else:
    sys.exit(f"topic {SINK} did not show up")
reader.assign([TopicPartition(SINK, 0, start)])

producer = Producer({"bootstrap.servers": bootstrap})
for number, text in enumerate(SAMPLES):
    producer.produce(SOURCE, key=f"sample-{number}".encode(), value=text.encode())
producer.flush(10)
print(f"produced {len(SAMPLES)} records to {SOURCE}")

settings.worker.data_dir.mkdir(parents=True, exist_ok=True)
worker_log = settings.worker.data_dir / "quickstart-worker.log"
with worker_log.open("wb") as log:
    worker = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "passthrough",
         "--source", SOURCE, "--sink", SINK, "--group", GROUP],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
copies = []
deadline = time.monotonic() + 120
try:
    while len(copies) < len(SAMPLES) and time.monotonic() < deadline:
        if worker.poll() is not None:
            sys.exit(f"the pass-through worker exited with {worker.returncode}; see {worker_log}")
        message = reader.poll(0.5)
        if message is not None and message.error() is None:
            copies.append((message.key().decode(), message.value().decode()))
finally:
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=60)
    reader.close()

print(f"copied by the worker to {SINK}:")
for key, value in copies:
    print(f"  {key}: {value}")
if len(copies) < len(SAMPLES):
    sys.exit(f"only {len(copies)} of {len(SAMPLES)} records came through; see {worker_log}")
PY

echo
echo "Kafka is still running at $(.venv/bin/nerstream settings | .venv/bin/python -c \
    'import json,sys; print(json.load(sys.stdin)["kafka"]["bootstrap_servers"])')."
echo "Stop it with:  .venv/bin/nerstream local down   (add --wipe to delete its data)"
