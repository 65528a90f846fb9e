#!/usr/bin/env bash
# Records a client-side stall between real peers: noVNC (headless Chromium,
# vnc.html) through websockify (--heartbeat 1) to TigerVNC's Xvnc, on
# 127.0.0.1, both legs in one capture:
#   corpora/recorded/novnc-browser-stalled.pcap             (+ .tshark.txt)
# Timeline: the session runs a few seconds (framebuffer updates, pings
# answered at once); then every Chromium process is stopped (SIGSTOP) for
# 3.5 s: websockify keeps pinging and Xvnc keeps sending updates (the
# screen changes twice), the kernel still ACKs, but no pong and no RFB
# message comes from the browser; then the processes continue (SIGCONT), the
# late pongs go out in a burst and the session carries on; 2 s later the
# browser is closed (close 1001, going away).
# Nobody times out on the missing pongs: websockify only sends its pings,
# it does not act on missed pongs.
#
# Ports and display (rec's range): Xvnc 6103 (:613), websockify 6184,
# static noVNC files 6185 (not captured), DevTools 6192.
# Usage: corpora/record/novnc-browser-stalled.sh [--dump]   (root, for tcpdump)
#   --dump only rewrites the tshark dump of the committed capture
set -euo pipefail
rfb=6103 ws=6184 http=6185 devtools=6192 display=:613
name=novnc-browser-stalled
here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/recorded"
mkdir -p "$out"
f="$out/$name.pcap"

dump() {
    local conv hs wsf
    conv=(-T fields -e frame.number -e frame.time_epoch -e frame.time_relative
        -e tcp.stream -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e tcp.flags.str -e tcp.len)
    hs=(-T fields -e frame.number -e frame.time_epoch -e tcp.stream -e tcp.srcport -e tcp.dstport
        -e http.request.uri -e http.response.code -e http.upgrade)
    wsf=(-T fields -e frame.number -e frame.time_epoch -e tcp.stream -e tcp.srcport -e tcp.dstport
        -e websocket.fin -e websocket.opcode -e websocket.mask -e websocket.payload_length
        -e websocket.payload.close.status_code -E occurrence=a -E aggregator=,)
    {
        echo "# Oracle decode of $name.pcap by a peer decoder"
        echo "# tool: $(tshark --version | head -1)"
        echo "# sha256: $(sha256sum "$f" | cut -d' ' -f1)"
        echo
        echo "## TCP segments"
        echo "# columns: frame epoch trel stream src sport dst dport flags payload_len"
        echo "# (tshark 4.0 gives the Xvnc leg a second stream number from the segment after"
        echo "# the server's first data; it is one connection: match rows by ports)"
        tshark -r "$f" "${conv[@]}" 2>/dev/null
        echo
        echo "## HTTP requests and responses"
        echo "# columns: frame epoch stream sport dport uri response_code upgrade"
        tshark -r "$f" -Y 'http.request || http.response' "${hs[@]}" 2>/dev/null
        echo
        echo "## WebSocket frames"
        echo "# columns: frame epoch stream sport dport fin opcode mask payload_len close_code"
        tshark -r "$f" -Y websocket "${wsf[@]}" 2>/dev/null
    } >"$f.tshark.txt"
    ls -l "$f" "$f.tshark.txt"
}
if [ "${1:-}" = --dump ]; then
    dump
    exit 0
fi

tmp=$(mktemp -d)
pids=()
stopped=()
cleanup() {
    # Only the processes this script started, by PID.
    for p in "${stopped[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
stamp() { echo "[$(date -u +%H:%M:%S.%N | cut -c1-12)] $*"; }
# A process and all its descendants, by parent PID.
tree() {
    local p=$1 c
    echo "$p"
    for c in $(pgrep -P "$p" || true); do tree "$c"; done
}

Xvnc "$display" -geometry 320x240 -depth 24 -rfbport "$rfb" -interface 127.0.0.1 \
    -SecurityTypes None -nolisten tcp -AlwaysShared >"$tmp/xvnc.log" 2>&1 &
pids+=($!)
sleep 1
DISPLAY=$display xsetroot -solid '#336699' || true
python3 -m http.server "$http" --bind 127.0.0.1 --directory /usr/share/novnc \
    >"$tmp/http.log" 2>&1 &
pids+=($!)
websockify --heartbeat 1 "127.0.0.1:$ws" "127.0.0.1:$rfb" >"$tmp/websockify.log" 2>&1 &
pids+=($!)
sleep 1
tcpdump -i lo -s 0 -U --immediate-mode -w "$f" "tcp port $ws or tcp port $rfb" \
    >"$tmp/tcpdump.log" 2>&1 &
tcpdump_pid=$!
pids+=($tcpdump_pid)
sleep 1

stamp "browser starts"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --remote-debugging-port=$devtools --user-data-dir="$tmp/chrome" \
    "http://127.0.0.1:$http/vnc.html?autoconnect=1&host=127.0.0.1&port=$ws&path=websockify" \
    >"$tmp/chrome.log" 2>&1 &
chrome_pid=$!
pids+=($chrome_pid)
# Chromium takes ~2.5 s to load the page and connect; ~4 s of live session.
sleep 5
DISPLAY=$display xsetroot -solid '#993366' || true
sleep 2
stopped=($(tree "$chrome_pid"))
stamp "SIGSTOP browser: ${stopped[*]}"
kill -STOP "${stopped[@]}"
sleep 1.2
DISPLAY=$display xsetroot -solid '#669933' || true
sleep 1.2
DISPLAY=$display xsetroot -solid '#336699' || true
sleep 1.1
stamp "SIGCONT browser"
kill -CONT "${stopped[@]}"
stopped=()
sleep 2
stamp "browser closed"
kill "$chrome_pid" 2>/dev/null || true
# Let tcpdump write the last packets before it stops.
sleep 1.5
kill "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null || true
dump
