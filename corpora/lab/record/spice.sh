#!/usr/bin/env bash
# Records one SPICE case of the lab: QEMU's SPICE server (no disk, TCG: the
# guest sits in SeaBIOS on a QXL card) and remote-viewer (virt-viewer,
# spice-gtk) on 127.0.0.1 inside a private network namespace, Xvfb in the
# same namespace (640x480), one fault per case:
#
#   user-close           ~15 s session, then the user closes the window
#   server-killed        SIGKILL qemu mid-session, the user retries 2 s later
#   server-frozen-short  SIGSTOP qemu 10 s, SIGCONT, user closes 15 s later
#   server-frozen-long   SIGSTOP qemu 90 s, SIGCONT, user closes 10 s later
#   client-frozen-short  SIGSTOP remote-viewer 10 s, SIGCONT, user closes later
#   client-frozen-long   SIGSTOP remote-viewer until the server dropped it
#   blackhole            iptables DROP of the SPICE port both ways at ~T+15
#   latency              delay-relay.py (150 ms +- 100 ms per chunk) in the path
#   wrong-ticket-retry   wrong password (refused), then a new viewer with the
#                        right one, which the user closes 10 s later
#   wrong-ticket         only the wrong password
#   haproxy-idle         remote-viewer -> haproxy (timeout client/server 10s)
#                        -> qemu, left idle for 20 s; both legs captured
#   haproxy-frozen       remote-viewer -> haproxy (mode tcp, timeouts 1 h) -> qemu;
#                        haproxy SIGSTOPped until the server drops the client
#                        (both kernels keep ACKing: a relay that holds), then
#                        SIGCONT; the user closes the disconnected viewer
#
# "The user closes the window" is a real close: x-close.py sends the
# window manager's WM_DELETE_WINDOW message to remote-viewer's window (the
# "really quit?" question is switched off in a private virt-viewer config,
# as after "do not ask me again").
#
# Output: corpora/lab/spice-<case>.pcap and .truth.toml.
# Usage: corpora/lab/record/spice.sh <case>     (root: netns, tcpdump)
set -euo pipefail
case_=${1:?usage: spice.sh <case>}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lab-lib.sh
source "$here/lab-lib.sh"
lab_init "spice-$case_" "$@"

port=5930     # qemu's SPICE port (private namespace)
front=5931    # haproxy / delay relay listening port
password=lab-right-ticket
peer_qemu="qemu-system-x86_64 $(qemu-system-x86_64 --version | head -1 | awk '{print $4}') (libspice-server $(dpkg-query -W -f='${Version}' libspice-server1 | cut -d- -f1))"
peer_rv="remote-viewer (virt-viewer $(remote-viewer --version | awk '{print $3}'), spice-gtk $(dpkg-query -W -f='${Version}' libspice-client-glib-2.0-8 | cut -d- -f1))"
peers=("$peer_qemu" "$peer_rv")

tmp=$(mktemp -d /tmp/spice-lab.XXXXXX)
mkdir -p "$tmp/config/virt-viewer"
printf '[virt-viewer]\nask-quit=false\n' >"$tmp/config/virt-viewer/settings"
export XDG_CONFIG_HOME=$tmp/config HOME=$tmp
echo "logs in $tmp" >&2

# Xvfb picks a free display number itself (lock files are shared with
# other recordings; the abstract socket is private to this namespace).
lab_bg Xvfb -displayfd 3 -screen 0 640x480x24 -nolisten tcp 3>"$tmp/display" 2>"$tmp/xvfb.log"
for _ in $(seq 50); do [ -s "$tmp/display" ] && break; sleep 0.1; done
export DISPLAY=":$(head -1 "$tmp/display")"

start_qemu() {   # extra -spice options in $1
    lab_bg qemu-system-x86_64 -machine accel=tcg -m 64 -nodefaults -vga qxl -display none \
        "${qemu_extra[@]}" -spice "port=$port,addr=127.0.0.1${1}" >"$tmp/qemu.log" 2>&1
    qemu=$!
    for _ in $(seq 50); do ss -Htln "( sport = :$port )" | grep -q . && break; sleep 0.1; done
}
qemu_extra=()

rv_n=0
start_rv() {     # URI
    rv_n=$((rv_n + 1))
    lab_bg remote-viewer "$1" >"$tmp/rv$rv_n.log" 2>&1
    rv=$!
}

