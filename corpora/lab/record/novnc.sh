#!/usr/bin/env bash
# Records noVNC (Debian's 1.3.0, /usr/share/novnc/vnc.html) in headless
# Chromium, through websockify, to TigerVNC's Xvnc, all on 127.0.0.1 inside a
# private network namespace, with one fault per case; every leg is captured:
#   browser   <-> websockify  WebSocket carrying RFB   (port 6080)
#   websockify <-> Xvnc       plain RFB                (port 5901)
#   browser   <-> haproxy     (haproxy-idle only)      (port 6090, haproxy -> 6080)
# The static noVNC files are served apart (python http.server, port 6081, not
# captured); DevTools on 9222 (not captured) drives the deliberate closes
# through record/novnc-cdp.py.
#
# usage: record/novnc.sh CASE        (root: tcpdump, iptables, unshare)
#   user-close        xclock session ~15 s, then noVNC's own Disconnect button is
#                     clicked (Runtime.evaluate; UI.disconnect -> rfb.disconnect())
#   relay-killed      reconnect=1, reconnect_delay=2000; websockify and its
#                     per-connection child SIGKILLed; nothing restarts it
#   relay-restarted   reconnect=1, reconnect_delay=5000; websockify SIGKILLed,
#                     restarted 3 s later; noVNC's retry comes after the restart
#   server-killed     Xvnc SIGKILLed behind websockify (no reconnect)
#   haproxy-idle      browser -> haproxy (mode http, client/server/tunnel 15 s)
#                     -> websockify (no heartbeat) -> Xvnc, static screen
#   client-frozen     640x480 xclock -update 1; every Chromium process SIGSTOPped
#                     20 s, SIGCONT, then the tab is closed (Page.close)
#   server-frozen     xclock; Xvnc SIGSTOPped 20 s, SIGCONT, tab closed later
#   relay-frozen      xclock; websockify and its per-connection child SIGSTOPped
#                     20 s (both kernels still ACK and buffer), SIGCONT, tab closed
#   blackhole         websockify --heartbeat 5; iptables DROP (INPUT chain, so the
#                     capture still sees what is sent) on port 6080 both ways
#                     for 90 s, removed; tab closed once traffic flows again
#   heartbeat-latency websockify --heartbeat 5, static screen, 60 s idle, tab closed
#   server-killed-reconnect   as server-killed, with reconnect=1, reconnect_delay=2000:
#                     noVNC's retry reaches websockify, whose connect to Xvnc is refused
#   haproxy-idle-reconnect    as haproxy-idle, with reconnect=1, reconnect_delay=1000,
#                     capture ended 5 s after the cut
set -euo pipefail
case=${1:?usage: novnc.sh CASE}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lab-lib.sh"
lab_init "novnc-$case" "$@"

rfb=5901 ws=6080 http=6081 lb=6090 devtools=9222
front=$ws
geometry=320x240
hb=""
reconnect=""
case $case in
user-close | server-killed | server-frozen | relay-frozen) ;;
server-killed-reconnect) reconnect="&reconnect=1&reconnect_delay=2000" ;;
haproxy-idle-reconnect)
    front=$lb
    reconnect="&reconnect=1&reconnect_delay=1000"
    ;;
relay-killed) reconnect="&reconnect=1&reconnect_delay=2000" ;;
relay-restarted) reconnect="&reconnect=1&reconnect_delay=5000" ;;
haproxy-idle) front=$lb ;;
client-frozen) geometry=640x480 ;;
blackhole | heartbeat-latency) hb="--heartbeat 5" ;;
*)
    echo "unknown case $case" >&2
    exit 2
    ;;
esac

