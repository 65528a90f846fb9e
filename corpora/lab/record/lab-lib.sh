# Shared parts of the lab's recording scripts; source it, do not run it.
#
#   lab_init NAME            re-runs the calling script inside a private
#                            network namespace (unshare -n), sets $cap, $truth
#   lab_capture FILTER       starts tcpdump on lo with that filter
#   lab_bg CMD...            starts a process, remembers its PID ($!)
#   lab_action TEXT          notes an action at the current epoch time
#   lab_stop_capture         ends tcpdump and flushes the capture
#   lab_truth FAULT PEERS... writes $truth: header, actions, then the
#                            [[sessions]] tables the script put in $sessions
#   lab_t EPOCH              capture seconds of an epoch time (after stop)
#   lab_haproxy_tcp FRONT BACK TIMEOUT
#                            haproxy in TCP mode from 127.0.0.1:FRONT to
#                            127.0.0.1:BACK, client/server timeout TIMEOUT,
#                            logging to $tmp/haproxy.log; sets $haproxy_pid
#
# Recordings land in corpora/lab, or in $LAB_OUT when set.
#
# Only processes this script started are ended, by PID, at exit.
set -euo pipefail
# LAB_OUT sends a recording elsewhere (corpora/holdout: recordings scored,
# never tuned on).
lab_dir=${LAB_OUT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
lab_pids=()
lab_actions=()
sessions=""

lab_init() {
    lab_name=$1
    shift
    if [ -z "${LAB_IN_NETNS:-}" ]; then
        # A session of its own: when the shell that started a recording
        # exits first, the kernel sends SIGHUP and SIGCONT to a process
        # group left orphaned with a stopped member, which thawed a
        # SIGSTOPped relay 16 s into its freeze.
        exec env LAB_IN_NETNS=1 setsid -w unshare -n "$0" "$@"
    fi
    ip link set lo up
    cap="$lab_dir/$lab_name.pcap"
    truth="$lab_dir/$lab_name.truth.toml"
    rm -f "$cap" "$truth"
    trap lab_cleanup EXIT
}

lab_cleanup() {
    local p
    for p in "${lab_pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${lab_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}

lab_bg() {
    "$@" &
    lab_pids+=($!)
}

lab_capture() {
    # -B: a 64 MB ring; lo's 64 KB segments overflow the 2 MB default on a
    # busy machine (tcpdump then reports "packets dropped by kernel").
    tcpdump -i lo -s 0 -B 65536 -U --immediate-mode -w "$cap" "$1" >/dev/null \
        2>"/tmp/lab-tcpdump-$lab_name.log" &
    lab_tcpdump=$!
    lab_pids+=($lab_tcpdump)
    sleep 1
}

lab_now() { date +%s.%N; }

lab_action() {
    local now
    now=$(lab_now)
    lab_actions+=("$now|$1")
    echo "[$(date -u +%H:%M:%S.%N | cut -c1-12)] $1" >&2
}

lab_stop_capture() {
    sleep 1
    kill -INT "$lab_tcpdump" 2>/dev/null || true
    wait "$lab_tcpdump" 2>/dev/null || true
    grep -h "dropped by kernel" "/tmp/lab-tcpdump-$lab_name.log" >&2 || true
    lab_start=$(tshark -r "$cap" -c 1 -T fields -e frame.time_epoch 2>/dev/null)
}

# Capture seconds of an epoch time, to the millisecond.
lab_t() { awk -v a="$1" -v b="$lab_start" 'BEGIN { printf "%.3f", a - b }'; }

lab_truth() {
    local fault=$1
    shift
    local peers="" p
    for p in "$@"; do peers+="${peers:+, }\"$p\""; done
    {
        echo "# Written by record/$(basename "$0") $fault; what the script did and the verdict it implies."
        echo "capture = \"$lab_name.pcap\""
        echo "peers = [$peers]"
        echo "script = \"record/$(basename "$0") $fault\""
        echo "fault = \"$fault\""
        echo "recorded = \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\""
        echo "capture_start = $lab_start"
        local a
        for a in "${lab_actions[@]}"; do
            echo
            echo "[[actions]]"
            echo "at = $(lab_t "${a%%|*}")"
            echo "did = \"${a#*|}\""
        done
        echo
        printf '%s\n' "$sessions"
    } >"$truth"
    ls -l "$cap" "$truth" >&2
}

lab_haproxy_tcp() {
    local front=$1 back=$2 timeout=$3
    cat >"$tmp/haproxy.cfg" <<EOF
global
    log stdout format raw local0 info
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 5s
    timeout client $timeout
    timeout server $timeout
frontend spice
    bind 127.0.0.1:$front
    default_backend qemu
backend qemu
    server qemu 127.0.0.1:$back
EOF
    lab_bg haproxy -f "$tmp/haproxy.cfg" -db >"$tmp/haproxy.log" 2>&1
    haproxy_pid=$!
    for _ in $(seq 50); do ss -Htln "( sport = :$front )" | grep -q . && break; sleep 0.1; done
    peers+=("haproxy $(haproxy -v | head -1 | awk '{print $3}')")
}
