//! SPICE on the TLS port (`corpora/record/spice-record.sh tls`): tether
//! recognises TLS from the first byte and does not decode it, but each
//! channel's timing, bytes and close still reach the report, matching
//! tshark's conversation table for the same capture.

use std::path::Path;
use tether::decode::Protocol;
use tether::decode::pipeline::{DecodeOptions, decode_capture, flow_table};
use tether::flow::{EndKind, FlowConfig};
use tether::timeline::{CloseKind, EventKind};

const NAME: &str = "spice-tls.pcap";

fn bytes() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../corpora/recorded")
            .join(NAME),
    )
    .unwrap()
}

/// client port, frames s2c, frames c2s, bytes s2c and c2s where tshark
/// prints them exactly (it rounds to kB above 10 000).
type Conversation = (u16, u64, u64, Option<u64>, Option<u64>);

fn tshark_conversations() -> Vec<Conversation> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/recorded/spice-tls.pcap.tshark.txt"),
    )
    .unwrap();
    text.lines()
        .filter(|l| l.starts_with("127.0.0.1:"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let port = f[0].rsplit(':').next().unwrap().parse().unwrap();
            // "<-" (towards the client) then "->": frames, size, unit.
            let exact = |n: &str, unit: &str| (unit == "bytes").then(|| n.parse().unwrap());
            (
                port,
                f[3].parse().unwrap(),
                f[6].parse().unwrap(),
                exact(f[4], f[5]),
                exact(f[7], f[8]),
            )
        })
        .collect()
}

#[test]
fn tls_channels_keep_timing_bytes_and_close() {
    let bytes = bytes();
    let table = flow_table(&bytes[..], NAME, FlowConfig::default()).unwrap();
    let theirs = tshark_conversations();
    assert_eq!(table.rows.len(), 4);
    assert_eq!(theirs.len(), 4);
    for (row, (port, s2c, c2s, bs2c, bc2s)) in table.rows.iter().zip(&theirs) {
        assert!(row.client.ends_with(&format!(":{port}")), "{row:?}");
        assert_eq!(row.protocol, Protocol::Tls);
        assert_eq!(
            (row.segments_s2c, row.segments_c2s),
            (*s2c, *c2s),
            "{row:?}"
        );
        if let Some(b) = bs2c {
            assert_eq!(row.wire_bytes_s2c, *b);
        }
        if let Some(b) = bc2s {
            assert_eq!(row.wire_bytes_c2s, *b);
        }
        assert_ne!(row.end, EndKind::Open, "{row:?}");
    }
    let options = DecodeOptions {
        keep_events: true,
        ..DecodeOptions::default()
    };
    let r = decode_capture(&bytes[..], NAME, options).unwrap();
    for (c, row) in r.connections.iter().zip(&table.rows) {
        // Without keys: the TLS handshake and records, nothing inside.
        assert_eq!(c.stack, ["tcp", "tls"]);
        assert!(c.session.is_none());
        // spice-gtk drops its sockets without close_notify (TLS 1.3 hides
        // whether the server's last small record was one).
        let codes: Vec<&str> = c.findings.iter().map(|f| f.code.as_ref()).collect();
        assert_eq!(codes, ["tls.no_close_notify"], "{:?}", c.findings);
        // Liveness needs only timing: both directions have a span.
        assert!(c.c2s.first.is_some() && c.c2s.last > c.c2s.first);
        assert!(c.s2c.first.is_some() && c.s2c.last > c.s2c.first);
        assert_eq!(c.counts.c2s.get("ClientHello"), Some(&1));
        assert_eq!(c.counts.s2c.get("ServerHello"), Some(&1));
        assert!(c.counts.s2c["application_data"] > 10);
        let kinds: Vec<&EventKind> = c.events.iter().map(|e| &e.kind).collect();
        assert!(matches!(kinds.first(), Some(EventKind::Open { .. })));
        // The close the flow table reports is in the timeline too.
        let close = match row.end {
            EndKind::Fin => CloseKind::Fin,
            _ => CloseKind::Rst,
        };
        assert!(kinds.contains(&&EventKind::Close(close)), "{kinds:?}");
    }
}
