#!/usr/bin/env bash
# A real noVNC session through `tether proxy` playing a cloud load balancer
# that drops connections idle for IDLE (default 60s) with a RST:
#   headless Chromium (noVNC) → tether proxy 127.0.0.1:6220
#       → websockify 127.0.0.1:6221 → Xvnc 127.0.0.1:6222 (display :72)
# noVNC's files are served on 127.0.0.1:6223. The screen is left alone, so
# after the first updates nothing crosses and the idle drop fires.
# Writes:
#   corpora/recorded/live-novnc-idle.pcap             the proxy's recording
#   corpora/recorded/live-novnc-idle.pcap.tshark.txt  tshark's view of it
#   corpora/recorded/live-novnc-idle.verdict.json     the live verdict
#   corpora/recorded/live-novnc-idle.terminal.txt     what the proxy printed
#
# Usage: corpora/record/live-novnc-idle.sh [IDLE] [DURATION]
#        (TETHER=path/to/tether to use a built binary)
set -euo pipefail

idle=${1:-60s}
duration=${2:-80s}
here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/recorded"
mkdir -p "$out"
tether=${TETHER:-tether}
tmp=$(mktemp -d)
display=:72
pids=()
cleanup() {
    # Only the processes this script started, by PID.
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

Xvnc "$display" -geometry 320x240 -depth 24 -rfbport 6222 -interface 127.0.0.1 \
    -SecurityTypes None -nolisten tcp -AlwaysShared >"$tmp/xvnc.log" 2>&1 &
pids+=($!)
sleep 1
DISPLAY=$display xsetroot -solid '#336699' || true
python3 -m http.server 6223 --bind 127.0.0.1 --directory /usr/share/novnc \
    >"$tmp/http.log" 2>&1 &
pids+=($!)
websockify 127.0.0.1:6221 127.0.0.1:6222 >"$tmp/websockify.log" 2>&1 &
pids+=($!)
sleep 1

"$tether" proxy --listen 127.0.0.1:6220 --upstream 127.0.0.1:6221 \
    --idle-drop "$idle" --duration "$duration" --seed 1 \
    --profile novnc-displaytab@pre-2216 --status-every 5s \
    --record "$out/live-novnc-idle.pcap" --json "$out/live-novnc-idle.verdict.json" \
    >"$out/live-novnc-idle.terminal.txt" 2>&1 &
proxy_pid=$!
pids+=($proxy_pid)
sleep 1

chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --remote-debugging-port=6224 --user-data-dir="$tmp/chrome" \
    "http://127.0.0.1:6223/vnc.html?autoconnect=1&host=127.0.0.1&port=6220&path=websockify" \
    >"$tmp/chrome.log" 2>&1 &
pids+=($!)

wait "$proxy_pid" || true
# Per frame: number, epoch time, ports, TCP flags, payload length and the
# WebSocket opcodes tshark sees (it decodes the upgrade on any port).
tshark -r "$out/live-novnc-idle.pcap" -d tcp.port==6221,http -T fields -E separator=/t \
    -e frame.number -e frame.time_epoch -e tcp.srcport -e tcp.dstport \
    -e tcp.flags.str -e tcp.len -e websocket.opcode \
    >"$out/live-novnc-idle.pcap.tshark.txt" 2>/dev/null || true
cat "$out/live-novnc-idle.terminal.txt"
