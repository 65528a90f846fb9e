#!/usr/bin/env bash
# A real SPICE session through `tether proxy` with the path blackholed from
# T+FROM to T+TO (both ways, sockets kept open: half-open as each side sees
# it):
#   remote-viewer (under Xvfb :73) → tether proxy 127.0.0.1:6230
#       → QEMU's SPICE server 127.0.0.1:6232 (no disk, TCG: SeaBIOS screen)
# Writes:
#   corpora/recorded/live-spice-blackhole.pcap             the proxy's recording
#   corpora/recorded/live-spice-blackhole.pcap.tshark.txt  tshark's view of it
#   corpora/recorded/live-spice-blackhole.verdict.json     the live verdict
#   corpora/recorded/live-spice-blackhole.terminal.txt     what the proxy printed
#
# Usage: corpora/record/live-spice-blackhole.sh [FROM..TO] [DURATION]
#        (TETHER=path/to/tether to use a built binary)
set -euo pipefail

window=${1:-60s..150s}
duration=${2:-180s}
here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/recorded"
mkdir -p "$out"
tether=${TETHER:-tether}
disp=:73
pids=()
cleanup() {
    # Only the processes this script started, by PID.
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

Xvfb "$disp" -screen 0 800x600x24 -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
qemu-system-x86_64 -machine accel=tcg -m 128 -nodefaults -vga qxl -display none \
    -spice port=6232,addr=127.0.0.1,disable-ticketing=on >/dev/null 2>&1 &
pids+=($!)
sleep 1.5

"$tether" proxy --listen 127.0.0.1:6230 --upstream 127.0.0.1:6232 \
    --blackhole "$window" --duration "$duration" --seed 1 \
    --profile spice-gtk --status-every 10s \
    --record "$out/live-spice-blackhole.pcap" --json "$out/live-spice-blackhole.verdict.json" \
    >"$out/live-spice-blackhole.terminal.txt" 2>&1 &
proxy_pid=$!
pids+=($proxy_pid)
sleep 1

DISPLAY=$disp remote-viewer spice://127.0.0.1:6230 >/dev/null 2>&1 &
pids+=($!)

wait "$proxy_pid" || true
# Per frame: number, epoch time, ports, TCP flags, payload length.
tshark -r "$out/live-spice-blackhole.pcap" -T fields -E separator=/t \
    -e frame.number -e frame.time_epoch -e tcp.srcport -e tcp.dstport \
    -e tcp.flags.str -e tcp.len \
    >"$out/live-spice-blackhole.pcap.tshark.txt" 2>/dev/null || true
cat "$out/live-spice-blackhole.terminal.txt"
