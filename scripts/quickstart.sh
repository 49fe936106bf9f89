#!/usr/bin/env bash
# Quick start: install, start a local Kafka, run the NER worker (shipped model) on the bundled
# sample records (news and medical) and print their entity events.
# Kafka is left running; the worker is stopped at the end. Rerunning prints the new events only.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
nerstream=.venv/bin/nerstream
samples=streams/data/sample_records.jsonl

$nerstream local up

web=$($nerstream settings | .venv/bin/python -c \
    'import json,sys; w=json.load(sys.stdin)["worker"]; print(w["web_host"] + ":" + w["web_port"])')
log_dir=$($nerstream settings | .venv/bin/python -c \
    'import json,sys; print(json.load(sys.stdin)["worker"]["data_dir"])')
mkdir -p "$log_dir"
log="$log_dir/quickstart-worker.log"

echo "starting the worker (log: $log)"
$nerstream worker --worker-id quickstart >"$log" 2>&1 &
worker=$!
trap 'kill -TERM "$worker" 2>/dev/null && wait "$worker" 2>/dev/null; true' EXIT

# Ready = model loaded and input partitions assigned.
ready() {
    .venv/bin/python -c "import urllib.request as u; u.urlopen('http://$web/readyz', timeout=2)" \
        2>/dev/null
}
for _ in $(seq 1 360); do
    if ! kill -0 "$worker" 2>/dev/null; then
        echo "the worker stopped; see $log" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
    ready && break
    sleep 0.5
done
ready || { echo "the worker was not ready after 180 s; see $log" >&2; exit 1; }

count=$(grep -c . "$samples")
# {source} routes news and medical records to their own input topics.
$nerstream produce "$samples" --topic 'nerstream.records.{source}'
echo "entity events:"
$nerstream consume --group nerstream-quickstart --from-beginning --max "$count" \
    --idle-timeout 60 --output table

echo
echo "Kafka is still running at $($nerstream settings | .venv/bin/python -c \
    'import json,sys; print(json.load(sys.stdin)["kafka"]["bootstrap_servers"])')."
echo "Stop it with:  .venv/bin/nerstream local down   (add --wipe to delete its data)"
