#!/usr/bin/env bash
# Records noVNC (headless Chromium, vnc.html) talking RFB through websockify
# to TigerVNC's Xvnc, all on 127.0.0.1, with websockify SIGKILLed
# mid-session, both legs in one capture:
#   browser <-> websockify   WebSocket carrying RFB   (port 6180 / 6182)
#   websockify <-> Xvnc      plain RFB                (port 6101 / 6102)
#
# usage: novnc-websockify-killed.sh killed|reconnect [--dump]   (root, for tcpdump)
#   --dump only rewrites the tshark dump of the committed capture
#   killed     corpora/recorded/novnc-websockify-killed.pcap
#              A live session (initial and incremental framebuffer updates,
#              websockify --heartbeat 1 pings answered by the browser), then
#              websockify and its per-connection child are SIGKILLed: no
#              WebSocket close frame, the kernel closes their sockets (FIN,
#              or RST where unread bytes were pending) on both legs. noVNC
#              (Debian's 1.3.0; since noVNC PR 1672 it retries after any disconnect)
#              treats a server-side close of a connected session as clean,
#              so with reconnect=true it retries after reconnect_delay
#              (1 s); nothing listens, the SYN is answered by RST, and noVNC
#              gives up (a failed connect is not clean: no further retry).
#   reconnect  corpora/recorded/novnc-websockify-killed-reconnect.pcap
#              The same kill, but websockify is restarted 1.5 s later and
#              noVNC's single retry comes at reconnect_delay = 3 s, after the
#              restart, so it succeeds: a second generation of both legs,
#              which ends when the browser is closed.
#              (noVNC makes one attempt per clean disconnect, so a retry
#              before the restart would be refused and end the session.)
# and a tshark dump next to each capture (<capture>.tshark.txt): the TCP
# segment list, the upgrade, the WebSocket frames, and the RFB leg's VNC
# messages as tshark decodes them.
#
# Ports and displays (rec's range): killed Xvnc 6101 (:610), websockify
# 6180, static noVNC files 6181 (served apart, so the capture holds only
# the two legs), DevTools 6190; reconnect 6102 (:611), 6182, 6183, 6191.
set -euo pipefail
mode=${1:?killed|reconnect}
case $mode in
killed)
    rfb=6101 ws=6180 http=6181 devtools=6190 display=:610 delay=1000
    name=novnc-websockify-killed
    ;;
reconnect)
    rfb=6102 ws=6182 http=6183 devtools=6191 display=:611 delay=3000
    name=novnc-websockify-killed-reconnect
    ;;
*)
    echo "unknown mode $mode" >&2
    exit 2
    ;;
esac

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
        echo
        echo "## VNC on the plain leg"
        echo "# columns: frame epoch stream sport dport client_message_type server_message_type"
        tshark -r "$f" -d "tcp.port==$rfb,vnc" -Y "vnc && tcp.port==$rfb" -T fields \
            -e frame.number -e frame.time_epoch -e tcp.stream -e tcp.srcport -e tcp.dstport \
            -e vnc.client_message_type -e vnc.server_message_type \
            -E occurrence=a -E aggregator=, 2>/dev/null
    } >"$f.tshark.txt"
    ls -l "$f" "$f.tshark.txt"
}
if [ "${2:-}" = --dump ]; then
    dump
    exit 0
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
    # Only the processes this script started, by PID.
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
stamp() { echo "[$(date -u +%H:%M:%S.%N | cut -c1-12)] $*"; }

Xvnc "$display" -geometry 320x240 -depth 24 -rfbport "$rfb" -interface 127.0.0.1 \
    -SecurityTypes None -nolisten tcp -AlwaysShared >"$tmp/xvnc.log" 2>&1 &
pids+=($!)
sleep 1
DISPLAY=$display xsetroot -solid '#336699' || true

python3 -m http.server "$http" --bind 127.0.0.1 --directory /usr/share/novnc \
    >"$tmp/http.log" 2>&1 &
pids+=($!)
start_websockify() {
    websockify --heartbeat 1 "127.0.0.1:$ws" "127.0.0.1:$rfb" >>"$tmp/websockify.log" 2>&1 &
    websockify_pid=$!
    pids+=($websockify_pid)
}
start_websockify
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
    "http://127.0.0.1:$http/vnc.html?autoconnect=1&host=127.0.0.1&port=$ws&path=websockify&reconnect=true&reconnect_delay=$delay" \
    >"$tmp/chrome.log" 2>&1 &
chrome_pid=$!
pids+=($chrome_pid)
sleep 4
# Screen changes, so incremental updates follow the initial one.
DISPLAY=$display xsetroot -solid '#993366' || true
sleep 1
DISPLAY=$display xsetroot -solid '#669933' || true
sleep 1

# websockify forks a child per connection: the crash takes both.
children=$(pgrep -P "$websockify_pid" || true)
stamp "SIGKILL websockify $websockify_pid and its children: $children"
kill -KILL "$websockify_pid" $children
if [ "$mode" = reconnect ]; then
    sleep 1.5
    stamp "websockify restarted"
    start_websockify
    sleep 3.5
    DISPLAY=$display xsetroot -solid '#336699' || true
    sleep 1.5
    stamp "browser closed"
    kill "$chrome_pid" 2>/dev/null || true
    sleep 1
else
    sleep 3
fi
kill "$chrome_pid" 2>/dev/null || true
# Let tcpdump write the last packets before it stops.
sleep 1.5
kill "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null || true

dump
