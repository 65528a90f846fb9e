#!/usr/bin/env bash
# Holdout batch of VNC/RFB lab recordings (see ../README.md, NOTES-vnc2.md).
#
#   usage: vnc2.sh CASE        (root: tcpdump, unshare)
#
# Peers: x11vnc serving an Xvfb display, with TigerVNC's viewer
# (xtigervncviewer, on its own Xvfb) or with noVNC 1.3.0 (vnc_lite.html;
# vnc.html where reconnect is wanted) in headless Chromium through websockify.
# All on 127.0.0.1 in a private network namespace (lab_init): RFB on 5901,
# websockify on 6080, haproxy on 6090, noVNC's files on 6081 and DevTools on
# 9222 (not captured). The viewer's "user close" is record/x-close.py
# (WM_DELETE_WINDOW); the browser's "tab closed" is record/novnc-cdp.py close.
#
# Cases:
#   x11vnc-tiger-user-close           viewer window closed after 20 s
#   x11vnc-tiger-server-killed        SIGKILL x11vnc ~8 s in, xclock -update 1
#   x11vnc-tiger-wrong-password-twice two viewers with a wrong password, then
#                                     the right one; closed 10 s later
#   x11vnc-tiger-client-frozen        viewer SIGSTOPped 25 s (xclock -update 1),
#                                     SIGCONT, window closed 5 s later
#   novnc-lite-user-close             vnc_lite.html, tab closed after 12 s
#   novnc-lite-relay-restarted        vnc.html reconnect=1 (default delay 5 s;
#                                     vnc_lite has no reconnect), websockify
#                                     SIGKILLed ~9 s in, restarted 6 s later
#   novnc-lite-haproxy-tcp-idle       Chromium -> haproxy (mode tcp, timeout
#                                     client/server 25s) -> websockify ->
#                                     x11vnc, static screen, idle until the cut
#   novnc-lite-server-killed          x11vnc SIGKILLed ~10 s in, no reconnect
case_name=${1:?case}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lab-lib.sh"
lab_init "vnc2-$case_name" "$@"

work=$(mktemp -d /tmp/vnc2-lab.XXXXXX)
rfb=5901 ws=6080 http=6081 lb=6090 devtools=9222
peer_x11vnc="x11vnc 0.9.16 (Debian 0.9.16-9)"
peer_viewer="xtigervncviewer (TigerVNC 1.12.0, Debian 1.12.0+dfsg-8)"
peer_ws="websockify 0.10.0 (Debian 0.10.0+dfsg1-4+b1)"
peer_chrome="headless Chromium $(chromium --version 2>/dev/null | awk '{print $2}')"

vnc2_cleanup() {
    lab_cleanup
    rm -rf "$work"
}
trap vnc2_cleanup EXIT

act() { # text: notes an action, its epoch in $last
    lab_action "$1"
    last=${lab_actions[-1]%%|*}
}
# capture seconds of an epoch plus an offset
w() { awk -v a="$(lab_t "$1")" -v d="$2" 'BEGIN { printf "%.2f", a + d }'; }

