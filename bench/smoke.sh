#!/usr/bin/env bash
# Every bench script once at a tiny size: they keep running as documented (CI runs this).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
run() { echo "== bench/$*"; "$python" "bench/$@" > "${BENCH_SMOKE_LOG:-/dev/null}" 2>&1 || { echo "bench/$1 failed:"; "$python" "bench/$@" 2>&1 | tail -30; exit 1; }; }
run ingest.py --sizes 2000
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
run search.py --papers 2000 --queries 5 --embed-sample 16 --store "$scratch/search.db"
run vector_memory.py --store "$scratch/search.db" --processes 1 --queries 5
run pages.py --store "$scratch/search.db" --entries 200 --requests 3
run web_load.py --papers 400 --duration 1 --connections 4 --client python
run digest.py --papers 400 --subscribers 50
run signin_flood.py --attempts 20
run forgot_timing.py --requests 3 --smtp-timeout 2
run mixed_load.py --papers 400 --clients 10 --duration 3
run spelling.py --docs 300 --queries 10
run keyword_engines.py --docs 300 --queries 10
run rerank.py --docs 200 --queries 10 --grid small
run topic_search.py --papers 40 --store "$scratch/topic.db"  # says "skipped" without the shared data
run vector_engines.py --papers 1000 --queries 5
run for_you.py --papers 1000 --signals 100 --requests 3
run collection_page.py --papers 300 --requests 3 --parallel 4
run embed.py --abstracts 8 --rounds 1
run backup.py --papers 300 --members 10 --votes 500 --comments 50 --alone 0.5  # says "skipped" without the shared data
run metrics_overhead.py --papers 300 --rounds 2 --requests 3 --scrapes 3 --cold 0
# the container bench builds an image (minutes, as root, with podman): here only its --check
echo "== bench/container.sh --check"; bash bench/container.sh --check
echo "bench smoke: every script ran"
