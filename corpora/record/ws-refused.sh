#!/usr/bin/env bash
# Records a refused WebSocket upgrade between real peers: noVNC (headless
# Chromium) asks websockify for the upgrade, websockify requires HTTP Basic
# credentials (BasicHTTPAuth plugin) that the browser does not have, and
# answers 401 -- what a reconnect with an expired token looks like on the
# wire. Writes:
#   corpora/recorded/ws-refused.pcap             only the upgrade attempt(s)
#   corpora/recorded/ws-refused.pcap.tshark.txt  tshark's decode, for the tests
#
# Ports (the ws helper's range): Xvnc RFB 16002, websockify 16084, static
# noVNC files 16085, Chromium DevTools 16091.
#
# Usage: corpora/record/ws-refused.sh   (needs root for tcpdump on lo)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/recorded"
mkdir -p "$out"
tmp=$(mktemp -d)
display=:161
pids=()
cleanup() {
    # Only the processes this script started, by PID.
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

Xvnc "$display" -geometry 320x240 -depth 24 -rfbport 16002 -interface 127.0.0.1 \
    -SecurityTypes None -nolisten tcp -AlwaysShared >"$tmp/xvnc.log" 2>&1 &
pids+=($!)
sleep 1

python3 -m http.server 16085 --bind 127.0.0.1 --directory /usr/share/novnc \
    >"$tmp/http.log" 2>&1 &
pids+=($!)
websockify --auth-plugin BasicHTTPAuth --auth-source tether:secret \
    127.0.0.1:16084 127.0.0.1:16002 >"$tmp/websockify.log" 2>&1 &
pids+=($!)
sleep 1

tcpdump -i lo -s 0 -U -w "$out/ws-refused.pcap" 'tcp port 16084' >"$tmp/tcpdump.log" 2>&1 &
tcpdump_pid=$!
pids+=($tcpdump_pid)
sleep 1

chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --remote-debugging-port=16091 --user-data-dir="$tmp/chrome" \
    "http://127.0.0.1:16085/vnc.html?autoconnect=1&host=127.0.0.1&port=16084&path=websockify%3Ftoken%3Dexpired" \
    >"$tmp/chrome.log" 2>&1 &
chrome_pid=$!
pids+=($chrome_pid)
sleep 5
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
f="$out/ws-refused.pcap"
{
    echo "# Oracle decode of ws-refused.pcap by a peer decoder"
    echo "# tool: $(tshark --version | head -1)"
    echo "# sha256: $(sha256sum "$f" | cut -d' ' -f1)"
    echo
    echo "## tshark -q -z io,phs"
    tshark -r "$f" -q -z io,phs 2>/dev/null
    echo
    echo "## WebSocket handshake (HTTP Upgrade) fields"
    echo "# columns: frame trel src sport dst dport uri response_code upgrade connection sec_ws_key sec_ws_accept sec_ws_protocol sec_ws_extensions sec_ws_version"
    tshark -r "$f" -Y 'http.upgrade || http.response' "${hs_fields[@]}" 2>/dev/null
    echo
    echo "## WebSocket frames: tshark -Y websocket -T fields (one row per packet; multiple frames in a packet are comma-joined)"
    echo "# columns: frame trel src sport dst dport fin rsv pmc opcode mask payload_len len16 len64 close_code close_reason"
    tshark -r "$f" -Y websocket "${tshark_fields[@]}" 2>/dev/null
    echo
    echo "## VNC inside WebSocket (-Y vnc)"
    tshark -r "$f" -Y vnc 2>/dev/null | head -40
} >"$f.tshark.txt"
ls -l "$f" "$f.tshark.txt"
