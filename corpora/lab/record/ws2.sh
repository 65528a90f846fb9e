#!/usr/bin/env bash
# Holdout batch of plain WebSocket sessions: Node.js `ws` server
# (record/ws2-peers.js, echoes every message) with a Node `ws` client
# (ws2-peers.js) or a Python `websockets` client (record/ws-peers.py, sends
# "msg N" every 2 s), on 127.0.0.1 in a private network namespace, one fault
# per case; the times differ from ws.sh on purpose:
#
#   server-goes-away        Python client; the server closes it with 1001
#                           "going away" at ~T+12 and keeps running
#   client-liveness         Python client, keepalive ping_interval 4 s,
#                           ping_timeout 4 s; SIGSTOP the server at ~T+10 for
#                           30 s, then SIGCONT
#   blackhole-long          Node client sending every 2 s, no pings anywhere;
#                           iptables DROP (INPUT, both directions of the
#                           server port) at ~T+8 for 40 s; the client closes
#                           with 1000 at ~T+65; capture ends at ~T+70
#   several-clients-one-frozen  server heartbeat 5 s (ping, terminate() when
#                           the previous ping got no pong); three Python
#                           clients; client 2 SIGSTOPped at ~T+8 until the
#                           server terminates it, then SIGCONT; clients 1 and
#                           3 close with 1000 at ~T+25
#   server-killed-reconnect Node client sending every 2 s, reconnecting 2 s
#                           after any close or failed connect; SIGKILL the
#                           server at ~T+10, start a new one 5 s later
#   haproxy-idle-30         Node client (silent) -> haproxy (mode http,
#                           timeout tunnel 30s, client/server 50s) -> server
#
# T is the moment the (first) client starts. Needs the npm package ws in
# $WS2_NODE_MODULES (default /tmp/ws2-node/node_modules: npm install ws
# in /tmp/ws2-node).
#
# usage: record/ws2.sh CASE   (root: unshare, tcpdump, iptables)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lab-lib.sh"
case=${1:?case}
lab_init "ws2-$case" "$@"

export NODE_PATH=${WS2_NODE_MODULES:-/tmp/ws2-node/node_modules}
js="$here/ws2-peers.js"
py="$here/ws-peers.py"
tmp=$(mktemp -d)
trap 'lab_cleanup; rm -rf "$tmp"' EXIT
port=9001
url="ws://127.0.0.1:$port/"
nodever=$(node -v)
wsjsver=$(node -e 'console.log(require("ws/package.json").version)')
wspyver=$(python3 -c 'import websockets; print(websockets.__version__)')
pyver=$(python3 -c 'import platform; print(platform.python_version())')
peer_s="ws $wsjsver server (ws2-peers.js, Node.js $nodever)"
peer_cn="ws $wsjsver client (ws2-peers.js, Node.js $nodever)"
peer_cp="websockets $wspyver client (ws-peers.py, Python $pyver)"

