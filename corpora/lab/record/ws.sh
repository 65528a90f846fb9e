#!/usr/bin/env bash
# Plain WebSocket sessions between the `websockets` library's peers
# (record/ws-peers.py: server echoes and ticks every 1 s, client sends every
# 2 s), or record/../../record/ws-token-peers.py for expired-token, on
# 127.0.0.1 in a private network namespace, under one fault per case:
#
#   user-close           the client closes with 1000 after ~10 s
#   server-killed        SIGKILL the server at ~T+8
#   server-frozen-short  SIGSTOP the server 5 s (client keepalive 3 s / 10 s,
#                        so no timeout fires), SIGCONT, client closes 5 s later
#   client-frozen-long   server keepalive 5 s / 5 s; SIGSTOP the client 30 s:
#                        the server fails the connection (1011), then SIGCONT
#   blackhole            both keepalive 5 s / 5 s; iptables DROP (INPUT, both
#                        directions of the server port) at ~T+10 for 60 s
#   haproxy-idle         client -> haproxy (http mode, 10 s timeouts) ->
#                        server, no messages and no pings, until haproxy cuts
#   expired-token        ws-token-peers.py: the server drops the session at
#                        3.75 s, the client reconnects with the same token,
#                        now expired, and gets 401
#   several-clients      three clients; client 2 SIGKILLed at ~T+10, clients
#                        1 and 3 close with 1000 at ~T+20
#
# usage: record/ws.sh CASE   (root: unshare, tcpdump, iptables)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lab-lib.sh"
case=${1:?case}
lab_init "ws-$case" "$@"

peers="$here/ws-peers.py"
tokpeers="$here/../../record/ws-token-peers.py"
tmp=$(mktemp -d)
trap 'lab_cleanup; rm -rf "$tmp"' EXIT
port=8765
url="ws://127.0.0.1:$port/"
wsver=$(python3 -c 'import websockets; print(websockets.__version__)')
pyver=$(python3 -c 'import platform; print(platform.python_version())')
peer_s="websockets $wsver server (ws-peers.py, Python $pyver)"
peer_c="websockets $wsver client (ws-peers.py, Python $pyver)"