wait_port() { # port
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $1)).close()" 2>/dev/null && return
        sleep 0.1
    done
    echo "nothing listens on $1" >&2
    exit 1
}
wait_gone() { # pid timeout
    local i
    for i in $(seq $(($2 * 10))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    return 1
}

# X displays live in the shared /tmp: take numbers nobody uses.
free_display() {
    local n
    for n in $(seq 80 119); do
        [ -e /tmp/.X$n-lock ] || [ -e /tmp/.X11-unix/X$n ] || [ -n "${used_disp[$n]:-}" ] && continue
        used_disp[$n]=1
        echo "$n"
        return
    done
    exit 1
}
declare -A used_disp
start_xvfb() { # var geometry: starts an Xvfb, its display number in var
    local n
    n=$(free_display)
    used_disp[$n]=1
    lab_bg Xvfb ":$n" -screen 0 "$2" -nolisten tcp >"$work/xvfb$n.log" 2>&1
    for _ in $(seq 50); do xdpyinfo -display ":$n" >/dev/null 2>&1 && { printf -v "$1" %s "$n"; return; }; sleep 0.1; done
    echo "Xvfb :$n did not start" >&2
    exit 1
}

start_x11vnc() { # extra args
    lab_bg x11vnc -display ":$sdisp" -rfbport $rfb -listen 127.0.0.1 -forever -shared \
        "$@" -o "$work/x11vnc.log" >/dev/null 2>&1
    x11vnc_pid=$!
    wait_port $rfb
    sleep 0.5
}
start_viewer() { # args...; sets $viewer
    lab_bg env DISPLAY=":$vdisp" xtigervncviewer "$@" 127.0.0.1::$rfb >>"$work/viewer.log" 2>&1
    viewer=$!
}
user_close() { # pid
    DISPLAY=":$vdisp" /usr/bin/python3 "$here/x-close.py" "$1" >&2
}
start_websockify() {
    lab_bg websockify "127.0.0.1:$ws" "127.0.0.1:$rfb" >>"$work/websockify.log" 2>&1
    websockify_pid=$!
}
start_chromium() { # page-and-query
    lab_bg chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --remote-debugging-port=$devtools --user-data-dir="$work/chrome" \
        "http://127.0.0.1:$http/$1" >"$work/chrome.log" 2>&1
    chrome_pid=$!
}
page_status() { # vnc_lite's #status, or vnc.html's #noVNC_status and class
    python3 "$here/cdp.py" $devtools eval \
        "(document.getElementById('status')||document.getElementById('noVNC_status')||{}).textContent + ' | ' + document.documentElement.className" 2>/dev/null || true
}
wait_connected() { # sets $connected_at
    local s
    for _ in $(seq 80); do
        s=$(page_status)
        case $s in
        *"Connected to"* | *noVNC_connected*)
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
kill_websockify() {
    local children
    children=$(pgrep -P "$websockify_pid" | tr '\n' ' ' || true)
    act "SIGKILL websockify (pid $websockify_pid) and its per-connection children ($children)"
    # shellcheck disable=SC2086
    kill -KILL "$websockify_pid" $children
}
syn_ports() { # port: client ports of SYNs to it, in order
    tshark -r "$cap" -Y "tcp.flags.syn==1 && tcp.flags.ack==0 && tcp.dstport==$1" -T fields -e tcp.srcport 2>/dev/null
}

start_xvfb sdisp 320x240x24
DISPLAY=":$sdisp" xsetroot -solid '#336699'
clock() { lab_bg env DISPLAY=":$sdisp" xclock -update 1 -geometry 200x200+10+10 >"$work/xclock.log" 2>&1; }

case $case_name in
x11vnc-tiger-*)
    start_xvfb vdisp 640x480x24
    pw=()
    if [ "$case_name" = x11vnc-tiger-wrong-password-twice ]; then
        printf 'tether-lab\n' | vncpasswd -f >"$work/passwd"
        printf 'wrong-pw\n' | vncpasswd -f >"$work/wrong1"
        printf 'Wrong2!!\n' | vncpasswd -f >"$work/wrong2"
        start_x11vnc -rfbauth "$work/passwd"
        pw=(-passwd "$work/passwd")
    else
        start_x11vnc -nopw
    fi
    case $case_name in *server-killed | *client-frozen) clock ;; esac
    lab_capture "tcp port $rfb"
    case $case_name in
    x11vnc-tiger-user-close)
        act "xtigervncviewer connects to x11vnc (no password)"
        start_viewer
        sleep 20
        act "the user closes the viewer window (x-close.py: WM_DELETE_WINDOW to xtigervncviewer pid $viewer)"
        t_close=$last
        user_close "$viewer"
        wait_gone "$viewer" 5 || echo "viewer still running" >&2
        sleep 1
        lab_stop_capture
        sessions="[[sessions]]
