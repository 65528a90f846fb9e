#!/usr/bin/env bash
# tether against tshark on the same generated capture: medians of several
# runs each, and the ratio.
#   benches/compare.sh [SIZE] [RUNS] [CONTENT]     (default 100MB 3 novnc)
# CONTENT is what `tether gen --content` takes: novnc (tcp/ws/rfb), vnc,
# spice, realistic (a mix). Installs tshark from Debian if it is missing.
set -euo pipefail
size=${1:-100MB}
runs=${2:-3}
content=${3:-novnc}
root=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v tshark >/dev/null; then
  echo "installing tshark..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq tshark >/dev/null
fi
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p tether
tether="$root/target/release/tether"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
capture="$work/capture.pcap"
"$tether" gen --size "$size" --seed 1 --content "$content" -o "$capture"
bytes=$(stat -c %s "$capture")

# Seconds of one run of a command, output discarded.
seconds() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

tshark_cmd=(tshark -r "$capture" -n -d tcp.port==6080,websocket -d tcp.port==5930,spice
  -T fields -e frame.number -e websocket.opcode -e websocket.payload_length
  -e vnc.client_message_type -e vnc.server_message_type -e spice.message_type)
tether_cmd=("$tether" decode "$capture" --format json --threads 1)

for _ in $(seq "$runs"); do seconds "${tether_cmd[@]}"; done | median > "$work/tether"
for _ in $(seq "$runs"); do seconds "${tshark_cmd[@]}"; done | median > "$work/tshark"
t_tether=$(cat "$work/tether")
t_tshark=$(cat "$work/tshark")
awk -v b="$bytes" -v a="$t_tether" -v s="$t_tshark" -v c="$content" 'BEGIN {
  printf "capture: %s, %.1f MB\n", c, b / 1e6
  printf "tether decode (1 thread): median %.3f s  %8.1f MB/s\n", a, b / a / 1e6
  printf "tshark -T fields:         median %.3f s  %8.1f MB/s\n", s, b / s / 1e6
  printf "tether / tshark throughput: %.1fx\n", s / a
}'
