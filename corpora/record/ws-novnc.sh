#!/usr/bin/env bash
# Records noVNC (headless Chromium) talking RFB through websockify to a real
# VNC server (TigerVNC's Xvnc), all on 127.0.0.1, and writes:
#   corpora/recorded/ws-novnc.pcap             only the WebSocket connection
#   corpora/recorded/ws-novnc.pcap.tshark.txt  tshark's decode, for the tests
#
# Ports (the ws helper's range): Xvnc RFB 16001, websockify 16080, static
# noVNC files 16081 (served separately so the capture holds only the
# WebSocket), Chromium DevTools 16090 (keeps headless Chromium alive).
# websockify runs with --heartbeat 1 so the capture has server pings and
# the browser's pongs. Screen is 320x240 and the session lasts a few
# seconds, to keep the capture small.
#
# Usage: corpora/record/ws-novnc.sh   (needs root for tcpdump on lo)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/recorded"
mkdir -p "$out"
tmp=$(mktemp -d)
display=:160
pids=()
cleanup() {
    # Only the processes this script started, by PID.
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

Xvnc "$display" -geometry 320x240 -depth 24 -rfbport 16001 -interface 127.0.0.1 \
    -SecurityTypes None -nolisten tcp -AlwaysShared >"$tmp/xvnc.log" 2>&1 &
pids+=($!)
sleep 1
# Something on the screen, so the framebuffer update has content.
DISPLAY=$display xsetroot -solid '#336699' || true

python3 -m http.server 16081 --bind 127.0.0.1 --directory /usr/share/novnc \
    >"$tmp/http.log" 2>&1 &
pids+=($!)
websockify --heartbeat 1 127.0.0.1:16080 127.0.0.1:16001 >"$tmp/websockify.log" 2>&1 &
pids+=($!)
sleep 1

tcpdump -i lo -s 0 -U -w "$out/ws-novnc.pcap" 'tcp port 16080' >"$tmp/tcpdump.log" 2>&1 &
tcpdump_pid=$!
pids+=($tcpdump_pid)
sleep 1

chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --remote-debugging-port=16090 --user-data-dir="$tmp/chrome" \
    "http://127.0.0.1:16081/vnc.html?autoconnect=1&host=127.0.0.1&port=16080&path=websockify" \
    >"$tmp/chrome.log" 2>&1 &
chrome_pid=$!
pids+=($chrome_pid)
sleep 6
# Change the screen once mid-session so an incremental update follows.
DISPLAY=$display xsetroot -solid '#993366' || true
sleep 4
kill "$chrome_pid" 2>/dev/null || true
sleep 1
kill "$tcpdump_pid" 2>/dev/null || true
sleep 1

tshark_fields=(-T fields -e frame.number -e frame.time_relative -e ip.src -e tcp.srcport
    -e ip.dst -e tcp.dstport -e websocket.fin -e websocket.rsv -e websocket.pmc
    -e websocket.opcode -e websocket.mask -e websocket.payload_length
    -e websocket.payload_length_ext_16 -e websocket.payload_length_ext_64
    -e websocket.payload.close.status_code -e websocket.payload.close.reason
    -E occurrence=a -E aggregator=,)
hs_fields=(-T fields -e frame.number -e frame.time_relative -e ip.src -e tcp.srcport
    -e ip.dst -e tcp.dstport -e http.request.uri -e http.response.code -e http.upgrade
    -e http.connection -e http.sec_websocket_key -e http.sec_websocket_accept
    -e http.sec_websocket_protocol -e http.sec_websocket_extensions
    -e http.sec_websocket_version)
f="$out/ws-novnc.pcap"
{
    echo "# Oracle decode of ws-novnc.pcap by a peer decoder"
    echo "# tool: $(tshark --version | head -1)"
    echo "# sha256: $(sha256sum "$f" | cut -d' ' -f1)"
    echo
    echo "## tshark -q -z io,phs"
    tshark -r "$f" -q -z io,phs 2>/dev/null
    echo
    echo "## WebSocket handshake (HTTP Upgrade) fields"
    echo "# columns: frame trel src sport dst dport uri response_code upgrade connection sec_ws_key sec_ws_accept sec_ws_protocol sec_ws_extensions sec_ws_version"
    tshark -r "$f" -Y 'http.upgrade' "${hs_fields[@]}" 2>/dev/null
    echo
    echo "## WebSocket frames: tshark -Y websocket -T fields (one row per packet; multiple frames in a packet are comma-joined)"
    echo "# columns: frame trel src sport dst dport fin rsv pmc opcode mask payload_len len16 len64 close_code close_reason"
    tshark -r "$f" -Y websocket "${tshark_fields[@]}" 2>/dev/null
    echo
    echo "## VNC inside WebSocket (-Y vnc)"
    tshark -r "$f" -Y vnc 2>/dev/null | head -40
} >"$f.tshark.txt"
ls -l "$f" "$f.tshark.txt"
