#!/usr/bin/env bash
# Ingest measured from outside the process: wrk sends correctly signed Shopify orders (2.8-3.7 KB, each
# with its own X-Shopify-Webhook-Id) at a fixed concurrency to the release build of Hookplane, with full
# durability, and in the same run, round by round, to a bare poem endpoint that only reads the body.
# Prints each round's rate, p50 and p99 latency and the server's CPU time per request, and the median
# ratio Hookplane / bare.
#
#   benches/external/run.sh [--rounds 3] [--seconds 10] [--connections 64] [--threads 2]
#
# Needs wrk (Debian and Ubuntu: apt-get install wrk) and cargo. The data directory is temporary, unless
# BENCH_DATA_DIR names one (a large store kept from an earlier run, say); other HOOKPLANE_
# variables reach the server (HOOKPLANE_STORAGE__CACHE_MIB=32).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.."

rounds=3 seconds=10 connections=64 threads=2
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk > /dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

secret=bench-shopify-secret
hookplane_port=${HOOKPLANE_BENCH_PORT:-18491}
bare_port=${BARE_BENCH_PORT:-18492}
work=$(mktemp -d "${TMPDIR:-/tmp}/hookplane-external-XXXX")
pids=()
cleanup() {
  for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --quiet --bin hookplane
# The bench's own executable: building it also builds the package's binaries, listed alongside.
bare=$(cargo bench --bench bare --no-run --message-format=json \
  | grep '"name":"bare"' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -x "$bare" ] || { echo "the bare endpoint did not build" >&2; exit 1; }
"$bare" --bodies "$work/bodies.tsv" "$secret"

HOOKPLANE_LISTEN=127.0.0.1:$hookplane_port HOOKPLANE_DATA_DIR=${BENCH_DATA_DIR:-$work/data} HOOKPLANE_LOG=warn \
  HOOKPLANE_MASTER_KEY=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f \
  SHOPIFY_WEBHOOK_SECRET=$secret target/release/hookplane serve 2> "$work/hookplane.log" &
hookplane_pid=$!
pids+=("$hookplane_pid")
"$bare" --serve "127.0.0.1:$bare_port" &
bare_pid=$!
pids+=("$bare_pid")
for port in "$hookplane_port" "$bare_port"; do
  up=no
  for _ in $(seq 300); do
    (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null && { up=yes; break; }
    sleep 0.1
  done
  if [ "$up" = no ]; then
    echo "nothing listens on port $port after 30 s; Hookplane's log ends:" >&2
    tail -20 "$work/hookplane.log" >&2
    exit 1
  fi
done

# CPU time of a process in clock ticks (USER_HZ, 100 a second on Linux).
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# One wrk run against a server; prints "rate p50 p99 µs-per-request", and fails on any answer but 2xx.
measure() {
  local port=$1 pid=$2 duration=$3 run=$4 before after out
  before=$(ticks "$pid")
  out=$(wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -s benches/external/shopify.lua \
    "http://127.0.0.1:$port" -- "$work/bodies.tsv" "$run")
  after=$(ticks "$pid")
  if grep -q "Non-2xx\|Socket errors" <<< "$out"; then
    echo "$out" >&2
    echo "answers other than 2xx or socket errors: the figures would not count accepted webhooks" >&2
    exit 1
  fi
  awk -v cpu=$((after - before)) '
    / requests in / { requests = $1 }
    /Requests\/sec/ { rate = $2 }
    /^ +50%/ { p50 = $2 }
    /^ +99%/ { p99 = $2 }
    END { printf "%.0f %s %s %.1f\n", rate, p50, p99, cpu * 10000 / requests }' <<< "$out"
}

echo "external ingest benchmark: $(nproc) cores, wrk -t$threads -c$connections, ${seconds} s per round"
measure "$hookplane_port" "$hookplane_pid" 2 "warm-$RANDOM" > /dev/null
measure "$bare_port" "$bare_pid" 2 "warm-$RANDOM" > /dev/null
ratios=()
for round in $(seq "$rounds"); do
  run="r$round-$RANDOM$RANDOM"
  h=$(measure "$hookplane_port" "$hookplane_pid" "$seconds" "$run-h")
  b=$(measure "$bare_port" "$bare_pid" "$seconds" "$run-b")
  read -r h_rate h_p50 h_p99 h_cpu <<< "$h"
  read -r b_rate b_p50 b_p99 b_cpu <<< "$b"
  ratio=$(awk -v h="$h_rate" -v b="$b_rate" 'BEGIN { printf "%.3f", h / b }')
  ratios+=("$ratio")
  printf 'round %d: hookplane %6d/s p50 %-8s p99 %-8s %5.1f µs CPU/request | bare %6d/s p50 %-8s p99 %-8s %5.1f µs | ratio %s\n' \
    "$round" "$h_rate" "$h_p50" "$h_p99" "$h_cpu" "$b_rate" "$b_p50" "$b_p99" "$b_cpu" "$ratio"
done
printf 'median ratio hookplane / bare: %s\n' "$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