client = \"127.0.0.1\"
outcome = \"disconnected\"
cause = \"client.closed\"
at = [$(w "$t_close" -0.1), $(w "$t_close" 1.0)]
closed_by = \"client\"
attempts = []
note = \"static screen; the user closed the TigerVNC viewer window after 20 s\""
        ;;
    x11vnc-tiger-server-killed)
        act "xtigervncviewer connects to x11vnc (no password); xclock -update 1 on the served screen"
        start_viewer
        sleep 8
        act "x11vnc (pid $x11vnc_pid) sent SIGKILL"
        t_kill=$last
        kill -9 "$x11vnc_pid"
        sleep 5
        if kill -0 "$viewer" 2>/dev/null; then
            DISPLAY=":$vdisp" /usr/bin/python3 "$here/x-close.py" "$viewer" --list >&2 || true
            act "the viewer (pid $viewer) is still running 5 s after the kill"
        else
            act "the viewer (pid $viewer) has exited"
        fi
        lab_stop_capture
        sessions="[[sessions]]
client = \"127.0.0.1\"
outcome = \"disconnected\"
cause = \"server.killed\"
at = [$(w "$t_kill" -0.1), $(w "$t_kill" 1.0)]
closed_by = \"server\"
attempts = []
note = \"x11vnc SIGKILLed while xclock changed the screen every second; its kernel closed the socket and nothing listens on $rfb afterwards\""
        ;;
    x11vnc-tiger-wrong-password-twice)
        for i in 1 2; do
            act "xtigervncviewer connects with a wrong password (-passwd file, try $i)"
            start_viewer -passwd "$work/wrong$i"
            sleep 4
            act "the user dismisses the failed viewer (x-close.py on pid $viewer)"
            user_close "$viewer" || true
            wait_gone "$viewer" 3 || { echo "viewer $viewer still up after x-close; SIGTERM" >&2; kill "$viewer"; wait_gone "$viewer" 3 || kill -9 "$viewer"; }
            sleep 1
        done
        act "xtigervncviewer connects with the right password"
        start_viewer "${pw[@]}"
        sleep 10
        act "the user closes the viewer window (x-close.py: WM_DELETE_WINDOW to xtigervncviewer pid $viewer)"
        t_close=$last
        user_close "$viewer"
        wait_gone "$viewer" 5 || echo "viewer still running" >&2
        sleep 1
        lab_stop_capture
        sessions="[[sessions]]
client = \"127.0.0.1\"
outcome = \"disconnected\"
cause = \"client.closed\"
at = [$(w "$t_close" -0.1), $(w "$t_close" 1.0)]
closed_by = \"client\"
attempts = [\"auth.refused\", \"auth.refused\"]
note = \"two connections with wrong passwords refused by x11vnc (VncAuth SecurityResult failed), then one with the right password ran until the user closed the window\""
        ;;
    x11vnc-tiger-client-frozen)
        act "xtigervncviewer connects to x11vnc (no password); xclock -update 1 on the served screen"
        start_viewer
        sleep 6
        act "xtigervncviewer (pid $viewer) sent SIGSTOP"
        t_stop=$last
        kill -STOP "$viewer"
        sleep 25
        act "xtigervncviewer (pid $viewer) sent SIGCONT"
        t_cont=$last
        kill -CONT "$viewer"
        sleep 5
        act "the user closes the viewer window (x-close.py: WM_DELETE_WINDOW to xtigervncviewer pid $viewer)"
        t_close=$last
        user_close "$viewer"
        wait_gone "$viewer" 5 || echo "viewer still running" >&2
        sleep 1
        lab_stop_capture
        sessions="[[sessions]]
client = \"127.0.0.1\"
outcome = \"disconnected\"
cause = \"client.closed\"
at = [$(w "$t_close" -0.1), $(w "$t_close" 1.0)]
closed_by = \"client\"
attempts = []
note = \"the viewer was SIGSTOPped from $(lab_t "$t_stop") to $(lab_t "$t_cont") s while xclock changed the screen every second; the session survived and ended when the user closed the window\""
        ;;
    *)
        echo "unknown case $case_name" >&2
        exit 2
        ;;
    esac
    echo "--- viewer log" >&2; cat "$work/viewer.log" >&2
    lab_truth "$case_name" "$peer_x11vnc" "$peer_viewer"
    ;;

