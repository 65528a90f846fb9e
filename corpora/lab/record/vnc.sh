#!/usr/bin/env bash
# Lab recordings of VNC/RFB sessions ending under faults (see ../README.md).
#
#   usage: vnc.sh CASE        (root: tcpdump, unshare, iptables)
#
# Peers: TigerVNC's Xvnc with TigerVNC's viewer (xtigervncviewer, on its own
# Xvfb), and x11vnc serving an Xvfb display with vncdotool (PyPI) as client.
# Everything runs in a private network namespace on 127.0.0.1: VNC on 5901
# (haproxy front end on 5902), X displays :71 (server side), :72 and :73
# (viewers). The "user close" of the TigerVNC viewer is a real window close:
# the script sends WM_DELETE_WINDOW to the viewer's top-level window (what a
# window manager's close button does; there is no WM on the Xvfb).
#
# Cases:
#   xvnc-user-close            viewer up ~15 s, the user closes the window
#   xvnc-server-killed         SIGKILL Xvnc mid-session
#   xvnc-server-frozen         SIGSTOP Xvnc 20 s, SIGCONT, user closes 10 s later
#   xvnc-client-frozen         SIGSTOP the viewer 40 s while the screen changes
#                              (random noise), SIGCONT, user closes
#   xvnc-wrong-password-retry  VncAuth: a viewer with a wrong password, then one
#                              with the right one, runs 10 s, user closes
#   xvnc-blackhole             iptables DROP (INPUT, both directions) on 5901
#                              for 120 s while the screen changes, removed;
#                              user closes once the session moves again
#   x11vnc-user-close          vncdotool does moves/captures ~10 s, exits
#   x11vnc-wrong-password-retry vncdotool with a wrong, then the right password
#   x11vnc-server-killed       SIGKILL x11vnc while vncdotool is busy
#   xvnc-two-clients-one-dies  two viewers (shared); one SIGKILLed, the other
#                              closed by the user 10 s later
#   xvnc-haproxy-idle          viewer -> haproxy (timeout 10 s) -> Xvnc, static
#                              screen: haproxy cuts the idle connection
case_name=${1:?case}
. "$(dirname "$0")/lab-lib.sh"
lab_init "vnc-$case_name" "$@"

work=$(mktemp -d)
port=5901
peer_xvnc="Xvnc (TigerVNC 1.12.0)"
peer_viewer="xtigervncviewer (TigerVNC 1.12.0)"
peer_x11vnc="x11vnc 0.9.16"
peer_vncdo="vncdotool 1.4.2"

# X helper through Xlib via ctypes: close a top-level window the way a
# window manager does (WM_DELETE_WINDOW), or paint random noise.
cat >"$work/x.py" <<'EOF'
import ctypes, os, sys, time
x11 = ctypes.CDLL("libX11.so.6")
V, UL, I = ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int
x11.XOpenDisplay.restype = V; x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
x11.XDefaultRootWindow.restype = UL; x11.XDefaultRootWindow.argtypes = [V]
x11.XInternAtom.restype = UL; x11.XInternAtom.argtypes = [V, ctypes.c_char_p, I]
x11.XQueryTree.argtypes = [V, UL, ctypes.POINTER(UL), ctypes.POINTER(UL), ctypes.POINTER(ctypes.POINTER(UL)), ctypes.POINTER(ctypes.c_uint)]
x11.XFetchName.argtypes = [V, UL, ctypes.POINTER(ctypes.c_char_p)]
x11.XSendEvent.argtypes = [V, UL, I, ctypes.c_long, V]
x11.XFlush.argtypes = [V]
x11.XDefaultVisual.restype = V; x11.XDefaultVisual.argtypes = [V, I]
x11.XCreateImage.restype = V
x11.XCreateImage.argtypes = [V, V, ctypes.c_uint, I, I, ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint, I, I]
x11.XCreateGC.restype = V; x11.XCreateGC.argtypes = [V, UL, UL, V]
x11.XPutImage.argtypes = [V, UL, V, V, I, I, I, I, ctypes.c_uint, ctypes.c_uint]
mode, disp = sys.argv[1], sys.argv[2].encode()
d = x11.XOpenDisplay(disp)
if not d:
    sys.exit("cannot open display")
