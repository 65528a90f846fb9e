#!/usr/bin/env bash
# Records small plain-TCP RFB sessions between real peers, for the RFB
# decoder tests (harness/tests/rfb_recorded.rs):
#
#   rfb-xvnc-viewer-vncauth.pcap  TigerVNC's Xvnc with VNC password auth and
#                                 a real viewer (remote-viewer, gtk-vnc) on
#                                 Xvfb; the script draws on the VNC desktop
#                                 and types/moves the pointer in the viewer
#                                 through XTEST, so both directions carry
#                                 traffic.
#   rfb-xvnc-viewer-vencrypt-tls.pcap  Xvnc with VeNCrypt TLSVnc and the same
#                                 viewer: the handshake up to the TLS start
#                                 is readable, the rest only has timing.
#   rfb-xvnc-scripted-<enc>.pcap  the same server with SecurityTypes None and
#                                 a small scripted client that asks for one
#                                 encoding only (Raw, Hextile, RRE, ZRLE,
#                                 Tight), to get each framing on the wire.
#
# Next to each capture it writes <capture>.tshark.txt: the tshark VNC field
# dump and packet list the tests compare against, so tests never need tshark.
#
# Only 127.0.0.1, ports 26001-26009 and X displays :61-:65 are used. Every
# process started here is ended by its PID. SECTIONS (default
# "vncauth scripted vencrypt") picks which captures to (re)record.
set -euo pipefail

OUT=$(cd "$(dirname "$0")/../recorded" && pwd)
[ "${1:-}" != --tshark-only ] && [ -n "${1:-}" ] && OUT=$1
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

SERVER_DISPLAY=61
VIEWER_DISPLAY=63
AUTH_PORT=26001
NONE_PORT=26002
PASSWORD=tether-rfb

# X helper: draw rectangles on a display, or move/type in it, through Xlib
# and XTEST via ctypes (no extra Python modules needed).
cat >"$WORK/xact.py" <<'EOF'
import ctypes, sys, time
x11 = ctypes.CDLL("libX11.so.6")
xtst = ctypes.CDLL("libXtst.so.6")
x11.XOpenDisplay.restype = ctypes.c_void_p
x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
x11.XDefaultRootWindow.restype = ctypes.c_ulong
x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
x11.XCreateGC.restype = ctypes.c_void_p
x11.XCreateGC.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_void_p]
x11.XSetForeground.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulong]
x11.XFillRectangle.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
x11.XFlush.argtypes = [ctypes.c_void_p]
x11.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
x11.XKeysymToKeycode.restype = ctypes.c_ubyte
xtst.XTestFakeMotionEvent.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_ulong]
xtst.XTestFakeKeyEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong]
xtst.XTestFakeButtonEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong]
mode, display = sys.argv[1], sys.argv[2].encode()
d = x11.XOpenDisplay(display)
if not d:
    sys.exit("cannot open display")
if mode == "draw":
    root = x11.XDefaultRootWindow(d)
    gc = x11.XCreateGC(d, root, 0, None)
    # A fixed sequence: deterministic content, a few updates of varied size.
    for i in range(int(sys.argv[3])):
        x11.XSetForeground(d, gc, (i * 0x3F1F0F) & 0xFFFFFF)
        x11.XFillRectangle(d, root, gc, (i * 37) % 300, (i * 23) % 200, 40 + i % 50, 30 + i % 40)
        if i % 7 == 0:
            # Stripes give Hextile/ZRLE/Tight something other than solid tiles.
            for s in range(0, 64, 4):
                x11.XSetForeground(d, gc, (s * 0x040404) ^ (i * 0x102030) & 0xFFFFFF)
                x11.XFillRectangle(d, root, gc, 100 + s, 100, 2, 64)
        x11.XFlush(d)
        time.sleep(float(sys.argv[4]) if len(sys.argv) > 4 else 0.05)
elif mode == "input":
    for i in range(20):
        xtst.XTestFakeMotionEvent(d, -1, 50 + i * 7, 60 + i * 5, 0)
        x11.XFlush(d)
        time.sleep(0.03)
    xtst.XTestFakeButtonEvent(d, 1, 1, 0); xtst.XTestFakeButtonEvent(d, 1, 0, 0)
    for ch in "tether":
        kc = x11.XKeysymToKeycode(d, ord(ch))
        xtst.XTestFakeKeyEvent(d, kc, 1, 0); x11.XFlush(d); time.sleep(0.03)
        xtst.XTestFakeKeyEvent(d, kc, 0, 0); x11.XFlush(d); time.sleep(0.03)
    x11.XFlush(d)
EOF