# The user closes remote-viewer's window (WM_DELETE_WINDOW); waits for it to exit.
user_close() {
    local pid=$1 what=${2:-}
    local wins
    if ! kill -0 "$pid" 2>/dev/null; then
        lab_action "remote-viewer (pid $pid) had already exited by itself; nothing for the user to close"
        return 0
    fi
    wins=$(/usr/bin/python3 "$here/x-close.py" "$pid" --list | tr '\n' ' ' || true)
    t_close=$(lab_now)   # the truth windows of a user close start here
    lab_action "remote-viewer (pid $pid) window closed by the user (WM_DELETE_WINDOW to ${wins:-no window}) $what"
    /usr/bin/python3 "$here/x-close.py" "$pid" >/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    lab_action "remote-viewer (pid $pid) still running 5 s after the close"
}

# Server-side established sockets of the SPICE port.
n_server_est() { ss -Htn state established "( sport = :$1 )" | wc -l; }
# Client-side sockets (any state but TIME-WAIT) towards a port.
n_client_socks() { ss -Htan "( dport = :$1 )" | grep -vc TIME-WAIT || true; }
# Client-side sockets still open towards a port (established or close-wait).
n_client_live() { ss -Htn state established state close-wait "( dport = :$1 )" | wc -l; }
# Capture seconds of an epoch time plus an offset (not before the first frame).
tt() { lab_t "$(awk -v a="$1" -v o="${2:-0}" -v s="$lab_start" 'BEGIN { t = a + o; if (t < s) t = s; printf "%.6f", t }')"; }

# Waits up to $1 tenths of a second for the server to close one of the $n0
# channels established before; sets $t_drop (empty when it never did).
wait_server_drop() {
    t_drop=""
    for _ in $(seq "$1"); do
        if [ "$(n_server_est $port)" -lt "$n0" ]; then t_drop=$(lab_now); break; fi
        sleep 0.1
    done
    [ -n "$t_drop" ] && lab_action "the server closed its side ($(n_server_est $port) of $n0 channels left established)"
    return 0
}


spice_uri="spice://127.0.0.1:$port"
filter="tcp port $port"
case $case_ in
latency | haproxy-idle | haproxy-frozen) spice_uri="spice://127.0.0.1:$front" ;;
esac
case $case_ in
latency) filter="tcp port $front" ;;
haproxy-idle | haproxy-frozen) filter="tcp port $port or tcp port $front" ;;
esac

ticket=",disable-ticketing=on"
case $case_ in
wrong-ticket*)
    qemu_extra=(-object "secret,id=spicepw,data=$password")
    ticket=",password-secret=spicepw"
    ;;
esac

start_qemu "$ticket"
lab_capture "$filter"

session() {      # key = value lines of one [[sessions]] table
    sessions+=$'[[sessions]]\n'
    local kv
    for kv in "$@"; do sessions+="$kv"$'\n'; done
    sessions+=$'\n'
}

case $case_ in
user-close)
    lab_action "remote-viewer connects to $spice_uri"
    start_rv "$spice_uri"
    sleep 15
    t_close=$(lab_now)
    user_close "$rv" "(the user quits)"
    sleep 2
    lab_stop_capture
    session 'client = "127.0.0.1"' 'outcome = "disconnected"' 'cause = "client.closed"' \
        "at = [$(lab_t "$t_close"), $(tt "$t_close" 2)]" 'closed_by = "client"' \
        'attempts = []'
    ;;

server-killed)
    lab_action "remote-viewer connects to $spice_uri"
    start_rv "$spice_uri"
    first_rv=$rv
    sleep 10
    t_kill=$(lab_now)
    lab_action "qemu (pid $qemu) sent SIGKILL"
    kill -KILL "$qemu"
    sleep 2
    if [ "$(n_client_socks $port)" = 0 ]; then
        lab_action "the user starts remote-viewer again ($spice_uri): nothing listens"
        start_rv "$spice_uri"
        sleep 3
    fi
    sleep 1
    lab_stop_capture
    session 'client = "127.0.0.1"' 'outcome = "dead_session"' 'cause = "server.killed"' \
        "at = [$(lab_t "$t_kill"), $(tt "$t_kill" 0.5)]" 'closed_by = "server"' \
        'attempts = ["rst_to_syn"]' \
        'note = "remote-viewer does not reconnect by itself; the scripted user starts a new one 2 s after the kill, its SYN gets RST"'
    ;;

