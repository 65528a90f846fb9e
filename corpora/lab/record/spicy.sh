#!/usr/bin/env bash
# Holdout batch of SPICE lab recordings (see ../README.md, NOTES-spicy.md):
# QEMU's SPICE server (as in record/spice.sh: no disk, TCG, the guest sits in
# SeaBIOS on a QXL card) with `spicy`, spice-gtk's test client, instead of
# remote-viewer. All on 127.0.0.1 in a private network namespace (lab_init),
# Xvfb (640x480) in the same namespace. Timings differ from spice.sh.
#
#   user-close          ~25 s session, then the user closes spicy's window
#   server-killed       SIGKILL qemu at ~20 s; nobody retries
#   client-frozen-long  SIGSTOP spicy at ~25 s until the server's
#                       connectivity timer drops it, then SIGCONT
#   server-frozen       SIGSTOP qemu for 45 s at ~10 s, SIGCONT, the user
#                       closes 10 s later
#   blackhole-short     iptables DROP of the SPICE port both ways at ~20 s for
#                       12 s, removed; the user closes 15 s later
#   wrong-ticket-twice  two spicy runs with a wrong password (each refused,
#                       the user closes its password dialog), then one with
#                       the right password, closed 10 s later
#   haproxy-idle        spicy -> haproxy (mode tcp, timeout client/server 20s)
#                       -> qemu, idle until haproxy cuts; both legs captured
#   latency             spicy -> delay-relay.py (80 ms +- 60 ms per chunk) ->
#                       qemu, 20 s session, user closes; client leg captured
#
# "The user closes the window" is record/x-close.py: WM_DELETE_WINDOW to every
# top-level window of spicy's PID (spicy's delete handler disconnects the
# session and spicy quits when its last connection is gone).
#
# Output: corpora/lab/spicy-<case>.pcap and .truth.toml.
# Usage: corpora/lab/record/spicy.sh <case>     (root: netns, tcpdump)
set -euo pipefail
case_=${1:?usage: spicy.sh <case>}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lab-lib.sh
source "$here/lab-lib.sh"
lab_init "spicy-$case_" "$@"

port=5930     # qemu's SPICE port (private namespace)
front=5931    # haproxy / delay relay listening port
password=lab-right-ticket
peer_qemu="qemu-system-x86_64 $(qemu-system-x86_64 --version | head -1 | awk '{print $4}') (libspice-server $(dpkg-query -W -f='${Version}' libspice-server1 | cut -d- -f1))"
peer_spicy="spicy (spice-client-gtk $(dpkg-query -W -f='${Version}' spice-client-gtk | cut -d- -f1))"
peers=("$peer_qemu" "$peer_spicy")

tmp=$(mktemp -d /tmp/spicy-lab.XXXXXX)
export XDG_CONFIG_HOME=$tmp/config HOME=$tmp
mkdir -p "$XDG_CONFIG_HOME"
echo "logs in $tmp" >&2

lab_bg Xvfb -displayfd 3 -screen 0 640x480x24 -nolisten tcp 3>"$tmp/display" 2>"$tmp/xvfb.log"
for _ in $(seq 50); do [ -s "$tmp/display" ] && break; sleep 0.1; done
export DISPLAY=":$(head -1 "$tmp/display")"

qemu_extra=()
start_qemu() {   # extra -spice options in $1
    lab_bg qemu-system-x86_64 -machine accel=tcg -m 64 -nodefaults -vga qxl -display none \
        "${qemu_extra[@]}" -spice "port=$port,addr=127.0.0.1${1}" >"$tmp/qemu.log" 2>&1
    qemu=$!
    for _ in $(seq 50); do ss -Htln "( sport = :$port )" | grep -q . && break; sleep 0.1; done
}

sp_n=0
start_spicy() {  # port [password]
    sp_n=$((sp_n + 1))
    local pw=()
    [ -n "${2:-}" ] && pw=(-w "$2")
    lab_bg spicy -h 127.0.0.1 -p "$1" "${pw[@]}" >"$tmp/spicy$sp_n.log" 2>&1
    sp=$!
}

# The user closes spicy's windows (WM_DELETE_WINDOW); waits for it to exit.
user_close() {   # pid what
    local pid=$1 what=${2:-} wins
    if ! kill -0 "$pid" 2>/dev/null; then
        lab_action "spicy (pid $pid) had already exited by itself; nothing for the user to close"
        t_close=""
        return 0
    fi
    wins=$(/usr/bin/python3 "$here/x-close.py" "$pid" --list | tr '\n' ' ' || true)
    t_close=$(lab_now)
    lab_action "spicy (pid $pid) window closed by the user (WM_DELETE_WINDOW to ${wins:-no window}) $what"
    /usr/bin/python3 "$here/x-close.py" "$pid" >/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    lab_action "spicy (pid $pid) still running 5 s after the close"
}

