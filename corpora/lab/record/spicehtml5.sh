#!/usr/bin/env bash
# spice-html5 (Debian's package, spice_auto.html) in headless Chromium,
# through websockify, to QEMU's SPICE server, on 127.0.0.1 in a private
# network namespace; both legs in the capture:
#   browser <-> websockify   WebSocket carrying SPICE   (port 5959)
#   websockify <-> QEMU      plain SPICE                (port 5930)
# The page itself is served apart (python3 -m http.server, port 5980), and
# the DevTools socket (9222) is outside the capture filter.
#
#   user-close     the session runs ~15 s, then the tab navigates away
#                  (about:blank, through DevTools): the user leaves the page
#   server-killed  SIGKILL QEMU at ~T+15
#   relay-killed   SIGKILL websockify and its per-connection children at ~T+15
#   relay-frozen   SIGSTOP websockify and its children at ~T+15 until the
#                  server drops the client (both kernels keep ACKing), then
#                  SIGCONT
#
# usage: record/spicehtml5.sh CASE   (root: unshare, tcpdump)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lab-lib.sh"
case=${1:?case}
lab_init "spicehtml5-$case" "$@"

spice=5930 ws=5959 http=5980 devtools=9222
origin=""
tmp=$(mktemp -d)
trap 'lab_cleanup; rm -rf "$tmp"' EXIT

# win EPOCH D1 D2: "[t+D1, t+D2]" in capture seconds.
win() {
    local t
    t=$(lab_t "$1")
    awk -v t="$t" -v a="$2" -v b="$3" 'BEGIN { printf "[%.2f, %.2f]", t + a, t + b }'
}

# QEMU as in corpora/record/spice-killed-reconnect.sh: no disk, TCG, the guest
# sits in SeaBIOS; sound card and a usbredir slot for a desktop channel set.
lab_bg qemu-system-x86_64 -machine accel=tcg -m 128 -nodefaults -vga qxl -display none \
    -audiodev spice,id=snd0 -device intel-hda -device hda-duplex,audiodev=snd0 \
    -device qemu-xhci -chardev spicevmc,name=usbredir,id=usbredir1 \
    -device usb-redir,chardev=usbredir1 \
    -spice "port=$spice,addr=127.0.0.1,disable-ticketing=on" >"$tmp/qemu.log" 2>&1
qemu=${lab_pids[-1]}
lab_bg python3 -m http.server "$http" --bind 127.0.0.1 --directory /usr/share/spice-html5 \
    >"$tmp/http.log" 2>&1
lab_bg websockify "127.0.0.1:$ws" "127.0.0.1:$spice" >"$tmp/websockify.log" 2>&1
wsfy=${lab_pids[-1]}
sleep 1.5
lab_capture "tcp port $ws or tcp port $spice"

t_open=$(lab_now)
lab_action "headless Chromium opens spice_auto.html (host 127.0.0.1, port $ws)"
lab_bg chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --remote-debugging-port=$devtools --user-data-dir="$tmp/chrome" --window-size=800,600 \
    "http://127.0.0.1:$http/spice_auto.html?host=127.0.0.1&port=$ws" >"$tmp/chrome.log" 2>&1
chrome=${lab_pids[-1]}
sleep 15

case $case in
user-close)
    t_act=$(lab_now)
    lab_action "the tab is closed (DevTools Target.closeTarget)"
    python3 "$here/cdp.py" "$devtools" close >&2
    lab_action "DevTools: Target.closeTarget returned"
    sleep 4
    cause=client.closed closed_by=client
    d1=0 d2=1
    note="the page unloads: Chromium closes each channel's WebSocket; websockify closes the matching QEMU legs"
    ;;
server-killed)
    t_act=$(lab_now)
    lab_action "SIGKILL qemu (pid $qemu)"
    kill -KILL "$qemu"
    sleep 5
    cause=server.killed closed_by=server
    d1=0 d2=0.5
    note="QEMU's kernel closes every channel's socket; websockify passes the close on to the browser; spice-html5 does not reconnect"
    ;;
relay-killed)
    children=$(pgrep -P "$wsfy" | tr '\n' ' ' || true)
    t_act=$(lab_now)
    lab_action "SIGKILL websockify (pid $wsfy) and its children ($children)"
    # shellcheck disable=SC2086
    kill -KILL "$wsfy" $children
    sleep 5
    cause=relay.killed closed_by=both
    d1=0 d2=0.5
    note="no WebSocket close frame: the relay's kernel closes both legs of every channel (FIN, or RST where unread bytes were pending)"
    ;;
relay-frozen)
    n0=$(ss -Htn state established "( sport = :$spice )" | wc -l)
    stopped=("$wsfy" $(pgrep -P "$wsfy" || true))
    lab_action "SIGSTOP websockify and its children (${stopped[*]}): its kernel still ACKs both legs, nothing is forwarded"
    kill -STOP "${stopped[@]}"
    t_drop=""
    for _ in $(seq 2000); do   # up to 200 s
        if [ "$(ss -Htn state established "( sport = :$spice )" | wc -l)" -lt "$n0" ]; then t_drop=$(lab_now); break; fi
        sleep 0.1
    done
    [ -n "$t_drop" ] && lab_action "the server closed its side of the channels"
    sleep 3
    t_act=$(lab_now)
    lab_action "SIGCONT websockify"
    kill -CONT "${stopped[@]}"
    sleep 5
    cause=server.connectivity_timeout closed_by=server origin=network.outage
    d1=-0.1 d2=1
    note="websockify frozen: the server's connectivity timer dropped the client behind it; the browser leg sees the close when websockify resumes"
    ;;
*)
    echo "unknown case $case" >&2
    exit 2
    ;;
esac
lab_action "end of run: Chromium (pid $chrome) sent SIGTERM"
kill "$chrome" 2>/dev/null || true
lab_stop_capture
echo "--- websockify log" >&2
tail -20 "$tmp/websockify.log" >&2 || true

at=$(win "$t_act" "$d1" "$d2")
[ -n "${t_drop:-}" ] && note+=" (the server dropped it at $(lab_t "$t_drop"))"
port1=$(tshark -r "$cap" -Y "tcp.flags.syn==1 && tcp.flags.ack==0 && tcp.dstport==$ws" \
    -T fields -e tcp.srcport 2>/dev/null | head -1)
sessions="[[sessions]]
client = \"127.0.0.1\"
port = $port1
outcome = \"disconnected\"
cause = \"$cause\"${origin:+
origin = \"$origin\"
channel = \"main\"}
closed_by = \"$closed_by\"
at = $at
attempts = []
note = \"$note\""
qv=$(qemu-system-x86_64 --version | head -1 | awk '{print $4}')
wv=$(dpkg-query -W -f='${Version}' websockify)
hv=$(dpkg-query -W -f='${Version}' spice-html5)
cv=$(chromium --version 2>/dev/null | awk '{print $2}')
lab_truth "$case" "qemu-system-x86_64 $qv" "websockify $wv" "spice-html5 $hv (Chromium $cv, headless)"