server-frozen-short | server-frozen-long)
    freeze=10 after=15
    [ "$case_" = server-frozen-long ] && freeze=90 after=10
    lab_action "remote-viewer connects to $spice_uri"
    start_rv "$spice_uri"
    sleep 10
    lab_action "qemu (pid $qemu) sent SIGSTOP (server frozen for $freeze s)"
    kill -STOP "$qemu"
    sleep "$freeze"
    lab_action "qemu (pid $qemu) sent SIGCONT"
    kill -CONT "$qemu"
    t_thaw=$(lab_now)
    sleep "$after"
    alive=$(n_server_est $port)
    t_close=$(lab_now)
    if kill -0 "$rv" 2>/dev/null; then user_close "$rv" "(the user quits; $alive server-side channels were up)"; fi
    sleep 2
    lab_stop_capture
    echo "server-side channels established before the close: $alive" >&2
    session 'client = "127.0.0.1"' 'outcome = "disconnected"' 'cause = "client.closed"' \
        "at = [$(lab_t "$t_close"), $(tt "$t_close" 2)]" 'closed_by = "client"' \
        'attempts = []' \
        "note = \"qemu was stopped for $freeze s; the session carried on after SIGCONT; the user closed it $after s after the thaw\""
    ;;

client-frozen-short)
    lab_action "remote-viewer connects to $spice_uri"
    start_rv "$spice_uri"
    sleep 10
    lab_action "remote-viewer (pid $rv) sent SIGSTOP (client frozen for 10 s)"
    kill -STOP "$rv"
    sleep 10
    lab_action "remote-viewer (pid $rv) sent SIGCONT"
    kill -CONT "$rv"
    sleep 12
    t_close=$(lab_now)
    user_close "$rv" "(the user quits)"
    sleep 2
    lab_stop_capture
    session 'client = "127.0.0.1"' 'outcome = "disconnected"' 'cause = "client.closed"' \
        "at = [$(lab_t "$t_close"), $(tt "$t_close" 2)]" 'closed_by = "client"' \
        'attempts = []' 'note = "remote-viewer was stopped for 10 s; the session carried on after SIGCONT"'
    ;;

client-frozen-long)
    lab_action "remote-viewer connects to $spice_uri"
    start_rv "$spice_uri"
    sleep 10
    n0=$(n_server_est $port)
    lab_action "remote-viewer (pid $rv) sent SIGSTOP (frozen until the server drops it)"
    t_stop=$(lab_now)
    kill -STOP "$rv"
    wait_server_drop 1200   # up to 120 s
    sleep 3
    lab_action "remote-viewer (pid $rv) sent SIGCONT"
    kill -CONT "$rv"
    sleep 4
    t_close=$(lab_now)
    user_close "$rv" "(the user dismisses the disconnected viewer)"
    sleep 1
    lab_stop_capture
    [ -n "$t_drop" ] || { echo "the server never dropped the client" >&2; t_drop=$t_close; }
    session 'client = "127.0.0.1"' 'outcome = "disconnected"' 'cause = "server.connectivity_timeout"' \
        'origin = "client.frozen"' 'channel = "main"' \
        "at = [$(tt "$t_drop" -0.6), $(tt "$t_drop" 0.2)]" 'closed_by = "server"' \
        'attempts = []' \
        "note = \"remote-viewer stopped at $(lab_t "$t_stop"); the main channel's connectivity timer dropped it, the server closed every channel\""
    ;;

blackhole)
    lab_action "remote-viewer connects to $spice_uri"
    start_rv "$spice_uri"
    sleep 15
    n0=$(n_server_est $port)
    t_drop=$(lab_now)
    lab_action "iptables DROP of every packet to and from port $port (INPUT chain: the capture still sees what each end sends)"
    iptables -I INPUT -p tcp --dport $port -j DROP
    iptables -I INPUT -p tcp --sport $port -j DROP
    t_srv="" t_cli=""
    for _ in $(seq 1350); do   # up to 135 s of outage
        if [ -z "$t_srv" ] && [ "$(n_server_est $port)" -lt "$n0" ]; then
            t_srv=$(lab_now); lab_action "the server closed its side of the channels (ss: $(n_server_est $port) of $n0 left)"
        fi
        if [ -z "$t_cli" ] && [ "$(n_client_live $port)" = 0 ]; then
            t_cli=$(lab_now); lab_action "the client's sockets are gone (ss)"
        fi
        [ -n "$t_srv" ] && [ -n "$t_cli" ] && break
        sleep 0.1
    done
    sleep 2
    lab_action "iptables DROP removed"
    iptables -D INPUT -p tcp --dport $port -j DROP
    iptables -D INPUT -p tcp --sport $port -j DROP
    sleep 5
    user_close "$rv" "(the user dismisses the disconnected viewer)"
    sleep 1
    lab_stop_capture
    ss -tan >&2 || true
    echo "server gave up: ${t_srv:-never}, client: ${t_cli:-never}" >&2
    t_end=${t_srv:-$(lab_now)}
    session 'client = "127.0.0.1"' 'outcome = "disconnected"' 'cause = "server.connectivity_timeout"' \
        'origin = "network.outage"' 'channel = "main"' \
        "at = [$(tt "$t_end" -0.6), $(tt "$t_end" 0.2)]" 'closed_by = "server"' \
        'attempts = []' \
        "note = \"blackhole from $(lab_t "$t_drop"); client sockets gone at ${t_cli:+$(lab_t "$t_cli")}\""
    ;;