tmp=$(mktemp -d /tmp/novnc-lab.XXXXXX)
stopped=()
novnc_cleanup() {
    local p
    for p in "${stopped[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
    iptables -F INPUT 2>/dev/null || true
    lab_cleanup
    # A SIGKILLed Xvnc leaves its lock and socket behind: remove ours only.
    if [ -n "${xvnc_pid:-}" ] && [ "$(tr -d ' ' <"/tmp/.X${display#:}-lock" 2>/dev/null)" = "$xvnc_pid" ]; then
        rm -f "/tmp/.X${display#:}-lock" "/tmp/.X11-unix/X${display#:}"
    fi
    rm -rf "$tmp"
}
trap novnc_cleanup EXIT

# Epoch of the action just noted.
act() {
    lab_action "$1"
    last=${lab_actions[-1]%%|*}
}
# Seconds between two epochs plus an offset, for truth windows.
w() { awk -v a="$(lab_t "$1")" -v d="$2" 'BEGIN { printf "%.2f", a + d }'; }
cdp() { python3 "$here/novnc-cdp.py" "$devtools" "$@"; }
# Waits until noVNC says it is connected; sets $connected_at.
wait_connected() {
    local i s
    for i in $(seq 1 60); do
        s=$(cdp state 2>/dev/null || true)
        case $s in
        *noVNC_connected*)
            connected_at=$(lab_now)
            echo "noVNC: $s" >&2
            return 0
            ;;
        esac
        sleep 0.25
    done
    echo "noVNC did not connect: $s" >&2
    return 1
}

# X display: Xvnc's unix socket and lock live in the shared /tmp, so pick a
# number nobody uses.
display="" xvnc_pid=""
for n in $(seq 60 99); do
    [ -e /tmp/.X$n-lock ] || [ -e /tmp/.X11-unix/X$n ] && continue
    display=:$n
    lab_bg Xvnc "$display" -geometry "$geometry" -depth 24 -rfbport "$rfb" -interface 127.0.0.1 \
        -SecurityTypes None -nolisten tcp -AlwaysShared >"$tmp/xvnc.log" 2>&1
    xvnc_pid=$!
    sleep 1
    kill -0 "$xvnc_pid" 2>/dev/null && break
    xvnc_pid=""
done
[ -n "$xvnc_pid" ] || { echo "no Xvnc" >&2; exit 1; }
export DISPLAY=$display
xsetroot -solid '#336699'
case $case in
user-close | relay-killed | relay-restarted | server-killed* | client-frozen | server-frozen | relay-frozen)
    # Without it the case records an idle screen, silently another case.
    command -v xclock >/dev/null || { echo "xclock is needed (Debian x11-apps)" >&2; exit 1; }
    lab_bg xclock -update 1 -geometry "$geometry+0+0" >"$tmp/xclock.log" 2>&1
    ;;
esac

lab_bg python3 -m http.server "$http" --bind 127.0.0.1 --directory /usr/share/novnc \
    >"$tmp/http.log" 2>&1
start_websockify() {
    # shellcheck disable=SC2086
    lab_bg websockify $hb "127.0.0.1:$ws" "127.0.0.1:$rfb" >>"$tmp/websockify.log" 2>&1
    websockify_pid=$!
}
start_websockify
if [ "$case" = haproxy-idle ] || [ "$case" = haproxy-idle-reconnect ]; then
    cat >"$tmp/haproxy.cfg" <<EOF
global
    maxconn 100
defaults
    mode http
    timeout connect 5s
    timeout client 15s
    timeout server 15s
    timeout tunnel 15s
frontend fe
    bind 127.0.0.1:$lb
    default_backend be
backend be
    server ws 127.0.0.1:$ws
EOF
    lab_bg haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1
fi
sleep 1

lab_capture "tcp port $ws or tcp port $rfb or tcp port $lb"

act "headless Chromium starts noVNC vnc.html (autoconnect${reconnect:+, $reconnect}) to port $front"
lab_bg chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --remote-debugging-port=$devtools --user-data-dir="$tmp/chrome" \
    "http://127.0.0.1:$http/vnc.html?autoconnect=1&host=127.0.0.1&port=$front&path=websockify$reconnect" \
    >"$tmp/chrome.log" 2>&1
chrome_pid=$!
wait_connected

# websockify forks a child per connection: a crash takes them all.
kill_websockify() {
    local children
    children=$(pgrep -P "$websockify_pid" | tr '\n' ' ' || true)
    act "SIGKILL websockify (pid $websockify_pid) and its children ($children)"
    kill -KILL "$websockify_pid" $children
}
# Every Chromium process: by the profile directory given, then by parent PID.
chrome_tree() {
    local p c
    {
        pgrep -f -- "--user-data-dir=$tmp/chrome" || true
        for p in $(pgrep -f -- "--user-data-dir=$tmp/chrome" || true); do
            for c in $(pgrep -P "$p" || true); do echo "$c"; done
        done
    } | sort -un
}
front_port() {
    tshark -r "$cap" -Y "tcp.flags.syn==1 && tcp.flags.ack==0 && tcp.dstport==$front" \
        -T fields -e tcp.srcport 2>/dev/null | head -1
}

