#!/usr/bin/env bash
# Records both legs of one noVNC session: headless Chromium → websockify
# (WebSocket, port 26080) and websockify → Xvnc (plain RFB, port 26001),
# all on 127.0.0.1, into one capture:
#   corpora/recorded/rfb-novnc-legs.pcap
#   corpora/recorded/rfb-novnc-legs.pcap.tshark.txt  tshark's VNC decode of
#       the plain leg (tshark does not decode RFB inside WebSocket)
# The same RFB bytes cross both legs, so tether's tcp/ws/rfb decode of the
# first must equal its tcp/rfb decode of the second. Screen 320x240, a few
# seconds, to keep it small.
#
# Usage: corpora/record/rfb-novnc-legs.sh   (needs root for tcpdump on lo)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/recorded"
mkdir -p "$out"
tmp=$(mktemp -d)
display=:62
pids=()
cleanup() {
    # Only the processes this script started, by PID.
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

Xvnc "$display" -geometry 320x240 -depth 24 -rfbport 26001 -interface 127.0.0.1 \
    -SecurityTypes None -nolisten tcp -AlwaysShared >"$tmp/xvnc.log" 2>&1 &
pids+=($!)
sleep 1
DISPLAY=$display xsetroot -solid '#336699' || true

python3 -m http.server 26081 --bind 127.0.0.1 --directory /usr/share/novnc \
    >"$tmp/http.log" 2>&1 &
pids+=($!)
websockify 127.0.0.1:26080 127.0.0.1:26001 >"$tmp/websockify.log" 2>&1 &
pids+=($!)
sleep 1

tcpdump -i lo -s 0 -U -w "$out/rfb-novnc-legs.pcap" 'tcp port 26080 or tcp port 26001' \
    >"$tmp/tcpdump.log" 2>&1 &
tcpdump_pid=$!
pids+=($tcpdump_pid)
sleep 1

chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --remote-debugging-port=26090 --user-data-dir="$tmp/chrome" \
    "http://127.0.0.1:26081/vnc.html?autoconnect=1&host=127.0.0.1&port=26080&path=websockify" \
    >"$tmp/chrome.log" 2>&1 &
chrome_pid=$!
pids+=($chrome_pid)
sleep 6
# Change the screen so incremental updates follow.
DISPLAY=$display xsetroot -solid '#993366' || true
sleep 2
DISPLAY=$display xsetroot -solid '#669933' || true
sleep 2
kill "$chrome_pid" 2>/dev/null || true
sleep 1
kill "$tcpdump_pid" 2>/dev/null || true
sleep 1

# The plain leg in the same dump format as the other RFB recordings.
"$here/record/rfb-xvnc.sh" --dump "$out/rfb-novnc-legs.pcap" 26001
ls -l "$out/rfb-novnc-legs.pcap"