n_server_est() { ss -Htn state established "( sport = :$1 )" | wc -l; }
n_client_live() { ss -Htn state established state close-wait "( dport = :$1 )" | wc -l; }
tt() { lab_t "$(awk -v a="$1" -v o="${2:-0}" -v s="$lab_start" 'BEGIN { t = a + o; if (t < s) t = s; printf "%.6f", t }')"; }
session() {
    sessions+=$'[[sessions]]\n'
    local kv
    for kv in "$@"; do sessions+="$kv"$'\n'; done
    sessions+=$'\n'
}
alive() { kill -0 "$1" 2>/dev/null && echo yes || echo no; }

spice_port=$port
filter="tcp port $port"
case $case_ in
latency) spice_port=$front; filter="tcp port $front" ;;
haproxy-idle) spice_port=$front; filter="tcp port $port or tcp port $front" ;;
esac

ticket=",disable-ticketing=on"
if [ "$case_" = wrong-ticket-twice ]; then
    qemu_extra=(-object "secret,id=spicepw,data=$password")
    ticket=",password-secret=spicepw"
fi

start_qemu "$ticket"
lab_capture "$filter"
target="127.0.0.1:$spice_port"

case $case_ in
user-close)
    lab_action "spicy connects to $target"
    start_spicy $spice_port
    sleep 25
    user_close "$sp" "(the user quits)"
    sleep 2
    lab_stop_capture
    session 'client = "127.0.0.1"' 'outcome = "disconnected"' 'cause = "client.closed"' \
        "at = [$(tt "$t_close" -0.2), $(tt "$t_close" 1)]" 'closed_by = "client"' 'attempts = []'
    ;;

server-killed)
    lab_action "spicy connects to $target"
    start_spicy $spice_port
    sleep 20
    t_kill=$(lab_now)
    lab_action "qemu (pid $qemu) sent SIGKILL; nobody retries"
    kill -KILL "$qemu"
    sleep 8
    lab_action "spicy (pid $sp) still running 8 s after the kill: $(alive "$sp")"
    lab_stop_capture
    session 'client = "127.0.0.1"' 'outcome = "disconnected"' 'cause = "server.killed"' \
        "at = [$(tt "$t_kill" -0.2), $(tt "$t_kill" 0.8)]" 'closed_by = "server"' 'attempts = []' \
        'note = "qemu SIGKILLed mid-session; no reconnect by the user"'
    ;;

client-frozen-long)
    lab_action "spicy connects to $target"
    start_spicy $spice_port
    sleep 25
    n0=$(n_server_est $port)
    t_stop=$(lab_now)
    lab_action "spicy (pid $sp) sent SIGSTOP (frozen until the server drops it; $n0 channels up)"
    kill -STOP "$sp"
    t_drop=""
    for _ in $(seq 1500); do   # up to 150 s
        if [ "$(n_server_est $port)" -lt "$n0" ]; then t_drop=$(lab_now); break; fi
        sleep 0.1
    done
    [ -n "$t_drop" ] && lab_action "the server closed its side ($(n_server_est $port) of $n0 channels left established)"
    sleep 3
    lab_action "spicy (pid $sp) sent SIGCONT"
    kill -CONT "$sp"
    sleep 4
    user_close "$sp" "(the user dismisses the disconnected client)"
    sleep 1
    lab_stop_capture
    [ -n "$t_drop" ] || { echo "the server never dropped the client" >&2; t_drop=$(lab_now); }
    session 'client = "127.0.0.1"' 'outcome = "disconnected"' 'cause = "server.connectivity_timeout"' \
        'origin = "client.frozen"' 'channel = "main"' \
        "at = [$(tt "$t_drop" -0.6), $(tt "$t_drop" 0.2)]" 'closed_by = "server"' 'attempts = []' \
        "note = \"spicy stopped at $(lab_t "$t_stop"); the main channel's connectivity timer dropped it, the server closed its channels\""
    ;;

server-frozen)
    lab_action "spicy connects to $target"
    start_spicy $spice_port
    sleep 10
    lab_action "qemu (pid $qemu) sent SIGSTOP (server frozen for 45 s)"
    kill -STOP "$qemu"
    sleep 45
    lab_action "qemu (pid $qemu) sent SIGCONT"
    kill -CONT "$qemu"
    sleep 10
    up=$(n_server_est $port)
    user_close "$sp" "(the user quits; $up server-side channels were up)"
    sleep 2
    lab_stop_capture
    session 'client = "127.0.0.1"' 'outcome = "disconnected"' 'cause = "client.closed"' \
        "at = [$(tt "${t_close:-$(lab_now)}" -0.2), $(tt "${t_close:-$(lab_now)}" 1)]" 'closed_by = "client"' 'attempts = []' \
        "note = \"qemu was stopped for 45 s; $up server-side channels were up 10 s after the thaw when the user closed spicy\""
    ;;