novnc-lite-*)
    start_x11vnc -nopw
    case $case_name in *haproxy-tcp-idle) ;; *) clock ;; esac
    lab_bg python3 -m http.server "$http" --bind 127.0.0.1 --directory /usr/share/novnc \
        >"$work/http.log" 2>&1
    start_websockify
    front=$ws
    page="vnc_lite.html?host=127.0.0.1&port=$ws&path=websockify"
    pagename="noVNC 1.3.0 (Debian 1:1.3.0-1, vnc_lite.html) in $peer_chrome"
    case $case_name in
    *relay-restarted)
        page="vnc.html?autoconnect=1&reconnect=1&host=127.0.0.1&port=$ws&path=websockify"
        pagename="noVNC 1.3.0 (Debian 1:1.3.0-1, vnc.html, reconnect=1, default reconnect_delay 5000) in $peer_chrome"
        ;;
    *haproxy-tcp-idle)
        front=$lb
        page="vnc_lite.html?host=127.0.0.1&port=$lb&path=websockify"
        cat >"$work/haproxy.cfg" <<EOF
global
    log stdout format raw local0
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 5s
    timeout client 25s
    timeout server 25s
frontend fe
    bind 127.0.0.1:$lb
    default_backend be
backend be
    server ws 127.0.0.1:$ws
EOF
        lab_bg haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1
        ;;
    esac
    wait_port $ws
    wait_port $http
    [ "$front" = $lb ] && wait_port $lb
    sleep 0.5
    lab_capture "tcp port $rfb or tcp port $ws or tcp port $lb"
    act "headless Chromium opens noVNC ${page%%\?*} to port $front"
    t_open=$last
    start_chromium "$page"
    wait_connected
    peers=("$pagename" "$peer_ws" "$peer_x11vnc")
    front_port() { syn_ports "$front" | head -1; }
    case $case_name in
    novnc-lite-user-close)
        sleep 12
        act "tab closed through DevTools (novnc-cdp.py close: Page.close): the user closes"
        t_close=$last
        python3 "$here/novnc-cdp.py" $devtools close >&2
        sleep 2
        lab_stop_capture
        sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(front_port)
outcome = \"disconnected\"
cause = \"client.closed\"
at = [$(w "$t_close" -0.05), $(w "$t_close" 1.0)]
closed_by = \"client\"
attempts = []
note = \"vnc_lite session with xclock ticking, the tab closed 12 s after noVNC reported Connected\""
        ;;
    novnc-lite-server-killed)
        sleep $(awk -v a="$t_open" -v b="$(lab_now)" 'BEGIN { d = a + 10 - b; print (d > 0 ? d : 0) }')
        act "x11vnc (pid $x11vnc_pid) sent SIGKILL"
        t_kill=$last
        kill -9 "$x11vnc_pid"
        sleep 5
        act "status shown by vnc_lite: $(page_status | tr -d '\"\\')"
        lab_stop_capture
        sessions="[[sessions]]
client = \"127.0.0.1\"
port = $(front_port)
outcome = \"disconnected\"
cause = \"server.killed\"
at = [$(w "$t_kill" -0.05), $(w "$t_kill" 1.0)]
closed_by = \"server\"
attempts = []
note = \"x11vnc SIGKILLed behind websockify while xclock ticked; vnc_lite has no reconnect\""
        ;;
    novnc-lite-relay-restarted)
        sleep $(awk -v a="$t_open" -v b="$(lab_now)" 'BEGIN { d = a + 9 - b; print (d > 0 ? d : 0) }')
        kill_websockify
        t_kill=$last
        sleep 6
        act "websockify restarted"
        t_restart=$last
        start_websockify
        sleep 20
        act "status shown by vnc.html: $(page_status | tr -d '\"\\')"
        lab_stop_capture
        # The truth from the capture: each later SYN to $ws is one retry,
        # refused (RST) or answered (SYN-ACK, then a 101 makes a generation).
        fp=$(front_port)
        attempts="" back="" n=0
        for p in $(syn_ports $ws | tail -n +2); do
            n=$((n + 1))
            if [ -n "$(tshark -r "$cap" -Y "tcp.srcport==$ws && tcp.dstport==$p && tcp.flags.reset==1" -T fields -e frame.number 2>/dev/null | head -1)" ]; then
                attempts+="${attempts:+, }\"rst_to_syn\""
            else
                back=$(tshark -r "$cap" -Y "tcp.srcport==$ws && tcp.dstport==$p && http.response.code==101" -T fields -e frame.time_relative 2>/dev/null | head -1)
                [ -n "$back" ] && break
            fi
        done
        echo "retries: $n, attempts [$attempts], back at ${back:-never}" >&2
        if [ -n "$back" ]; then
            sessions="[[sessions]]