# Scripted client: RFB 3.8, security None, one encoding (plus Cursor and
# DesktopSize pseudo-encodings), a few full and incremental update requests
# and some pointer/key input, then a clean close.
cat >"$WORK/client.py" <<'EOF'
import socket, struct, sys, time
port, encoding = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
# One message per segment, so tshark (which dissects one RFB message per
# TCP segment) sees every message too.
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def send(b):
    s.sendall(b)
    time.sleep(0.02)
def recv_exact(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise SystemExit("server closed")
        b += c
    return b
assert recv_exact(12).startswith(b"RFB ")
s.sendall(b"RFB 003.008\n")
n = recv_exact(1)[0]
types = recv_exact(n)
assert 1 in types, types
s.sendall(b"\x01")
assert struct.unpack(">I", recv_exact(4))[0] == 0
s.sendall(b"\x01")  # shared
w, h = struct.unpack(">HH", recv_exact(4))
recv_exact(16)
name_len = struct.unpack(">I", recv_exact(4))[0]
recv_exact(name_len)
# 32 bpp, depth 24, little endian, true colour, shifts 16/8/0 (as noVNC).
send(struct.pack(">BxxxBBBBHHHBBBxxx", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
encs = [encoding, -239, -223]
send(struct.pack(">BxH", 2, len(encs)) + b"".join(struct.pack(">i", e) for e in encs))
send(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
s.settimeout(0.3)
def drain(t):
    end = time.time() + t
    while time.time() < end:
        try:
            if not s.recv(65536):
                return
        except socket.timeout:
            pass
drain(0.6)
for i in range(12):
    send(struct.pack(">BBHH", 5, 0, 10 + i * 9, 20 + i * 4))
    if i % 4 == 0:
        send(struct.pack(">BBxxI", 4, 1, 0x61 + i))
        send(struct.pack(">BBxxI", 4, 0, 0x61 + i))
    send(struct.pack(">BBHHHH", 3, 1, 0, 0, w, h))
    drain(0.25)
send(struct.pack(">BxxxI", 6, 5) + b"hello")
drain(0.5)
s.close()
EOF

start_xvnc() { # display port geometry security-args...
    local disp=$1 port=$2 geometry=$3
    shift 3
    Xvnc ":$disp" -geometry "$geometry" -depth 24 -rfbport "$port" -interface 127.0.0.1 \
        -AlwaysShared -desktop "tether-rfb" "$@" >"$WORK/xvnc-$disp.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 50); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null && return
        sleep 0.1
    done
    echo "Xvnc :$disp did not start" >&2
    cat "$WORK/xvnc-$disp.log" >&2
    exit 1
}

capture_start() { # port file
    tcpdump -i lo -U -s 0 -w "$2" "tcp port $1" >"$WORK/tcpdump.log" 2>&1 &
    TCPDUMP=$!
    PIDS+=($TCPDUMP)
    sleep 1
}
capture_stop() {
    sleep 0.5
    kill -INT "$TCPDUMP"
    wait "$TCPDUMP" 2>/dev/null || true
}

tshark_dump() { # capture port
    local cap=$1 port=$2
    {
        echo "# Oracle decode of $(basename "$cap") by a peer decoder"
        echo "# tool: $(tshark --version | head -1)"
        echo "# extra tshark args: -d tcp.port==$port,vnc"
        echo "# sha256: $(sha256sum "$cap" | cut -d' ' -f1)"
        echo
        echo "## VNC/RFB messages: tshark -Y vnc -T fields (occurrence=a, aggregator=,)"
        echo "# columns: frame trel src sport dst dport server_proto_ver client_proto_ver num_security_types security_type(s offered) client_security_type auth_result share_flag width height desktop_name client_msg_type server_msg_type fb_rects fb_encodings set_encodings client_cut_len server_cut_len key_down key pointer_x pointer_y"
        tshark -r "$cap" -d "tcp.port==$port,vnc" -Y vnc -T fields -E occurrence=a -E aggregator=, \
            -e frame.number -e frame.time_relative -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport \
            -e vnc.server_proto_ver -e vnc.client_proto_ver -e vnc.num_security_types \
            -e vnc.security_type -e vnc.client_security_type -e vnc.auth_result \
            -e vnc.share_desktop_flag -e vnc.width -e vnc.height -e vnc.desktop_name \
            -e vnc.client_message_type -e vnc.server_message_type -e vnc.fb_update_num_rects \
            -e vnc.fb_update_encoding_type -e vnc.client_set_encodings_encoding_type \
            -e vnc.client_cut_text_len -e vnc.server_cut_text_len -e vnc.key_down -e vnc.key \
            -e vnc.pointer_x_pos -e vnc.pointer_y_pos
        echo
        echo "## VNC/RFB packet list (-Y vnc, default columns)"
        tshark -r "$cap" -d "tcp.port==$port,vnc" -Y vnc
        echo
        echo "## tshark -q -z expert,warn"
        tshark -r "$cap" -d "tcp.port==$port,vnc" -q -z expert,warn
    } >"$cap.tshark.txt" 2>/dev/null
}

# `rfb-xvnc.sh --dump CAPTURE PORT` writes the dump of one capture (other
# recipes use it, so all RFB dumps have one format).
if [ "${1:-}" = --dump ]; then
    tshark_dump "$2" "$3"
    exit 0
fi

# `rfb-xvnc.sh --tshark-only [dir]` rewrites the dumps of existing captures.
if [ "${1:-}" = --tshark-only ]; then
    OUT=${2:-$(cd "$(dirname "$0")/../recorded" && pwd)}
    tshark_dump "$OUT/rfb-xvnc-viewer-vncauth.pcap" $AUTH_PORT
    for name in raw hextile rre zrle tight; do
        tshark_dump "$OUT/rfb-xvnc-scripted-$name.pcap" $NONE_PORT
    done
    tshark_dump "$OUT/rfb-xvnc-viewer-vencrypt-tls.pcap" 26003
    exit 0
fi

SECTIONS=${SECTIONS:-vncauth scripted vencrypt}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
printf '%s\n' "$PASSWORD" | vncpasswd -f >"$WORK/passwd"

# 1. Xvnc with VNC auth + remote-viewer.
if want vncauth; then
start_xvnc $SERVER_DISPLAY $AUTH_PORT 480x300 -SecurityTypes VncAuth -PasswordFile "$WORK/passwd"
Xvfb ":$VIEWER_DISPLAY" -screen 0 800x600x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
PIDS+=($!)
sleep 1
cat >"$WORK/session.vv" <<EOF
[virt-viewer]
type=vnc
host=127.0.0.1
port=$AUTH_PORT
password=$PASSWORD
EOF
CAP="$OUT/rfb-xvnc-viewer-vncauth.pcap"
capture_start $AUTH_PORT "$CAP"
DISPLAY=":$VIEWER_DISPLAY" remote-viewer "$WORK/session.vv" >"$WORK/viewer.log" 2>&1 &
VIEWER=$!
PIDS+=($VIEWER)
sleep 3
python3 "$WORK/xact.py" draw ":$SERVER_DISPLAY" 20
python3 "$WORK/xact.py" input ":$VIEWER_DISPLAY"
python3 "$WORK/xact.py" draw ":$SERVER_DISPLAY" 10
sleep 1
kill "$VIEWER"
wait "$VIEWER" 2>/dev/null || true
capture_stop
tshark_dump "$CAP" $AUTH_PORT
fi

# 2. Xvnc with no auth + scripted client, one encoding per capture.
if want scripted; then
# Small desktop: a full Raw update of 320x200x4 is 250 KiB.
start_xvnc 62 $NONE_PORT 320x200 -SecurityTypes None
for pair in raw:0 hextile:5 rre:2 zrle:16 tight:7; do
    name=${pair%%:*}
    code=${pair##*:}
    CAP="$OUT/rfb-xvnc-scripted-$name.pcap"
    capture_start $NONE_PORT "$CAP"
    # Drawing goes on while the client asks for incremental updates.
    python3 "$WORK/xact.py" draw :62 16 0.2 &
    DRAW=$!
    python3 "$WORK/client.py" $NONE_PORT "$code"
    wait $DRAW || true
    capture_stop
    tshark_dump "$CAP" $NONE_PORT
done
fi

# 3. Xvnc with VeNCrypt TLSVnc (anonymous TLS, then VNC auth inside) and
# remote-viewer.
if want vencrypt; then
    TLS_PORT=26003
    start_xvnc 64 $TLS_PORT 320x200 -SecurityTypes TLSVnc -PasswordFile "$WORK/passwd"
    Xvfb :65 -screen 0 640x480x24 -nolisten tcp >"$WORK/xvfb65.log" 2>&1 &
    PIDS+=($!)
    sleep 1
    printf '[virt-viewer]\ntype=vnc\nhost=127.0.0.1\nport=%s\npassword=%s\n' \
        "$TLS_PORT" "$PASSWORD" >"$WORK/tls.vv"
    CAP="$OUT/rfb-xvnc-viewer-vencrypt-tls.pcap"
    capture_start $TLS_PORT "$CAP"
    DISPLAY=:65 remote-viewer "$WORK/tls.vv" >"$WORK/viewer-tls.log" 2>&1 &
    VIEWER=$!
    PIDS+=($VIEWER)
    sleep 2
    python3 "$WORK/xact.py" draw :64 10 0.1
    sleep 1
    kill "$VIEWER"
    wait "$VIEWER" 2>/dev/null || true
    capture_stop
    tshark_dump "$CAP" $TLS_PORT
fi
ls -la "$OUT"/rfb-*
