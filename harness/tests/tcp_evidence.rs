//! What TCP alone says about each side (flow::TcpSide), on precisely
//! constructed segments: the kernel behaviours triage's evidence rules rest
//! on (RFC 9293 keep-alives and zero windows, RFC 6298 retransmission).

use std::net::SocketAddr;
use tether::capture::TcpSegment;
use tether::flow::{FlowConfig, FlowEvent, Reassembler};
use tether::timeline::Micros;

const CLIENT: &str = "10.0.0.1:40000";
const SERVER: &str = "10.0.0.2:5900";
const C_ISN: u32 = 1000;
const S_ISN: u32 = 9000;

struct Seg {
    ms: u64,
    from_client: bool,
    seq: u32,
    ack: u32,
    flags: &'static str,
    window: u16,
    payload: &'static [u8],
}

fn seg(
    ms: u64,
    from_client: bool,
    seq: u32,
    ack: u32,
    flags: &'static str,
    payload: &'static [u8],
) -> Seg {
    Seg {
        ms,
        from_client,
        seq,
        ack,
        flags,
        window: 64000,
        payload,
    }
}

fn run(segs: &[Seg]) -> [tether::flow::TcpSide; 2] {
    let mut r = Reassembler::new(FlowConfig::default());
    let mut sink = |_: FlowEvent<'_>| {};
    let (c, s): (SocketAddr, SocketAddr) = (CLIENT.parse().unwrap(), SERVER.parse().unwrap());
    for (i, x) in segs.iter().enumerate() {
        let (src, dst) = if x.from_client { (c, s) } else { (s, c) };
        r.segment(
            &TcpSegment {
                frame: i as u64 + 1,
                ts: Micros(x.ms * 1000),
                src,
                dst,
                seq: x.seq,
                ack: x.ack,
                syn: x.flags.contains('S'),
                ack_flag: x.flags.contains('A'),
                fin: x.flags.contains('F'),
                rst: x.flags.contains('R'),
                payload: x.payload,
                missing_tail: 0,
                window: x.window,
                wire_len: 54 + x.payload.len() as u32,
            },
            &mut sink,
        );
    }
    r.finish(&mut sink);
    r.summaries()[0].tcp
}

fn handshake() -> Vec<Seg> {
    vec![
        seg(0, true, C_ISN, 0, "S", b""),
        seg(1, false, S_ISN, C_ISN + 1, "SA", b""),
        seg(2, true, C_ISN + 1, S_ISN + 1, "A", b""),
    ]
}

fn ms(t: u64) -> Option<Micros> {
    Some(Micros(t * 1000))
}

/// A frozen client: the server's PING is acknowledged by the client's
/// kernel, never answered; the client's window then closes.
#[test]
fn frozen_process_still_acknowledges() {
    let mut s = handshake();
    s.push(seg(100, false, S_ISN + 1, C_ISN + 1, "AP", b"PING"));
    s.push(seg(101, true, C_ISN + 1, S_ISN + 5, "A", b""));
    let mut zero = seg(5000, true, C_ISN + 1, S_ISN + 5, "A", b"");
    zero.window = 0;
    s.push(zero);
    let [client, server] = run(&s);
    assert_eq!(client.last_ack_advance, ms(101));
    assert_eq!(client.zero_windows, 1);
    assert_eq!(client.first_zero_window, ms(5000));
    assert_eq!(server.retransmissions, 0);
    assert_eq!(server.unacked_since, None);
}

/// A dead path: the PING is retransmitted with backoff and never
/// acknowledged; it stays unacknowledged since its first sending.
#[test]
fn dead_path_retransmits_unacknowledged() {
    let mut s = handshake();
    for t in [100, 300, 700, 1500, 3100] {
        s.push(seg(t, false, S_ISN + 1, C_ISN + 1, "AP", b"PING"));
    }
    let [client, server] = run(&s);
    assert_eq!(server.retransmissions, 4);
    assert_eq!(server.first_retransmission, ms(300));
    assert_eq!(server.last_retransmission, ms(3100));
    assert_eq!(server.unacked_since, ms(100));
    assert_eq!(server.longest_stall, None);
    assert_eq!(
        client.last_ack_advance, None,
        "the handshake acknowledges no data"
    );
}

/// A path that came back: the retransmitted bytes are acknowledged at last,
/// and the stall from first sending to that ACK is kept.
#[test]
fn stall_ends_with_the_acknowledgement() {
    let mut s = handshake();
    s.push(seg(100, false, S_ISN + 1, C_ISN + 1, "AP", b"PING"));
    s.push(seg(1100, false, S_ISN + 1, C_ISN + 1, "AP", b"PING"));
    s.push(seg(9100, true, C_ISN + 1, S_ISN + 5, "A", b""));
    let [_, server] = run(&s);
    assert_eq!(server.unacked_since, None);
    assert_eq!(
        server.longest_stall,
        Some((Micros(100_000), Micros(9_100_000)))
    );
}

/// The client sends 5 bytes, the server ACKs them, and after 45 s idle the
/// client's kernel probes (one byte below the next sequence number).
fn idle_then_probed() -> Vec<Seg> {
    let mut s = handshake();
    s.push(seg(100, true, C_ISN + 1, S_ISN + 1, "AP", b"hello"));
    s.push(seg(101, false, S_ISN + 1, C_ISN + 6, "A", b""));
    s.push(seg(45_000, true, C_ISN + 5, S_ISN + 1, "A", b""));
    s
}

/// Keep-alive probes (one byte below the next sequence number, RFC 9293
/// §3.8.4) are not retransmissions; their answers advance nothing.
#[test]
fn keepalive_probes_are_counted_apart() {
    let mut s = idle_then_probed();
    s.push(seg(45_001, false, S_ISN + 1, C_ISN + 6, "A", b""));
    s.push(seg(90_000, true, C_ISN + 5, S_ISN + 1, "A", b"o"));
    let [client, server] = run(&s);
    assert_eq!(client.keepalives, 2);
    assert_eq!(client.last_keepalive, ms(90_000));
    assert_eq!(client.retransmissions, 0);
    assert_eq!(client.last_payload, ms(100));
    assert_eq!(server.last_ack_advance, ms(101));
    // The first probe's ACK answered it; the second is still out.
    assert_eq!(client.last_keepalive_answered, ms(45_001));
}

/// A probe answered by a RST met a closed socket, not a live one holding
/// the connection (RFC 9293 §3.10.7.1); one never answered is not answered.
#[test]
fn a_reset_does_not_answer_a_keepalive_probe() {
    let mut s = idle_then_probed();
    s.push(seg(45_001, false, S_ISN + 1, 0, "R", b""));
    let [client, _] = run(&s);
    assert_eq!(client.keepalives, 1);
    assert_eq!(client.last_keepalive_answered, None);
}

/// Who closed: each side's first FIN and RST, as sent.
#[test]
fn first_fin_and_rst_per_side() {
    let mut s = handshake();
    s.push(seg(100, false, S_ISN + 1, C_ISN + 1, "AF", b""));
    s.push(seg(101, true, C_ISN + 1, S_ISN + 2, "R", b""));
    let [client, server] = run(&s);
    assert_eq!(server.first_fin, ms(100));
    assert_eq!(server.first_rst, None);
    assert_eq!(client.first_rst, ms(101));
    assert_eq!(client.first_fin, None);
}