latency)
    lab_bg python3 "$here/delay-relay.py" $front $port 150 100 7
    for _ in $(seq 50); do ss -Htln "( sport = :$front )" | grep -q . && break; sleep 0.1; done
    lab_action "remote-viewer connects to $spice_uri (delay-relay.py to $port: 150 ms +- 100 ms per chunk each way, seed 7)"
    start_rv "$spice_uri"
    sleep 30
    t_close=$(lab_now)
    user_close "$rv" "(the user quits)"
    sleep 2
    lab_stop_capture
    session 'client = "127.0.0.1"' 'outcome = "disconnected"' 'cause = "client.closed"' \
        "at = [$(lab_t "$t_close"), $(tt "$t_close" 2)]" 'closed_by = "client"' \
        'attempts = []' \
        "note = \"capture of the client leg only (port $front); every chunk the relay forwards is held 50-250 ms\""
    ;;

wrong-ticket-retry | wrong-ticket)
    lab_action "remote-viewer connects to $spice_uri with the wrong password"
    t_first=$(lab_now)
    start_rv "$spice_uri?password=wrong"
    sleep 5
    t_close=$(lab_now)
    user_close "$rv" "(the user gives up on the refused viewer)"
    if [ "$case_" = wrong-ticket-retry ]; then
        sleep 2
        lab_action "a new remote-viewer connects with the right password"
        start_rv "$spice_uri?password=$password"
        sleep 10
        t_close=$(lab_now)
        user_close "$rv" "(the user quits)"
    fi
    sleep 2
    lab_stop_capture
    if [ "$case_" = wrong-ticket-retry ]; then
        session 'client = "127.0.0.1"' 'outcome = "disconnected"' 'cause = "client.closed"' \
            "at = [$(lab_t "$t_close"), $(tt "$t_close" 2)]" 'closed_by = "client"' \
            'attempts = ["auth.refused"]' \
            'note = "first viewer: wrong password, link refused (PERMISSION_DENIED); the second viewer with the right one ran 10 s"'
    else
        session 'client = "127.0.0.1"' 'outcome = "refused"' 'cause = "auth.refused"' \
            "at = [$(tt "$t_first" 0), $(tt "$t_first" 3)]" 'closed_by = "server"' \
            'attempts = ["auth.refused"]' \
            'note = "wrong password only: the main link is refused (PERMISSION_DENIED)"'
    fi
    ;;

