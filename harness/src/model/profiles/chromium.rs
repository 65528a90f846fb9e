//! Chromium's sockets, as every browser-hosted profile (noVNC, spice-html5)
//! inherits them: what the browser sets on a WebSocket's TCP connection,
//! whatever the page does.
//!
//! Chromium turns TCP keep-alive on for every client socket it opens
//! (`TCPSocketPosix::SetDefaultOptionsForClient`, net/socket/
//! tcp_socket_posix.cc: `kTCPKeepAliveSeconds = 45`), and on Linux its
//! `SetTCPKeepAlive` writes that one value as both `TCP_KEEPIDLE` and
//! `TCP_KEEPINTVL`; it leaves `TCP_KEEPCNT` to the kernel. The lab's
//! novnc-blackhole shows the probes 45 s apart (frames 75, 77).

use super::super::constants::{Constants, Value};
use crate::timeline::Micros;

/// Defines `keepalive_idle`, `keepalive_interval` and `keepalive_probes`
/// as Chromium sets them.
pub fn define_keepalive(c: &mut Constants) {
    use Value::*;
    let sec = |n: u64| Duration(Micros(n * 1_000_000));
    c.define(
        "keepalive_idle",
        sec(45),
        "Chromium net/socket/tcp_socket_posix.cc kTCPKeepAliveSeconds as TCP_KEEPIDLE (novnc-blackhole frames 75, 77)",
    );
    c.define(
        "keepalive_interval",
        sec(45),
        "Chromium net/socket/tcp_socket_posix.cc SetTCPKeepAlive: the same 45 s as TCP_KEEPINTVL (novnc-blackhole frames 75, 77)",
    );
    c.define(
        "keepalive_probes",
        Count(9),
        "LX ip-sysctl.rst tcp_keepalive_probes default: Chromium does not set TCP_KEEPCNT",
    );
}

/// The browser socket's keep-alive as `net` runs it.
pub fn socket_keepalive(c: &Constants) -> super::super::net::Keepalive {
    let (idle, interval, count) = keepalive(c);
    super::super::net::Keepalive {
        idle: Micros(idle),
        interval: Micros(interval),
        count,
    }
}

/// The keep-alive the constants say: (idle, interval, probes).
pub fn keepalive(c: &Constants) -> (u64, u64, u64) {
    (
        c.duration("keepalive_idle").0,
        c.duration("keepalive_interval").0,
        c.count("keepalive_probes"),
    )
}
