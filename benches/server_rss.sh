#!/usr/bin/env bash
# Peak memory of triage at the server: one generated day of 5,000 client
# sessions over two hours (`tether gen --content server`), cut at 0.5 and
# 1 GB and whole (about 2 GB), each triaged (`--summary`) and decoded with
# /usr/bin/time -v; every verdict is also scored against the truth. The
# sessions still open at the cut are what triage must hold: memory should
# follow them, not the bytes read.
#   benches/server_rss.sh [SESSIONS] [DURATION]      (default 5000 2h)
set -euo pipefail
sessions=${1:-5000}
duration=${2:-2h}
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p tether
tether="$root/target/release/tether"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Peak RSS (MB) and wall seconds of one run, output discarded.
measure() {
  /usr/bin/time -f "%M %e" -o "$work/time" "$@" >/dev/null 2>&1 || true
  awk '{ printf "%6.1f MB %6.2f s", $1 / 1024, $2 }' "$work/time"
}

printf "%-8s %10s %8s %6s  %-20s  %-20s  %s\n" size bytes sessions open "decode (peak, wall)" "triage --summary" "verdicts = truth"
for cap in 500MB 1GB whole; do
  dir="$work/$cap"
  mkdir -p "$dir"
  size_arg=()
  [ "$cap" = whole ] || size_arg=(--size "$cap")
  "$tether" gen --content server --sessions "$sessions" --duration "$duration" \
    "${size_arg[@]}" -o "$dir/server.pcap" 2>/dev/null
  bytes=$(stat -c %s "$dir/server.pcap")
  n=$(grep -c '^\[\[sessions\]\]' "$dir/server.truth.toml")
  open=$(grep -c '^outcome = "open"' "$dir/server.truth.toml" || true)
  dec=$(measure "$tether" decode --threads 1 "$dir/server.pcap")
  tri=$(measure "$tether" triage --summary --threads 1 "$dir/server.pcap")
  score=$({ "$tether" score "$dir" || true; } | head -1 | sed 's/.*, //')
  printf "%-8s %10s %8s %6s  %-20s  %-20s  %s\n" "$cap" "$bytes" "$n" "$open" "$dec" "$tri" "$score"
  rm -f "$dir/server.pcap"
done