# win EPOCH D1 D2: "[t+D1, t+D2]" in capture seconds.
win() {
    local t
    t=$(lab_t "$1")
    awk -v t="$t" -v a="$2" -v b="$3" 'BEGIN { printf "[%.2f, %.2f]", t + a, t + b }'
}
# The client port a client's log reports.
cport() { sed -n "s/.*client: connected from ('127.0.0.1', \([0-9]*\)).*/\1/p" "$1" | head -1; }
server() { lab_bg python3 "$peers" server "$port" "$@" >>"$tmp/server.log" 2>&1; }
client() { # LOG ARGS...
    local log=$1
    shift
    lab_bg python3 "$peers" client "$@" >>"$log" 2>&1
}
finish() {
    lab_stop_capture
    echo "--- peer logs" >&2
    cat "$tmp"/*.log >&2 || true
}

case $case in
user-close)
    lab_capture "tcp port $port"
    server
    sleep 1
    lab_action "client started"
    client "$tmp/client.log" "$url"
    c=${lab_pids[-1]}
    sleep 10
    t_close=$(lab_now)
    lab_action "client (pid $c) told to close (SIGUSR1): close 1000 bye"
    kill -USR1 "$c"
    sleep 2
    finish
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(cport "$tmp/client.log")
outcome = \"disconnected\"
cause = \"client.closed\"
closed_by = \"client\"
at = $(win "$t_close" 0 1)
attempts = []
note = \"client sends close 1000 bye, server echoes it and closes TCP first\""
    lab_truth "$case" "$peer_s" "$peer_c"
    ;;
server-killed)
    lab_capture "tcp port $port"
    server
    s=${lab_pids[-1]}
    sleep 1
    lab_action "client started"
    client "$tmp/client.log" "$url"
    sleep 8
    t_kill=$(lab_now)
    lab_action "SIGKILL server (pid $s)"
    kill -KILL "$s"
    sleep 2
    finish
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(cport "$tmp/client.log")
outcome = \"disconnected\"
cause = \"server.killed\"
closed_by = \"server\"
at = $(win "$t_kill" 0 0.5)
attempts = []
note = \"no close frame: the kernel closes the server's socket; the client does not reconnect\""
    lab_truth "$case" "$peer_s" "$peer_c"
    ;;
server-frozen-short)
    lab_capture "tcp port $port"
    server
    s=${lab_pids[-1]}
    sleep 1
    lab_action "client connects (keepalive: ping_interval 3 s, ping_timeout 10 s)"
    client "$tmp/client.log" "$url" --ping 3 10
    c=${lab_pids[-1]}
    sleep 6
    t_stop=$(lab_now)
    lab_action "SIGSTOP server (pid $s) for 5 s"
    kill -STOP "$s"
    sleep 5
    t_cont=$(lab_now)
    lab_action "SIGCONT server (pid $s)"
    kill -CONT "$s"
    sleep 5
    t_close=$(lab_now)
    lab_action "client (pid $c) told to close (SIGUSR1): close 1000 bye"
    kill -USR1 "$c"
    sleep 2
    finish
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(cport "$tmp/client.log")
outcome = \"disconnected\"
cause = \"client.closed\"
closed_by = \"client\"
at = $(win "$t_close" 0 1)
attempts = []
note = \"server frozen $(lab_t "$t_stop")..$(lab_t "$t_cont") (5 s), shorter than the client's 10 s ping timeout: the session survives; the client closes later with 1000\""
    lab_truth "$case" "$peer_s" "$peer_c"
    ;;
client-frozen-long)
    lab_capture "tcp port $port"
    server --ping 5 5
    sleep 1
    lab_action "client connects (server keepalive: ping_interval 5 s, ping_timeout 5 s; client keepalive off)"
    client "$tmp/client.log" "$url"
    c=${lab_pids[-1]}
    sleep 6
    t_stop=$(lab_now)
    lab_action "SIGSTOP client (pid $c) for 30 s"
    kill -STOP "$c"
    sleep 30
    lab_action "SIGCONT client (pid $c)"
    kill -CONT "$c"
    sleep 3
    finish
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(cport "$tmp/client.log")
outcome = \"disconnected\"
cause = \"server.closed\"
origin = \"client.frozen\"
closed_by = \"server\"
at = $(win "$t_stop" 4.5 11)
attempts = []
note = \"the server's keepalive ping goes unanswered for 5 s: it sends close 1011 keepalive ping timeout and its FIN at once (websockets fail())\""
    lab_truth "$case" "$peer_s" "$peer_c"
    ;;
blackhole)
    lab_capture "tcp port $port"
    server --ping 5 5
    sleep 1
    lab_action "client connects (keepalive both sides: ping_interval 5 s, ping_timeout 5 s)"
    client "$tmp/client.log" "$url" --ping 5 5
    sleep 10
    t_drop=$(lab_now)
    lab_action "iptables DROP tcp port $port both directions (INPUT)"
    iptables -A INPUT -p tcp --dport "$port" -j DROP
    iptables -A INPUT -p tcp --sport "$port" -j DROP
    sleep 60
    t_lift=$(lab_now)
    lab_action "iptables DROP rules removed"
    iptables -D INPUT -p tcp --dport "$port" -j DROP
    iptables -D INPUT -p tcp --sport "$port" -j DROP
    sleep 4
    finish
    out=$(awk -v a="$t_drop" -v b="$t_lift" 'BEGIN { printf "[%.1f, %.1f]", b - a - 0.5, b - a + 0.5 }')
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(cport "$tmp/client.log")
outcome = \"disconnected\"
cause = \"network.outage\"
at = $(win "$t_drop" 4.5 11)
outage = $out
attempts = []
note = \"the pings sent just after the DROP go unanswered; both keepalives time out 5 s later (close 1011 queued behind the unacked pings, never on the wire), the peers drop their sockets after close_timeout 10 s; only the first unacked segments are retransmitted with backoff; nothing passes after the DROP is lifted (the next retransmission would come ~50 s after the lift)\""
    lab_truth "$case" "$peer_s" "$peer_c"
    ;;
haproxy-idle)
    hport=8766
    cat >"$tmp/haproxy.cfg" <<EOF
global
    log stdout format raw local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 10s
    timeout server 10s
    timeout tunnel 10s
frontend fe
    bind 127.0.0.1:$hport
    default_backend be
backend be
    server s1 127.0.0.1:$port
EOF
    lab_capture "tcp port $port or tcp port $hport"
    server --quiet
    lab_bg haproxy -db -f "$tmp/haproxy.cfg" >>"$tmp/haproxy.log" 2>&1
    sleep 1
    t_conn=$(lab_now)
    lab_action "client connects through haproxy (port $hport); no messages, keepalive off on both peers"
    client "$tmp/client.log" "ws://127.0.0.1:$hport/" --quiet
    sleep 14
    finish
    hv=$(haproxy -v | head -1 | awk '{print $3}')
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(cport "$tmp/client.log")
outcome = \"disconnected\"
cause = \"lb.idle_timeout\"
closed_by = \"both\"
at = $(win "$t_conn" 9.5 11.5)
attempts = []
note = \"haproxy timeout tunnel 10s cuts the idle upgraded connection on both legs (client <-> haproxy $hport, haproxy <-> server $port)\""
    lab_truth "$case" "$peer_s" "$peer_c" "haproxy $hv"
    ;;
expired-token)
    port=6150
    lab_capture "tcp port $port"
    lab_bg python3 "$tokpeers" server "$port" 3.75 >>"$tmp/server.log" 2>&1
    sleep 0.5
    t0=$(lab_now)
    lab_action "client fetches a token (3 s life), upgrades, then reconnects after the drop with the same token"
    python3 "$tokpeers" client "$port" stale >"$tmp/client.log" 2>&1
    sleep 1
    finish
    # The client's log gives its own times (seconds since it started); its
    # first line (the token fetch) is mapped to the capture's first frame.
    t0=$(awk -v s="$lab_start" -F'[][]' '/token/ { printf "%.6f", s - $2; exit }' "$tmp/client.log")
    t_drop=$(awk -v t="$t0" -F'[][]' '/server closed the connection|server reset/ { printf "%.3f", t + $2; exit }' "$tmp/client.log")
    t_401=$(awk -v t="$t0" -F'[][]' '/: 401/ { printf "%.3f", t + $2; exit }' "$tmp/client.log")
    lab_actions+=("$t_drop|server drops the session (no close frame, FIN) 3.75 s after it opened (client log time, mapped via the first SYN)")
    lab_actions+=("$t_401|client's reconnect with the old, expired token answered 401 (client log time, mapped via the first SYN)")
    port1=$(tshark -r "$cap" -Y 'http.request.uri contains "/ws"' -T fields -e tcp.srcport 2>/dev/null | head -1)
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $port1
outcome = \"dead_session\"
cause = \"http.401_stale_token\"
closed_by = \"server\"
at = $(win "$t_drop" -0.3 0.3)
attempts = [\"http_401\"]
note = \"token TTL 3 s; the reconnect ~1 s after the drop reuses it past its expiry: 401 token expired\""
    lab_truth "$case" "ws-token-peers.py (Python $pyver stdlib) server" "ws-token-peers.py client"
    ;;
several-clients)
    lab_capture "tcp port $port"
    server
    sleep 1
    lab_action "three clients connect, 0.5 s apart"
    for i in 1 2 3; do
        client "$tmp/client$i.log" "$url"
        cp[$i]=${lab_pids[-1]}
        sleep 0.5
    done
    sleep 9
    t_kill=$(lab_now)
    lab_action "SIGKILL client 2 (pid ${cp[2]})"
    kill -KILL "${cp[2]}"
    sleep 10
    t_close=$(lab_now)
    lab_action "clients 1 and 3 (pids ${cp[1]} ${cp[3]}) told to close (SIGUSR1): close 1000 bye"
    kill -USR1 "${cp[1]}" "${cp[3]}"
    sleep 2
    finish
    sessions=""
    for i in 1 2 3; do
        if [ $i = 2 ]; then
            at=$(win "$t_kill" 0 0.5)
            note="client process SIGKILLed: no close frame, its kernel sends FIN; the server closes its side"
        else
            at=$(win "$t_close" 0 1)
            note="client $i closes with 1000 bye"
        fi
        sessions+="[[sessions]]
client = \"127.0.0.1\"
port = $(cport "$tmp/client$i.log")
outcome = \"disconnected\"
cause = \"client.closed\"
closed_by = \"client\"
at = $at
attempts = []
note = \"$note\"

"
    done
    lab_truth "$case" "$peer_s" "$peer_c"
    ;;
*)
    echo "unknown case $case" >&2
    exit 2
    ;;
esac