# win EPOCH D1 D2: "[t+D1, t+D2]" in capture seconds.
win() {
    local t
    t=$(lab_t "$1")
    awk -v t="$t" -v a="$2" -v b="$3" 'BEGIN { printf "[%.2f, %.2f]", t + a, t + b }'
}
# Client port from a Python client's log / a Node client's log.
pyport() { sed -n "s/.*client: connected from ('127.0.0.1', \([0-9]*\)).*/\1/p" "$1" | head -1; }
jsport() { sed -n "s/.*client: attempt [0-9]*: connected from port \([0-9]*\).*/\1/p" "$1" | sed -n "${2:-1}p"; }
# Epoch time of the first log line matching a pattern (peers log "[EPOCH +rel]").
logt() { sed -n "/$2/{s/^\[\([0-9.]*\) .*/\1/p;q}" "$1"; }
server() { lab_bg node "$js" server "$port" "$@" >>"$tmp/server.log" 2>&1; }
pyclient() { # LOG ARGS...
    local log=$1
    shift
    lab_bg python3 "$py" client "$url" "$@" >>"$log" 2>&1
}
jsclient() { # LOG URL ARGS...
    local log=$1
    shift
    lab_bg node "$js" client "$@" >>"$log" 2>&1
}
finish() {
    lab_stop_capture
    echo "--- peer logs" >&2
    for f in "$tmp"/*.log; do echo "== $f" >&2; cat "$f" >&2; done
}

case $case in
server-goes-away)
    lab_capture "tcp port $port"
    server
    s=${lab_pids[-1]}
    sleep 1
    lab_action "Python client connects (sends msg N every 2 s; keepalive off)"
    pyclient "$tmp/client.log"
    sleep 12
    t_close=$(lab_now)
    lab_action "server (pid $s) told (SIGUSR1) to close its client: close(1001, going away); the server keeps running"
    kill -USR1 "$s"
    sleep 3
    kill -0 "$s"
    finish
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(pyport "$tmp/client.log")
outcome = \"disconnected\"
cause = \"server.closed\"
closed_by = \"server\"
at = $(win "$t_close" 0 1)
attempts = []
note = \"the server sends close 1001 going away, the client echoes it; the server process keeps listening\""
    lab_truth "$case" "$peer_s" "$peer_cp"
    ;;
client-liveness)
    lab_capture "tcp port $port"
    server
    s=${lab_pids[-1]}
    sleep 1
    lab_action "Python client connects (sends msg N every 2 s; keepalive ping_interval 4 s, ping_timeout 4 s); server heartbeat off"
    pyclient "$tmp/client.log" --ping 4 4
    sleep 10
    t_stop=$(lab_now)
    lab_action "SIGSTOP server (pid $s) for 30 s"
    kill -STOP "$s"
    sleep 30
    t_cont=$(lab_now)
    lab_action "SIGCONT server (pid $s)"
    kill -CONT "$s"
    sleep 4
    finish
    # The client's close frame (opcode 8, from the client port) in the capture.
    cp=$(pyport "$tmp/client.log")
    t_cf=$(tshark -r "$cap" -d tcp.port==$port,http -Y "websocket.opcode == 8 && tcp.srcport == $cp" \
        -T fields -e frame.time_epoch 2>/dev/null | head -1)
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $cp
outcome = \"disconnected\"
cause = \"client.liveness_timeout\"
origin = \"server.frozen\"
closed_by = \"client\"
at = $(win "$t_cf" -0.5 0.5)
attempts = []
note = \"server SIGSTOPped $(lab_t "$t_stop")..$(lab_t "$t_cont"); its kernel keeps ACKing; the client's keepalive ping after the freeze gets no pong within 4 s and the client fails the connection (close 1011 keepalive ping timeout at $(lab_t "$t_cf")); unlike the websockets server, the client sends no FIN with it: it waits for the server's FIN and sends its own only after close_timeout (10 s); on SIGCONT the server's first bytes (a late echo) draw RST. cause outside the README vocabulary (no client-side liveness cause yet)\""
    lab_truth "$case" "$peer_s" "$peer_cp"
    ;;
blackhole-long)
    lab_capture "tcp port $port"
    server
    sleep 1
    lab_action "Node client connects (sends msg N every 2 s; no pings on either side)"
    jsclient "$tmp/client.log" "$url" --every 2
    c=${lab_pids[-1]}
    sleep 8
    t_drop=$(lab_now)
    lab_action "iptables DROP tcp port $port both directions (INPUT)"
    iptables -A INPUT -p tcp --dport "$port" -j DROP
    iptables -A INPUT -p tcp --sport "$port" -j DROP
    sleep 40
    t_lift=$(lab_now)
    lab_action "iptables DROP rules removed"
    iptables -D INPUT -p tcp --dport "$port" -j DROP
    iptables -D INPUT -p tcp --sport "$port" -j DROP
    sleep 17
    t_close=$(lab_now)
    lab_action "client (pid $c) told to close (SIGUSR1): close 1000 bye"
    kill -USR1 "$c"
    sleep 4
    finish
    echo "drop $(lab_t "$t_drop") lift $(lab_t "$t_lift") close $(lab_t "$t_close")" >&2
    # First frame the server sends after the lift: the path delivers again.
    t_back=$(tshark -r "$cap" -Y "tcp.srcport == $port && frame.time_epoch > $t_lift" \
        -T fields -e frame.time_epoch 2>/dev/null | head -1)
    nre=$(tshark -r "$cap" -Y "tcp.analysis.retransmission" 2>/dev/null | wc -l)
    out=$(awk -v a="$t_drop" -v b="$t_lift" -v c="$t_back" 'BEGIN { printf "[%.1f, %.1f]", b - a - 0.5, c - a + 0.5 }')
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(jsport "$tmp/client.log")
outcome = \"disconnected\"
cause = \"client.closed\"
closed_by = \"client\"
at = $(win "$t_close" 0 1)
outage = $out
attempts = []
note = \"the connection survives the outage: nothing on either side times out (no pings, TCP retries far from exhausted); the client's message sent just after the DROP ($(lab_t "$t_drop")) is retransmitted $nre times with backoff from 0.2 s; the DROP is lifted at $(lab_t "$t_lift") but the next retransmission only comes at $(lab_t "$t_back"): acknowledged at once, the messages queued meanwhile and their echoes flush; outage = DROP length ($(awk -v a="$t_drop" -v b="$t_lift" 'BEGIN{printf "%.1f", b-a}') s) up to the delivery gap the capture shows ($(awk -v a="$t_drop" -v c="$t_back" 'BEGIN{printf "%.1f", c-a}') s from the DROP); the client closes with 1000 bye at the end (the Node client FINs first)\"
"
    lab_truth "$case" "$peer_s" "$peer_cn"
    ;;
several-clients-one-frozen)
    lab_capture "tcp port $port"
    server --heartbeat 5
    s=${lab_pids[-1]}
    sleep 0.5
    lab_action "three Python clients connect, 0.5 s apart (msg N every 2 s, own keepalive off; the server pings every 5 s)"
    for i in 1 2 3; do
        pyclient "$tmp/client$i.log"
        cpid[$i]=${lab_pids[-1]}
        sleep 0.5
    done
    sleep 6.5
    t_stop=$(lab_now)
    lab_action "SIGSTOP client 2 (pid ${cpid[2]})"
    kill -STOP "${cpid[2]}"
    for _ in $(seq 1 80); do
        grep -q "terminate()" "$tmp/server.log" && break
        sleep 0.25
    done
    sleep 1
    lab_action "SIGCONT client 2 (pid ${cpid[2]})"
    kill -CONT "${cpid[2]}"
    # ~T+25 for the others
    sleep $(awk -v a="$t_stop" -v n="$(lab_now)" 'BEGIN { d = a + 17 - n; print (d > 0 ? d : 0) }')
    t_close=$(lab_now)
    lab_action "clients 1 and 3 (pids ${cpid[1]} ${cpid[3]}) told to close (SIGUSR1): close 1000 bye"
    kill -USR1 "${cpid[1]}" "${cpid[3]}"
    sleep 2
    finish
    t_term=$(logt "$tmp/server.log" "terminate()")
    lab_actions+=("$t_term|server heartbeat: client 2 (port $(pyport "$tmp/client2.log")) did not answer the previous ping: terminate() (server log time)")
    sessions=""
    for i in 1 2 3; do
        if [ $i = 2 ]; then
            sessions+="[[sessions]]
client = \"127.0.0.1\"
port = $(pyport "$tmp/client$i.log")
outcome = \"disconnected\"
cause = \"server.closed\"
origin = \"client.frozen\"
closed_by = \"server\"
at = $(win "$t_term" -0.2 0.3)
attempts = []
note = \"client 2 SIGSTOPped at $(lab_t "$t_stop"); the server's next ping goes unanswered (its kernel ACKs), and at the heartbeat tick after it ws terminate()s the socket: FIN, no close frame; on SIGCONT the client's next message draws RST\"

"
        else
            sessions+="[[sessions]]
client = \"127.0.0.1\"
port = $(pyport "$tmp/client$i.log")
outcome = \"disconnected\"
cause = \"client.closed\"
closed_by = \"client\"
at = $(win "$t_close" 0 1)
attempts = []
note = \"client $i closes with 1000 bye\"

"
        fi
    done
    mapfile -t lab_actions < <(printf '%s\n' "${lab_actions[@]}" | sort -t'|' -k1,1n)
    lab_truth "$case" "$peer_s" "$peer_cp"
    ;;
server-killed-reconnect)
    lab_capture "tcp port $port"
    server
    s=${lab_pids[-1]}
    sleep 1
    lab_action "Node client connects (msg N every 2 s; reconnects 2 s after a close or a failed connect)"
    jsclient "$tmp/client.log" "$url" --every 2 --reconnect 2
    sleep 10
    t_kill=$(lab_now)
    lab_action "SIGKILL server (pid $s)"
    kill -KILL "$s"
    sleep 5
    t_restart=$(lab_now)
    server
    lab_action "new server started (pid ${lab_pids[-1]})"
    sleep 7
    finish
    t_up=$(logt "$tmp/client.log" "connected from port $(jsport "$tmp/client.log" 2)")
    nfail=$(grep -c "error: connect ECONNREFUSED" "$tmp/client.log" || true)
    att=""
    for _ in $(seq 1 "$nfail"); do att+="${att:+, }\"rst_to_syn\""; done
    out=$(awk -v a="$t_kill" -v b="$t_up" 'BEGIN { printf "[%.1f, %.1f]", b - a - 0.5, b - a + 0.5 }')
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(jsport "$tmp/client.log")
outcome = \"recovered\"
cause = \"server.killed\"
closed_by = \"server\"
at = $(win "$t_kill" 0 0.5)
recovered_at = $(win "$t_up" -0.5 0.5)
outage = $out
attempts = [$att]
note = \"server SIGKILLed: its kernel FINs, no close frame (client sees 1006); the client retries every 2 s: $nfail SYN(s) answered by RST while nothing listens, then the restarted server accepts (port $(jsport "$tmp/client.log" 2)), open when the capture ends\""
    lab_truth "$case" "$peer_s" "$peer_cn"
    ;;
haproxy-idle-30)
    hport=9002
    cat >"$tmp/haproxy.cfg" <<EOF
global
    log stdout format raw local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 50s
    timeout server 50s
    timeout tunnel 30s
frontend fe
    bind 127.0.0.1:$hport
    default_backend be
backend be
    server s1 127.0.0.1:$port
EOF
    lab_capture "tcp port $port or tcp port $hport"
    server
    lab_bg haproxy -db -f "$tmp/haproxy.cfg" >>"$tmp/haproxy.log" 2>&1
    sleep 1
    t_conn=$(lab_now)
    lab_action "Node client connects through haproxy (port $hport); silent, no pings on either side"
    jsclient "$tmp/client.log" "ws://127.0.0.1:$hport/"
    sleep 35
    finish
    hv=$(haproxy -v | head -1 | awk '{print $3}')
    t_cut=$(logt "$tmp/client.log" "closed:")
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(jsport "$tmp/client.log")
outcome = \"disconnected\"
cause = \"lb.idle_timeout\"
closed_by = \"both\"
at = $(win "$t_conn" 29.5 31.5)
attempts = []
note = \"haproxy timeout tunnel 30s (client/server 50s) cuts the idle upgraded connection on both legs (client <-> haproxy $hport, haproxy <-> server $port); the client saw the close at $(lab_t "$t_cut")\""
    lab_truth "$case" "$peer_s" "$peer_cn" "haproxy $hv"
    ;;
*)
    echo "unknown case $case" >&2
    exit 2
    ;;
esac