# The truth of a session the user ended by closing the tab at $t_close.
closed_by_user() {
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(front_port)
outcome = \"disconnected\"
cause = \"client.closed\"
at = [$(w "$t_close" -0.05), $(w "$t_close" 1.0)]
closed_by = \"client\"
attempts = []
note = \"$1\""
}

# Freezes the processes given (SIGSTOP) 20 s from 5 s into the session,
# thaws them, and has the user close the tab 6 s later; sets $t_stop and
# $t_close and ends the capture.
freeze_then_close() {
    local what=$1
    shift
    sleep 5
    stopped=("$@")
    act "SIGSTOP $what (${stopped[*]})"
    t_stop=$last
    kill -STOP "${stopped[@]}"
    sleep 20
    act "SIGCONT $what"
    kill -CONT "${stopped[@]}"
    stopped=()
    sleep 6
    act "tab closed through DevTools (Page.close): the user closes"
    t_close=$last
    cdp close >&2
    sleep 2
    lab_stop_capture
}

peers=("noVNC 1.3.0 (Debian 1:1.3.0-1, vnc.html) in headless Chromium $(chromium --version 2>/dev/null | awk '{print $2}')"
    "websockify 0.10.0 (Debian 0.10.0+dfsg1-4+b1)${hb:+ $hb}"
    "Xvnc TigerVNC 1.12.0 (Debian 1.12.0+dfsg-8)")

case $case in
user-close)
    sleep 15
    act "noVNC's Disconnect button clicked through DevTools (Runtime.evaluate): the user disconnects"
    t_close=$last
    cdp disconnect >&2
    sleep 2
    lab_stop_capture
    closed_by_user "noVNC's own disconnect (UI.disconnect): the browser sends a WebSocket close, websockify echoes it and closes the Xvnc leg"
    ;;
relay-killed)
    sleep 6
    kill_websockify
    t_kill=$last
    sleep 10
    lab_stop_capture
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(front_port)
outcome = \"dead_session\"
cause = \"relay.killed\"
at = [$(w "$t_kill" -0.05), $(w "$t_kill" 0.5)]
closed_by = \"both\"
attempts = [\"rst_to_syn\"]
note = \"both websockify legs closed by the kernel at the kill; noVNC (reconnect_delay 2 s) retries once, the SYN to 6080 is answered by RST, and noVNC stops (a failed connect is unclean: no further retry)\""
    ;;
relay-restarted)
    sleep 6
    kill_websockify
    t_kill=$last
    sleep 3
    act "websockify restarted"
    start_websockify
    t_restart=$last
    sleep 1
    wait_connected
    act "noVNC connected again (DevTools status)"
    t_back=$last
    sleep 3
    lab_stop_capture
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(front_port)
outcome = \"recovered\"
cause = \"relay.killed\"
at = [$(w "$t_kill" -0.05), $(w "$t_kill" 0.5)]
closed_by = \"both\"
recovered_at = [$(w "$t_kill" 4.5), $(w "$t_back" 0.2)]
outage = [4.5, $(awk -v a="$t_kill" -v b="$t_back" 'BEGIN { printf "%.1f", b - a + 0.5 }')]
attempts = []
note = \"websockify SIGKILLed, restarted 3 s later; noVNC's single retry (reconnect_delay 5 s) reaches the new websockify: a second generation of both legs, open when the capture ends\""
    ;;
server-killed)
    sleep 6
    act "SIGKILL Xvnc (pid $xvnc_pid)"
    t_kill=$last
    kill -KILL "$xvnc_pid"
    sleep 4
    lab_stop_capture
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(front_port)
outcome = \"disconnected\"
cause = \"server.killed\"
at = [$(w "$t_kill" -0.05), $(w "$t_kill" 1.5)]
closed_by = \"server\"
attempts = []
note = \"Xvnc's kernel closes the RFB leg; websockify then sends close 1000 'Target closed' to the browser; no reconnect configured\""
    ;;