root = x11.XDefaultRootWindow(d)
if mode == "close":
    class CM(ctypes.Structure):
        _fields_ = [("type", I), ("serial", UL), ("send_event", I), ("display", V),
                    ("window", UL), ("message_type", UL), ("format", I), ("l", ctypes.c_long * 5)]
    class EV(ctypes.Union):
        _fields_ = [("xclient", CM), ("pad", ctypes.c_long * 24)]
    r, p, ch, n = UL(), UL(), ctypes.POINTER(UL)(), ctypes.c_uint()
    x11.XQueryTree(d, root, ctypes.byref(r), ctypes.byref(p), ctypes.byref(ch), ctypes.byref(n))
    proto = x11.XInternAtom(d, b"WM_PROTOCOLS", 0)
    delete = x11.XInternAtom(d, b"WM_DELETE_WINDOW", 0)
    sent = 0
    for i in range(n.value):
        w = ch[i]
        name = ctypes.c_char_p()
        if x11.XFetchName(d, w, ctypes.byref(name)) and name.value and sys.argv[3].encode() in name.value:
            ev = EV()
            ev.xclient.type = 33  # ClientMessage
            ev.xclient.window = w
            ev.xclient.message_type = proto
            ev.xclient.format = 32
            ev.xclient.l[0] = delete
            ev.xclient.l[1] = 0  # CurrentTime
            x11.XSendEvent(d, w, 0, 0, ctypes.byref(ev))
            print("WM_DELETE_WINDOW to", hex(w), name.value.decode(errors="replace"))
            sent += 1
    x11.XFlush(d)
    sys.exit(0 if sent else "no window matched")
elif mode == "noise":
    # noise DISPLAY W H PERIOD COUNT: random pixels (incompressible updates)
    w, h, period, count = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    gc = x11.XCreateGC(d, root, 0, None)
    vis = x11.XDefaultVisual(d, 0)
    for _ in range(count):
        buf = ctypes.create_string_buffer(os.urandom(w * h * 4), w * h * 4)
        img = x11.XCreateImage(d, vis, 24, 2, 0, buf, w, h, 32, 0)  # ZPixmap
        x11.XPutImage(d, root, gc, img, 0, 0, 0, 0, w, h)
        x11.XFlush(d)
        time.sleep(period)
EOF

wait_port() { # port
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $1)).close()" 2>/dev/null && return
        sleep 0.1
    done
    echo "nothing listens on $1" >&2
    exit 1
}

start_xvnc() { # extra args...
    lab_bg Xvnc :71 -geometry 320x240 -depth 24 -rfbport $port -interface 127.0.0.1 \
        -desktop tether-lab "$@" >"$work/xvnc.log" 2>&1
    xvnc=$!
    wait_port $port
}

start_xvfb() { # display [geometry]
    lab_bg Xvfb ":$1" -screen 0 "${2:-640x480x24}" -nolisten tcp >"$work/xvfb$1.log" 2>&1
    for _ in $(seq 50); do xdpyinfo -display ":$1" >/dev/null 2>&1 && return; sleep 0.1; done
    echo "Xvfb :$1 did not start" >&2
    exit 1
}

start_viewer() { # display target [args...]; sets $viewer
    local disp=$1 target=$2
    shift 2
    lab_bg env DISPLAY=":$disp" xtigervncviewer "$@" "$target" >>"$work/viewer$disp.log" 2>&1
    viewer=$!
}

# The screen changes every second (background colour), so the server has
# small updates to send.
start_ticker() { # display
    lab_bg bash -c "while :; do xsetroot -display :$1 -solid \"#\$(printf %06x \$((RANDOM * 512 + RANDOM % 512)))\"; sleep 1; done"
    ticker=$!
}

user_close() { # display
    python3 "$work/x.py" close ":$1" TigerVNC >&2
}

wait_gone() { # pid timeout
    local i
    for i in $(seq $(($2 * 10))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    return 1
}

# tshark one-liners for the checks
segs() { tshark -r "$cap" -T fields -e frame.time_relative -e tcp.srcport -e tcp.dstport -e tcp.flags.str -e tcp.len "$@" 2>/dev/null; }
client_ports() { # server port: client ports of SYNs to it, in order
    tshark -r "$cap" -Y "tcp.flags.syn==1 && tcp.flags.ack==0 && tcp.dstport==$1" -T fields -e tcp.srcport 2>/dev/null
}
window() { # epoch [before] [after]: a truth window around an action
    awk -v t="$(lab_t "$1")" -v b="${2:-0.1}" -v a="${3:-1.5}" 'BEGIN { printf "[%.1f, %.1f]", t - b, t + a }'
}

case $case_name in
xvnc-user-close)
    start_xvnc -SecurityTypes None
    start_xvfb 72
    start_ticker 71
    lab_capture "tcp port $port"
    lab_action "xtigervncviewer connects to Xvnc (SecurityTypes None)"
    start_viewer 72 127.0.0.1::$port
    sleep 15
    t_close=$(lab_now)
    lab_action "the user closes the viewer window (WM_DELETE_WINDOW sent to xtigervncviewer pid $viewer)"
    user_close 72
    wait_gone "$viewer" 5 || echo "viewer still running" >&2
    sleep 1
    lab_stop_capture
    sessions="[[sessions]]