blackhole-short)
    lab_action "spicy connects to $target"
    start_spicy $spice_port
    sleep 20
    n0=$(n_server_est $port)
    t_drop=$(lab_now)
    lab_action "iptables DROP of every packet to and from port $port (INPUT chain: the capture still sees what each end sends)"
    iptables -I INPUT -p tcp --dport $port -j DROP
    iptables -I INPUT -p tcp --sport $port -j DROP
    sleep 12
    t_lift=$(lab_now)
    iptables -D INPUT -p tcp --dport $port -j DROP
    iptables -D INPUT -p tcp --sport $port -j DROP
    lab_action "iptables DROP removed ($(n_server_est $port) of $n0 server-side channels established, $(n_client_live $port) client sockets live)"
    sleep 15
    up=$(n_server_est $port)
    user_close "$sp" "(the user quits; $up server-side channels were up)"
    sleep 2
    lab_stop_capture
    echo "BLACKHOLE drop=$(lab_t "$t_drop") lift=$(lab_t "$t_lift") up_at_close=$up" >&2
    # Truth for this case is written after reading the capture (see below).
    bh_drop=$(lab_t "$t_drop") bh_lift=$(lab_t "$t_lift")
    ;;

wrong-ticket-twice)
    for i in 1 2; do
        lab_action "spicy run $i connects to $target with a wrong password"
        start_spicy $spice_port "wrong-$i"
        sleep 4
        user_close "$sp" "(the user gives up: closes the password dialog)"
        kill -0 "$sp" 2>/dev/null && { lab_action "spicy (pid $sp) still up: SIGTERM"; kill "$sp"; }
        sleep 2
    done
    lab_action "spicy run 3 connects to $target with the right password"
    start_spicy $spice_port "$password"
    sleep 10
    user_close "$sp" "(the user quits)"
    sleep 2
    lab_stop_capture
    session 'client = "127.0.0.1"' 'outcome = "disconnected"' 'cause = "client.closed"' \
        "at = [$(tt "$t_close" -0.2), $(tt "$t_close" 1)]" 'closed_by = "client"' \
        'attempts = ["auth.refused", "auth.refused"]' \
        'note = "two spicy runs with wrong passwords (link refused), then a third with the right one ran 10 s"'
    ;;

haproxy-idle)
    lab_haproxy_tcp "$front" "$port" 20s
    lab_action "spicy connects to $target (haproxy, mode tcp, timeout client/server 20s, to $port); nobody touches it"
    t_conn=$(lab_now)
    start_spicy $spice_port
    t_cut=""
    for _ in $(seq 900); do   # up to 90 s
        if grep -qE ' [cs]D' "$tmp/haproxy.log" 2>/dev/null; then t_cut=$(lab_now); break; fi
        sleep 0.1
    done
    [ -n "$t_cut" ] && lab_action "haproxy logged its first idle cut ($(n_client_live $front) client sockets live)"
    sleep 10
    user_close "$sp" "(the user closes spicy)"
    sleep 2
    lab_stop_capture
    cat "$tmp/haproxy.log" >&2
    # Truth for this case is written after reading the capture (see below).
    ;;

latency)
    lab_bg python3 "$here/delay-relay.py" $front $port 80 60 11
    for _ in $(seq 50); do ss -Htln "( sport = :$front )" | grep -q . && break; sleep 0.1; done
    lab_action "spicy connects to $target (delay-relay.py to $port: 80 ms +- 60 ms per chunk each way, seed 11)"
    start_spicy $spice_port
    sleep 20
    user_close "$sp" "(the user quits)"
    sleep 2
    lab_stop_capture
    session 'client = "127.0.0.1"' 'outcome = "disconnected"' 'cause = "client.closed"' \
        "at = [$(tt "$t_close" -0.2), $(tt "$t_close" 1)]" 'closed_by = "client"' 'attempts = []' \
        "note = \"capture of the client leg only (port $front); every chunk the relay forwards is held 20-140 ms\""
    ;;

*)
    echo "unknown case $case_" >&2
    exit 2
    ;;
esac

# The blackhole-short and haproxy-idle sessions depend on what the peers did:
# the script writes the actions only and the [[sessions]] are added after
# reading the capture (see the note in each truth file).
mkdir -p "/tmp/spicy-lab-logs-$case_"
cp "$tmp"/*.log "/tmp/spicy-lab-logs-$case_/" 2>/dev/null || true
lab_truth "$case_" "${peers[@]}"
