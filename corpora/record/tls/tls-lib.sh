# Shared parts of the TLS recording scripts in corpora/record/tls/; source it.
#
#   tls_init NAME [ARGS]  re-runs the calling script in a private network
#                         namespace (unshare -n, so only its own loopback is
#                         seen and ports cannot collide), sets $out (this
#                         directory), $name, $cap, $keys, $tmp
#   tls_bg CMD...         starts a process, remembers its PID in $tls_pids
#   tls_capture FILTER    tcpdump -i lo, full snaplen, into $cap
#   tls_stop_capture      ends tcpdump (SIGINT) and waits for the file
#   tls_display           picks a free X display number for Xvnc, sets $display
#   tls_pki DIR           throwaway CA + server cert (CN/SAN 127.0.0.1) in DIR
#   tls_wait_port PORT    waits until 127.0.0.1:PORT accepts
#
# Only processes this script started are ended, by PID, at exit.
set -euo pipefail
tls_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tls_pids=()

tls_init() {
    name=$1
    shift
    if [ -z "${TLS_IN_NETNS:-}" ]; then
        exec env TLS_IN_NETNS=1 unshare -n "$0" "$@"
    fi
    ip link set lo up
    out=$tls_dir
    cap="$out/$name.pcap"
    keys="$out/$name.keys"
    rm -f "$cap" "$keys" "$out/$name.tshark.txt" "$out/$name.client.txt" "$out/$name.dsb.pcapng"
    tmp=$(mktemp -d "/tmp/tether-tls-$name.XXXXXX")
    trap tls_cleanup EXIT
}

tls_cleanup() {
    local p
    for p in "${tls_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${tls_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    # Xvnc's lock and socket live in the shared /tmp: remove ours only.
    if [ -n "${xvnc_pid:-}" ] && [ -e "/tmp/.X${display#:}-lock" ] &&
        [ "$(tr -d ' ' <"/tmp/.X${display#:}-lock")" = "$xvnc_pid" ]; then
        rm -f "/tmp/.X${display#:}-lock" "/tmp/.X11-unix/X${display#:}"
    fi
    rm -rf "$tmp"
}

tls_bg() {
    "$@" &
    tls_pids+=($!)
}

tls_capture() {
    tcpdump -Z root -i lo -s 0 -B 65536 -U --immediate-mode -w "$cap" "$1" >/dev/null \
        2>"$tmp/tcpdump.log" &
    tls_tcpdump=$!
    tls_pids+=($tls_tcpdump)
    sleep 1
}

tls_stop_capture() {
    sleep 0.5
    kill -INT "$tls_tcpdump" 2>/dev/null || true
    wait "$tls_tcpdump" 2>/dev/null || true
    grep -h "dropped by kernel" "$tmp/tcpdump.log" >&2 || true
}

tls_wait_port() {
    local i
    for i in $(seq 1 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $1)).close()" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}

# Starts Xvnc on the first free display from 170 on: tls_xvnc PORT GEOMETRY ARGS...
tls_xvnc() {
    local port=$1 geometry=$2 n
    shift 2
    display="" xvnc_pid=""
    for n in $(seq 170 199); do
        [ -e /tmp/.X$n-lock ] || [ -e /tmp/.X11-unix/X$n ] && continue
        display=:$n
        tls_bg Xvnc "$display" -geometry "$geometry" -depth 24 -rfbport "$port" -interface 127.0.0.1 \
            -nolisten tcp -AlwaysShared -desktop tether-tls "$@" >"$tmp/xvnc.log" 2>&1
        xvnc_pid=$!
        sleep 1
        kill -0 "$xvnc_pid" 2>/dev/null && break
        xvnc_pid=""
    done
    [ -n "$xvnc_pid" ] || { echo "no Xvnc" >&2; cat "$tmp/xvnc.log" >&2; exit 1; }
    tls_wait_port "$port"
}

tls_pki() {
    local d=$1
    mkdir -p "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=tether-tls-ca \
        -keyout "$d/ca-key.pem" -out "$d/ca-cert.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
        -keyout "$d/server-key.pem" -out "$d/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$d/ext"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca-cert.pem" -CAkey "$d/ca-key.pem" \
        -CAcreateserial -days 3650 -extfile "$d/ext" -out "$d/server-cert.pem" 2>/dev/null
}