client = \"127.0.0.1\"
outcome = \"disconnected\"
cause = \"client.closed\"
at = $(window "$t_close")
closed_by = \"client\"
attempts = []
note = \"the user closed the TigerVNC viewer window (WM_DELETE_WINDOW); the viewer closed the socket\""
    lab_truth "$case_name" "$peer_xvnc" "$peer_viewer"
    ;;

xvnc-server-killed)
    start_xvnc -SecurityTypes None
    start_xvfb 72
    start_ticker 71
    lab_capture "tcp port $port"
    lab_action "xtigervncviewer connects to Xvnc (SecurityTypes None)"
    start_viewer 72 127.0.0.1::$port
    sleep 12
    t_kill=$(lab_now)
    lab_action "Xvnc (pid $xvnc) sent SIGKILL"
    kill -9 "$xvnc"
    sleep 5
    lab_stop_capture
    sessions="[[sessions]]
client = \"127.0.0.1\"
outcome = \"disconnected\"
cause = \"server.killed\"
at = $(window "$t_kill")
closed_by = \"server\"
attempts = []
note = \"Xvnc SIGKILLed; its kernel closed the socket. The viewer stays up showing an error dialog and does not reconnect\""
    lab_truth "$case_name" "$peer_xvnc" "$peer_viewer"
    ;;

xvnc-server-frozen)
    start_xvnc -SecurityTypes None
    start_xvfb 72
    start_ticker 71
    lab_capture "tcp port $port"
    lab_action "xtigervncviewer connects to Xvnc (SecurityTypes None)"
    start_viewer 72 127.0.0.1::$port
    sleep 10
    lab_action "Xvnc (pid $xvnc) sent SIGSTOP"
    kill -STOP "$xvnc"
    sleep 20
    lab_action "Xvnc (pid $xvnc) sent SIGCONT"
    kill -CONT "$xvnc"
    sleep 10
    t_close=$(lab_now)
    lab_action "the user closes the viewer window (WM_DELETE_WINDOW sent to xtigervncviewer pid $viewer)"
    user_close 72
    wait_gone "$viewer" 5 || echo "viewer still running" >&2
    sleep 1
    lab_stop_capture
    sessions="[[sessions]]
client = \"127.0.0.1\"
outcome = \"disconnected\"
cause = \"client.closed\"
at = $(window "$t_close")
closed_by = \"client\"
attempts = []
note = \"Xvnc was frozen 20 s; the viewer has no liveness timer and the session carried on after SIGCONT until the user closed the window\""
    lab_truth "$case_name" "$peer_xvnc" "$peer_viewer"
    ;;

xvnc-client-frozen)
    start_xvnc -SecurityTypes None
    start_xvfb 72
    start_ticker 71
    lab_capture "tcp port $port"
    lab_action "xtigervncviewer connects to Xvnc (SecurityTypes None)"
    start_viewer 72 127.0.0.1::$port
    sleep 8
    lab_action "the background ticker stops; random noise (160x120) painted on the Xvnc screen every second from now until SIGCONT"
    kill "$ticker"
    lab_bg python3 "$work/x.py" noise :71 160 120 1 44
    noise=$!
    sleep 2
    lab_action "xtigervncviewer (pid $viewer) sent SIGSTOP"
    kill -STOP "$viewer"
    sleep 40
    lab_action "xtigervncviewer (pid $viewer) sent SIGCONT"
    kill -CONT "$viewer"
    kill "$noise" 2>/dev/null || true
    start_ticker 71
    sleep 10
    t_close=$(lab_now)
    lab_action "the user closes the viewer window (WM_DELETE_WINDOW sent to xtigervncviewer pid $viewer)"
    user_close 72
    wait_gone "$viewer" 5 || echo "viewer still running" >&2
    sleep 1
    lab_stop_capture
    sessions="[[sessions]]