haproxy-idle)
    lab_haproxy_tcp "$front" "$port" 10s
    lab_action "remote-viewer connects to $spice_uri (haproxy, mode tcp, timeout client/server 10s, to $port); nobody touches it"
    t_conn=$(lab_now)
    start_rv "$spice_uri"
    sleep 20
    t_close=$(lab_now)
    user_close "$rv" "(the user closes the viewer)"
    sleep 2
    lab_stop_capture
    cat "$tmp/haproxy.log" >&2
    # The channel haproxy cut: its log line ends the session with a client-
    # or server-side timeout (termination state cD or sD); the others close
    # normally ("--") when QEMU tears the client down after main went.
    cut=$(awk '$7 ~ /^[cs]D/ { split($1, a, ":"); print a[2]; exit }' "$tmp/haproxy.log")
    state=$(awk '$7 ~ /^[cs]D/ { print $7; exit }' "$tmp/haproxy.log")
    names=(unknown main display inputs cursor playback record)
    chan=unknown back=""
    if [ -n "$cut" ]; then
        ct=$(tshark -r "$cap" -d "tcp.port==$front,spice" -Y "tcp.srcport==$cut && spice.channel_type" \
            -T fields -e spice.channel_type 2>/dev/null | head -1)
        chan=${names[${ct:-0}]:-unknown}
    fi
    # Front-leg client ports of main, and haproxy's port towards qemu for it.
    main_front=$(tshark -r "$cap" -Y "tcp.dstport==$front && tcp.flags.syn==1 && tcp.flags.ack==0" -T fields -e tcp.srcport 2>/dev/null | head -1)
    main_back=$(tshark -r "$cap" -Y "tcp.dstport==$port && tcp.flags.syn==1 && tcp.flags.ack==0" -T fields -e tcp.srcport 2>/dev/null | head -1)
    echo "haproxy cut client port ${cut:-none} (channel $chan)" >&2
    session 'client = "127.0.0.1"' "port = $main_front" 'outcome = "disconnected"' 'cause = "lb.idle_timeout"' \
        "at = [$(tt "$t_conn" 10), $(tt "$t_conn" 12)]" "channel = \"$chan\"" 'closed_by = "both"' \
        'attempts = []' \
        "note = \"front leg (remote-viewer to haproxy :$front). haproxy's idle timeout cut the $chan channel (client port $cut, haproxy termination state $state) after 10 s without traffic and closed both of its legs; QEMU then closed every other channel of that client\""
    session 'client = "127.0.0.1"' "port = $main_back" 'outcome = "disconnected"' 'cause = "lb.idle_timeout"' \
        "at = [$(tt "$t_conn" 10), $(tt "$t_conn" 12)]" "channel = \"$chan\"" 'closed_by = "both"' \
        'attempts = []' \
        "note = \"back leg (haproxy to qemu :$port), the same session seen from the server side\""
    ;;

haproxy-frozen)
    lab_haproxy_tcp "$front" "$port" 1h
    lab_action "remote-viewer connects to $spice_uri (haproxy, mode tcp, timeout client/server 1h, to $port)"
    start_rv "$spice_uri"
    sleep 12
    n0=$(n_server_est $port)
    lab_action "haproxy (pid $haproxy_pid) sent SIGSTOP: its kernel still ACKs both legs, nothing is forwarded"
    t_stop=$(lab_now)
    kill -STOP "$haproxy_pid"
    wait_server_drop 2000   # up to 200 s
    sleep 3
    lab_action "haproxy (pid $haproxy_pid) sent SIGCONT"
    t_cont=$(lab_now)
    kill -CONT "$haproxy_pid"
    sleep 5
    user_close "$rv" "(the user dismisses the disconnected viewer)"
    sleep 1
    lab_stop_capture
    cat "$tmp/haproxy.log" >&2
    [ -n "$t_drop" ] || { echo "the server never dropped the client" >&2; t_drop=$t_cont; }
    main_front=$(tshark -r "$cap" -Y "tcp.dstport==$front && tcp.flags.syn==1 && tcp.flags.ack==0" -T fields -e tcp.srcport 2>/dev/null | head -1)
    main_back=$(tshark -r "$cap" -Y "tcp.dstport==$port && tcp.flags.syn==1 && tcp.flags.ack==0" -T fields -e tcp.srcport 2>/dev/null | head -1)
    session 'client = "127.0.0.1"' "port = $main_front" 'outcome = "disconnected"' 'cause = "server.connectivity_timeout"' \
        'origin = "network.outage"' 'channel = "main"' \
        "at = [$(tt "$t_cont" -0.1), $(tt "$t_cont" 1)]" 'closed_by = "server"' \
        'attempts = []' \
        "note = \"front leg (remote-viewer to haproxy :$front). haproxy frozen from $(lab_t "$t_stop"): the server's connectivity timer dropped the client at $(lab_t "$t_drop") behind it; this leg sees the FINs when haproxy resumes at $(lab_t "$t_cont")\""
    session 'client = "127.0.0.1"' "port = $main_back" 'outcome = "disconnected"' 'cause = "server.connectivity_timeout"' \
        'origin = "network.outage"' 'channel = "main"' \
        "at = [$(tt "$t_drop" -0.6), $(tt "$t_drop" 0.2)]" 'closed_by = "server"' \
        'attempts = []' \
        "note = \"back leg (haproxy to qemu :$port): the main channel's connectivity timer fired with haproxy frozen, and the server closed every channel\""
    ;;

*)
    echo "unknown case $case_" >&2
    exit 2
    ;;
esac

lab_truth "$case_" "${peers[@]}"