server-killed-reconnect)
    sleep 6
    act "SIGKILL Xvnc (pid $xvnc_pid)"
    t_kill=$last
    kill -KILL "$xvnc_pid"
    sleep 8
    lab_stop_capture
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(front_port)
outcome = \"dead_session\"
cause = \"server.killed\"
at = [$(w "$t_kill" -0.05), $(w "$t_kill" 1.5)]
closed_by = \"server\"
attempts = [\"rst_to_syn\"]
note = \"Xvnc's kernel closes the RFB leg; websockify sends close 1000 'Target closed'; noVNC (a clean close) retries once 2 s later: websockify accepts the WebSocket, its connect to Xvnc is answered by RST (the refusal is on the websockify-Xvnc leg), it sends close 1011 on the browser leg after the 101, and noVNC stops retrying\""
    ;;
haproxy-idle-reconnect)
    peers+=("haproxy 2.6.12 (Debian 2.6.12-1+deb12u4), mode http, timeout client/server/tunnel 15s")
    t_conn=$connected_at
    sleep 20
    lab_stop_capture
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(front_port)
outcome = \"recovered\"
cause = \"lb.idle_timeout\"
at = [$(w "$t_conn" 14.0), $(w "$t_conn" 17.5)]
closed_by = \"both\"
recovered_at = [$(w "$t_conn" 15.0), $(w "$t_conn" 19.0)]
outage = [0.9, 3.0]
attempts = []
note = \"static screen, no heartbeat: haproxy's 15 s tunnel timeout cuts both of its legs; noVNC takes it as a clean close and reconnects after reconnect_delay 1 s through haproxy: a second generation, open when the capture ends\""
    ;;
haproxy-idle)
    peers+=("haproxy 2.6.12 (Debian 2.6.12-1+deb12u4), mode http, timeout client/server/tunnel 15s")
    t_conn=$connected_at
    sleep 22
    lab_stop_capture
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(front_port)
outcome = \"disconnected\"
cause = \"lb.idle_timeout\"
at = [$(w "$t_conn" 14.0), $(w "$t_conn" 17.5)]
closed_by = \"both\"
attempts = []
note = \"static screen, no heartbeat: after the initial update nothing moves; haproxy's 15 s tunnel timeout closes both of its legs (browser side and websockify side); websockify then closes the Xvnc leg\""
    ;;
client-frozen)
    sleep 5
    stopped=($(chrome_tree))
    act "SIGSTOP every Chromium process (${stopped[*]})"
    t_stop=$last
    kill -STOP "${stopped[@]}"
    sleep 20
    act "SIGCONT Chromium"
    kill -CONT "${stopped[@]}"
    stopped=()
    sleep 5
    act "tab closed through DevTools (Page.close): the user closes"
    t_close=$last
    cdp close >&2
    sleep 2
    lab_stop_capture
    closed_by_user "the browser was frozen (SIGSTOP) 20 s from $(lab_t "$t_stop") while xclock changed the 640x480 screen every second; the session survived it and ended when the tab was closed"
    ;;
server-frozen)
    freeze_then_close Xvnc "$xvnc_pid"
    closed_by_user "Xvnc was frozen (SIGSTOP) 20 s from $(lab_t "$t_stop"); nobody timed out, updates resumed after SIGCONT, and the session ended when the tab was closed"
    ;;
relay-frozen)
    freeze_then_close "websockify and its children" "$websockify_pid" $(pgrep -P "$websockify_pid" || true)
    closed_by_user "websockify was frozen (SIGSTOP) 20 s from $(lab_t "$t_stop"): both legs' kernels kept ACKing into its buffers; nobody timed out, updates resumed after SIGCONT, and the session ended when the tab was closed"
    ;;
blackhole)
    sleep 5
    act "iptables DROP on tcp port $ws both ways (INPUT chain)"
    t_drop=$last
    iptables -A INPUT -p tcp --dport "$ws" -j DROP
    iptables -A INPUT -p tcp --sport "$ws" -j DROP
    sleep 90
    act "iptables DROP removed"
    t_undrop=$last
    iptables -D INPUT -p tcp --dport "$ws" -j DROP
    iptables -D INPUT -p tcp --sport "$ws" -j DROP
    sleep 30
    act "tab closed through DevTools (Page.close): the user closes"
    t_close=$last
    cdp close >&2
    sleep 2
    lab_stop_capture
    closed_by_user "blackhole on the browser leg from $(lab_t "$t_drop") to $(lab_t "$t_undrop"): websockify's heartbeat pings are retransmitted with backoff and get through after the DROP is removed; the session survives and ends when the tab is closed"
    ;;
heartbeat-latency)
    sleep 60
    act "tab closed through DevTools (Page.close): the user closes"
    t_close=$last
    cdp close >&2
    sleep 2
    lab_stop_capture
    closed_by_user "60 s idle with websockify pings every 5 s answered by pongs: open all along until the tab was closed"
    ;;
esac

lab_truth "$case" "${peers[@]}"