client = \"127.0.0.1\"
outcome = \"disconnected\"
cause = \"client.closed\"
at = $(window "$t_close")
closed_by = \"client\"
attempts = []
note = \"the viewer was SIGSTOPped 40 s while noise changed the screen every second: Xvnc sent the one update the viewer had already asked for (its kernel acked it, window not zero), then nothing for 40 s: TigerVNC only sends on request/fence reply, so no zero window; after SIGCONT the session carried on until the user closed the window\""
    lab_truth "$case_name" "$peer_xvnc" "$peer_viewer"
    ;;

xvnc-wrong-password-retry)
    printf 'tether-lab\n' | vncpasswd -f >"$work/passwd"
    printf 'wrong-pw\n' | vncpasswd -f >"$work/wrong"
    start_xvnc -SecurityTypes VncAuth -PasswordFile "$work/passwd"
    start_xvfb 72
    start_ticker 71
    lab_capture "tcp port $port"
    lab_action "xtigervncviewer connects with a wrong password (-passwd file)"
    start_viewer 72 127.0.0.1::$port -passwd "$work/wrong"
    sleep 4
    lab_action "the user dismisses the failed viewer (pid $viewer, SIGTERM)"
    kill "$viewer"
    wait_gone "$viewer" 5 || kill -9 "$viewer"
    sleep 1
    lab_action "xtigervncviewer connects with the right password"
    start_viewer 72 127.0.0.1::$port -passwd "$work/passwd"
    sleep 10
    t_close=$(lab_now)
    lab_action "the user closes the viewer window (WM_DELETE_WINDOW sent to xtigervncviewer pid $viewer)"
    user_close 72
    wait_gone "$viewer" 5 || echo "viewer still running" >&2
    sleep 1
    lab_stop_capture
    sessions="[[sessions]]
client = \"127.0.0.1\"
outcome = \"disconnected\"
cause = \"client.closed\"
at = $(window "$t_close")
closed_by = \"client\"
attempts = [\"auth.refused\"]
note = \"first connection: VncAuth SecurityResult failed, reason 'Authentication failure', then Xvnc closed (FIN); the second, with the right password, ran until the user closed the window\""
    lab_truth "$case_name" "$peer_xvnc" "$peer_viewer"
    ;;

xvnc-blackhole)
    start_xvnc -SecurityTypes None
    start_xvfb 72
    start_ticker 71
    lab_capture "tcp port $port"
    lab_action "xtigervncviewer connects to Xvnc (SecurityTypes None)"
    start_viewer 72 127.0.0.1::$port
    sleep 15
    t_drop=$(lab_now)
    lab_action "iptables DROP (INPUT) of tcp port $port both ways: blackhole"
    iptables -A INPUT -p tcp --dport $port -j DROP
    iptables -A INPUT -p tcp --sport $port -j DROP
    for _ in $(seq 120); do
        kill -0 "$viewer" 2>/dev/null || break
        sleep 1
    done
    t_undrop=$(lab_now)
    lab_action "iptables DROP rules removed"
    iptables -D INPUT -p tcp --dport $port -j DROP
    iptables -D INPUT -p tcp --sport $port -j DROP
    # Wait for the next retransmission to get through (RTO backoff).
    sleep ${BLACKHOLE_AFTER:-110}
    t_close=$(lab_now)
    if kill -0 "$viewer" 2>/dev/null; then
        lab_action "the user closes the viewer window (WM_DELETE_WINDOW sent to xtigervncviewer pid $viewer)"
        user_close 72 || true
        wait_gone "$viewer" 5 || echo "viewer still running" >&2
    fi
    sleep 1
    lab_stop_capture
    echo "drop at $(lab_t "$t_drop") undrop at $(lab_t "$t_undrop") close at $(lab_t "$t_close")" >&2
    # When the path came back for the session: the first segment the viewer
    # sent after the rules went (it answers the server's retransmission).
    t_rec=$(segs -Y "tcp.srcport!=$port && frame.time_relative > $(lab_t "$t_undrop")" | head -1 | cut -f1)
    echo "recovered at $t_rec" >&2
    sessions="[[sessions]]