client = \"127.0.0.1\"
port = $fp
outcome = \"recovered\"
cause = \"relay.killed\"
at = [$(w "$t_kill" -0.05), $(w "$t_kill" 0.5)]
closed_by = \"both\"
recovered_at = [$(awk -v b="$back" 'BEGIN { printf "%.2f, %.2f", b - 0.5, b + 0.5 }')]
outage = [$(awk -v a="$(lab_t "$t_kill")" -v b="$back" 'BEGIN { printf "%.1f, %.1f", b - a - 0.5, b - a + 0.5 }')]
attempts = [$attempts]
note = \"websockify SIGKILLed, restarted 6 s later; noVNC's retry got a 101 from the new websockify at $back s\""
        else
            sessions="[[sessions]]
client = \"127.0.0.1\"
port = $fp
outcome = \"dead_session\"
cause = \"relay.killed\"
at = [$(w "$t_kill" -0.05), $(w "$t_kill" 0.5)]
closed_by = \"both\"
attempts = [$attempts]
note = \"websockify SIGKILLed (its kernel FINned both legs), restarted 6 s later at $(lab_t "$t_restart") s; vnc.html (reconnect=1, default reconnect_delay 5 s) retried once, $n SYN(s) after the kill, refused with RST before the restart; a failed connect is unclean, so noVNC stopped retrying ('Failed to connect to server') and the restarted websockify got nothing\""
        fi
        ;;
    novnc-lite-haproxy-tcp-idle)
        # idle until the cut: poll vnc_lite's status (DevTools, not captured)
        for _ in $(seq 90); do
            sleep 1
            case $(page_status) in *Disconnected* | *wrong*) break ;; esac
        done
        act "vnc_lite shows: $(page_status | tr -d '\"\\')"
        sleep 3
        lab_stop_capture
        cat "$work/haproxy.log" >&2
        peers+=("haproxy 2.6.12 (Debian 2.6.12-1+deb12u4), mode tcp, timeout client/server 25s")
        fp=$(front_port)
        # From the capture: the last payload on the browser leg and haproxy's
        # first FIN or RST there (the cut).
        last_data=$(tshark -r "$cap" -Y "tcp.port==$fp && tcp.len>0" -T fields -e frame.time_relative 2>/dev/null | tail -1)
        t_cut=$(tshark -r "$cap" -Y "tcp.srcport==$lb && tcp.dstport==$fp && (tcp.flags.fin==1 || tcp.flags.reset==1)" -T fields -e frame.time_relative 2>/dev/null | head -1)
        echo "browser leg: last payload $last_data, haproxy's cut ${t_cut:-none}" >&2
        sessions="[[sessions]]
client = \"127.0.0.1\"
port = $fp
outcome = \"disconnected\"
cause = \"lb.idle_timeout\"
at = [$(awk -v a="$last_data" 'BEGIN { printf "%.2f, %.2f", a + 24.5, a + 26.5 }')]
closed_by = \"both\"
attempts = []
note = \"static screen, vnc_lite, no heartbeat: the last payload on the browser leg at $last_data s; haproxy (mode tcp, timeout client/server 25s) cut both of its legs at ${t_cut:-?} s; websockify then closed the x11vnc leg\""
        ;;
    esac
    echo "t_open $(lab_t "$t_open") connected $(lab_t "$connected_at")" >&2
    if [ -n "${VNC2_SESSIONS:-}" ]; then sessions=$(cat "$VNC2_SESSIONS"); fi
    lab_truth "$case_name" "${peers[@]}"
    ;;
*)
    echo "unknown case $case_name" >&2
    exit 2
    ;;
esac