client = \"127.0.0.1\"
outcome = \"disconnected\"
cause = \"client.closed\"
at = $(window "$t_close")
closed_by = \"client\"
outage = [$(awk -v a="$(lab_t "$t_drop")" -v b="$(lab_t "$t_undrop")" -v r="$t_rec" 'BEGIN { printf "%.1f, %.1f", b - a - 0.5, r - a + 0.5 }')]
attempts = []
note = \"blackhole $(lab_t "$t_drop")-$(lab_t "$t_undrop") s: Xvnc retransmitted its pending update with exponential backoff (the viewer had nothing to send), nobody gave up; the retransmission at $(printf %.1f "$t_rec") s got through and the same TCP session carried on until the user closed the window. Stall seen in the capture: from the first unacked segment to $(printf %.1f "$t_rec") s\""
    lab_truth "$case_name" "$peer_xvnc" "$peer_viewer"
    ;;

x11vnc-user-close | x11vnc-wrong-password-retry | x11vnc-server-killed)
    geometry=320x240x24
    [ "$case_name" = x11vnc-server-killed ] && geometry=160x120x24
    start_xvfb 71 $geometry
    start_ticker 71
    pwargs=(-nopw)
    [ "$case_name" = x11vnc-wrong-password-retry ] && pwargs=(-passwd tether-lab)
    lab_bg x11vnc -display :71 -rfbport $port -listen 127.0.0.1 -forever -shared "${pwargs[@]}" \
        -o "$work/x11vnc.log" >/dev/null
    x11vnc=$!
    wait_port $port
    sleep 1
    lab_capture "tcp port $port"
    vncdo=(vncdo -s 127.0.0.1::$port)
    case $case_name in
    x11vnc-user-close)
        lab_action "vncdotool connects: moves, clicks and captures for ~10 s, then exits"
        "${vncdo[@]}" move 10 10 capture "$work/a.png" pause 2 move 100 80 click 1 pause 2 \
            move 200 150 pause 2 key a pause 2 capture "$work/c.png" pause 2
        t_close=$(lab_now)
        lab_action "vncdotool exited (its close)"
        sleep 2
        lab_stop_capture
        sessions="[[sessions]]
client = \"127.0.0.1\"
outcome = \"disconnected\"
cause = \"client.closed\"
at = $(window "$t_close" 1.0 1.0)
closed_by = \"client\"
attempts = []
note = \"vncdotool finished its commands and exited\""
        ;;
    x11vnc-wrong-password-retry)
        lab_action "vncdotool connects with a wrong password"
        "${vncdo[@]}" -p wrong-pw capture "$work/a.png" >"$work/vncdo1.log" 2>&1 && echo "wrong password accepted?" >&2
        cat "$work/vncdo1.log" >&2
        lab_action "vncdotool gave up (exit); the user retries with the right password"
        sleep 2
        lab_action "vncdotool connects with the right password: moves and captures ~10 s, then exits"
        "${vncdo[@]}" -p tether-lab move 10 10 capture "$work/a.png" pause 3 move 100 80 pause 3 \
            capture "$work/b.png" pause 3
        t_close=$(lab_now)
        lab_action "vncdotool exited (its close)"
        sleep 2
        lab_stop_capture
        sessions="[[sessions]]
client = \"127.0.0.1\"
outcome = \"disconnected\"
cause = \"client.closed\"
at = $(window "$t_close" 1.0 1.0)
closed_by = \"client\"
attempts = [\"auth.refused\"]
note = \"first connection: VncAuth SecurityResult failed (U32 1 in one segment, reason 'password check failed!' in the next), x11vnc closed (FIN); vncdotool exited; the second, with the right password, ran until vncdotool exited\""
        ;;
    x11vnc-server-killed)
        lab_action "vncdotool connects: a loop of mouse moves and captures"
        cmds=()
        # (vncdotool's captures fetch the whole screen, raw: one every 2 s)
        for i in $(seq 60); do
            cmds+=(move $((i * 2)) $((i * 1)) pause 0.5)
            [ $((i % 4)) = 0 ] && cmds+=(capture "$work/c.png")
        done
        lab_bg "${vncdo[@]}" "${cmds[@]}"
        vd=$!
        sleep 10
        t_kill=$(lab_now)
        lab_action "x11vnc (pid $x11vnc) sent SIGKILL"
        kill -9 "$x11vnc"
        wait_gone "$vd" 5 && lab_action "vncdotool exited" || true
        sleep 2
        lab_stop_capture
        sessions="[[sessions]]
client = \"127.0.0.1\"
outcome = \"disconnected\"
cause = \"server.killed\"
at = $(window "$t_kill")
closed_by = \"server\"
attempts = []
note = \"x11vnc SIGKILLed while vncdotool was busy\""
        ;;
    esac
    lab_truth "$case_name" "$peer_x11vnc" "$peer_vncdo"
    ;;

xvnc-two-clients-one-dies)
    start_xvnc -SecurityTypes None -AlwaysShared
    start_xvfb 72
    start_xvfb 73
    start_ticker 71
    lab_capture "tcp port $port"
    lab_action "xtigervncviewer A connects (shared)"
    start_viewer 72 127.0.0.1::$port -Shared
    va=$viewer
    sleep 1
    lab_action "xtigervncviewer B connects (shared)"
    start_viewer 73 127.0.0.1::$port -Shared
    vb=$viewer
    sleep 10
    t_kill=$(lab_now)
    lab_action "xtigervncviewer A (pid $va) sent SIGKILL"
    kill -9 "$va"
    sleep 10
    t_close=$(lab_now)
    lab_action "the user closes viewer B's window (WM_DELETE_WINDOW sent to xtigervncviewer pid $vb)"
    user_close 73
    wait_gone "$vb" 5 || echo "viewer B still running" >&2
    sleep 1
    lab_stop_capture
    mapfile -t ports < <(client_ports $port)
    echo "client ports: ${ports[*]}" >&2
    # How A's kernel closed: FIN, or RST when unread bytes were pending.
    a_close=$(segs -Y "tcp.srcport==${ports[0]} && (tcp.flags.fin==1 || tcp.flags.reset==1)" | head -1 | cut -f4 | tr -dc 'FR')
    [ "$a_close" = R ] && a_close=RST || a_close=FIN
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = ${ports[0]}
outcome = \"disconnected\"
cause = \"client.closed\"
at = $(window "$t_kill")
closed_by = \"client\"
attempts = []
note = \"viewer A's process was SIGKILLed; its kernel closed the socket ($a_close first)\"

[[sessions]]
client = \"127.0.0.1\"
port = ${ports[1]}
outcome = \"disconnected\"
cause = \"client.closed\"
at = $(window "$t_close")
closed_by = \"client\"
attempts = []
note = \"viewer B carried on after A died, until the user closed its window\""
    lab_truth "$case_name" "$peer_xvnc" "$peer_viewer"
    ;;

xvnc-haproxy-idle)
    start_xvnc -SecurityTypes None
    start_xvfb 72
    cat >"$work/haproxy.cfg" <<EOF
global
    log stdout format raw local0
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend vnc
    bind 127.0.0.1:5902
    default_backend xvnc
backend xvnc
    server x 127.0.0.1:$port
EOF
    lab_bg haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1
    wait_port 5902
    sleep 0.5
    lab_capture "tcp port $port or tcp port 5902"
    lab_action "xtigervncviewer connects to haproxy (timeout client/server 10 s) in front of Xvnc; static screen"
    t_conn=$(lab_now)
    start_viewer 72 127.0.0.1::5902
    sleep 20
    t_end=$(lab_now)
    sleep 1
    lab_stop_capture
    cat "$work/haproxy.log" >&2
    front=$(client_ports 5902 | head -1)
    back=$(client_ports $port | head -1)
    echo "front $front back $back" >&2
    # haproxy's timeout client/server 10 s runs from the last byte, which
    # came within a fraction of a second of the connect (static screen).
    t_cut=$(awk -v a="$t_conn" 'BEGIN { printf "%.6f", a + 10 }')
    sessions="[[sessions]]
client = \"127.0.0.1\"
port = $front
outcome = \"disconnected\"
cause = \"lb.idle_timeout\"
at = $(window "$t_cut" 0.2 1.5)
closed_by = \"both\"
attempts = []
note = \"viewer leg (viewer -> haproxy :5902): nothing flowed after the handshake; haproxy's 10 s timeout (log termination state cD) closed this leg with FIN and the viewer answered FIN\"

[[sessions]]
client = \"127.0.0.1\"
port = $back
outcome = \"disconnected\"
cause = \"lb.idle_timeout\"
at = $(window "$t_cut" 0.2 1.5)
closed_by = \"both\"
attempts = []
note = \"server leg (haproxy -> Xvnc :5901), the same session: haproxy closed it at the same moment (FIN then RST to Xvnc)\""
    lab_truth "$case_name" "$peer_xvnc" "$peer_viewer" "haproxy 2.6.12"
    ;;
*)
    echo "unknown case $case_name" >&2
    exit 2
    ;;
esac
rm -rf "$work"
