//! Every container, byte order, timestamp resolution and link type carries
//! the same TCP conversation to the same flow table; damaged files report
//! located diagnostics and keep what is readable.

use std::net::SocketAddr;
use tether::capture::writer::{Flags, PcapNgWriter, PcapWriter, tcp_frame};
use tether::decode::pipeline::{FlowTable, flow_table};
use tether::flow::{EndKind, FlowConfig};
use tether::timeline::Micros;

const CLIENT: &str = "10.1.2.3:40000";
const SERVER: &str = "10.9.8.7:5900";

/// (timestamp, IPv4 packet without link header)
fn conversation() -> Vec<(Micros, Vec<u8>)> {
    let c: SocketAddr = CLIENT.parse().unwrap();
    let s: SocketAddr = SERVER.parse().unwrap();
    let f = |syn, ack, fin| Flags {
        syn,
        ack,
        fin,
        ..Flags::default()
    };
    let frames = vec![
        tcp_frame(c, s, 100, 0, f(true, false, false), b""),
        tcp_frame(s, c, 500, 101, f(true, true, false), b""),
        tcp_frame(c, s, 101, 501, f(false, true, false), b""),
        tcp_frame(s, c, 501, 101, f(false, true, false), b"RFB 003.008\n"),
        tcp_frame(c, s, 101, 513, f(false, true, false), b"RFB 003.008\n"),
        tcp_frame(c, s, 113, 513, f(false, true, true), b""),
        tcp_frame(s, c, 513, 114, f(false, true, true), b""),
        tcp_frame(c, s, 114, 514, f(false, true, false), b""),
    ];
    frames
        .into_iter()
        .enumerate()
        // Sub-microsecond parts vanish; keep whole microseconds.
        .map(|(i, fr)| {
            (
                Micros(1_700_000_000_000_000 + i as u64 * 1_250_001),
                fr[14..].to_vec(),
            )
        })
        .collect()
}

fn ether(ip: &[u8]) -> Vec<u8> {
    let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    v.extend_from_slice(ip);
    v
}

fn table(bytes: &[u8]) -> FlowTable {
    flow_table(bytes, "test", FlowConfig::default()).expect("readable capture")
}

fn assert_conversation(t: &FlowTable, ctx: &str) {
    assert_eq!(t.rows.len(), 1, "{ctx}: {:?}", t.diagnostics);
    let r = &t.rows[0];
    assert_eq!(r.client, CLIENT, "{ctx}");
    assert_eq!(r.server, SERVER, "{ctx}");
    assert_eq!((r.bytes_c2s, r.bytes_s2c), (12, 12), "{ctx}");
    assert_eq!((r.segments_c2s, r.segments_s2c), (5, 3), "{ctx}");
    assert_eq!(r.end, EndKind::Fin, "{ctx}");
    assert_eq!(r.closed_by, Some("client"), "{ctx}");
    assert_eq!(r.protocol.as_str(), "rfb", "{ctx}");
    assert!(
        (r.start_abs - 1_700_000_000.0).abs() < 1e-6,
        "{ctx}: start {}",
        r.start_abs
    );
    assert!(
        (r.duration - 7.0 * 1.250001).abs() < 1e-6,
        "{ctx}: duration {}",
        r.duration
    );
    assert!(t.diagnostics.is_empty(), "{ctx}: {:?}", t.diagnostics);
}

#[test]
fn classic_pcap_in_both_byte_orders_and_resolutions() {
    for big_endian in [false, true] {
        for nanos in [false, true] {
            let mut w = PcapWriter::new(Vec::new(), 1, big_endian, nanos).unwrap();
            for (ts, ip) in conversation() {
                w.write_packet(ts, &ether(&ip)).unwrap();
            }
            let bytes = w.into_inner();
            let ctx = format!("pcap be={big_endian} ns={nanos}");
            assert_conversation(&table(&bytes), &ctx);
        }
    }
}

#[test]
fn pcapng_sections_interfaces_and_resolutions() {
    for big_endian in [false, true] {
        for tsresol in [None, Some(6), Some(9), Some(0x80 | 20)] {
            let mut w = PcapNgWriter::new(Vec::new(), big_endian).unwrap();
            // Two interfaces of different link types; packets alternate.
            let eth = w.interface(1, tsresol).unwrap();
            let raw = w.interface(101, Some(9)).unwrap();
            for (i, (ts, ip)) in conversation().into_iter().enumerate() {
                if i % 2 == 0 {
                    w.enhanced_packet(eth, ts, &ether(&ip)).unwrap();
                } else {
                    w.enhanced_packet(raw, ts, &ip).unwrap();
                }
            }
            let bytes = w.into_inner();
            let ctx = format!("pcapng be={big_endian} tsresol={tsresol:?}");
            let t = table(&bytes);
            if tsresol == Some(0x80 | 20) {
                // 2^-20 s ticks cannot hold every microsecond exactly.
                assert_eq!(t.rows.len(), 1, "{ctx}");
                assert!(
                    (t.rows[0].duration - 7.0 * 1.250001).abs() < 3e-6,
                    "{ctx}: {}",
                    t.rows[0].duration
                );
            } else {
                assert_conversation(&t, &ctx);
            }
        }
    }
}

#[test]
fn a_second_section_starts_its_interfaces_over() {
    let conv = conversation();
    let mut w = PcapNgWriter::new(Vec::new(), false).unwrap();
    let raw = w.interface(101, None).unwrap();
    for (ts, ip) in &conv[..4] {
        w.enhanced_packet(raw, *ts, ip).unwrap();
    }
    w.section().unwrap();
    // In the new section interface 0 is Ethernet with nanosecond stamps.
    let eth = w.interface(1, Some(9)).unwrap();
    for (ts, ip) in &conv[4..] {
        w.enhanced_packet(eth, *ts, &ether(ip)).unwrap();
    }
    assert_conversation(&table(&w.into_inner()), "two sections");
}

#[test]
fn simple_packet_blocks_use_interface_zero() {
    let mut w = PcapNgWriter::new(Vec::new(), false).unwrap();
    let eth = w.interface(1, None).unwrap();
    let conv = conversation();
    w.enhanced_packet(eth, conv[0].0, &ether(&conv[0].1))
        .unwrap();
    for (_, ip) in &conv[1..] {
        w.simple_packet(&ether(ip)).unwrap();
    }
    let t = table(&w.into_inner());
    assert_eq!(t.rows.len(), 1);
    assert_eq!(t.rows[0].bytes_c2s, 12);
    assert_eq!(t.rows[0].segments, 8);
    // No timestamps in simple packets: they keep the last one seen.
    assert_eq!(t.rows[0].duration, 0.0);
}

fn link_frames(linktype: u32, wrap: impl Fn(&[u8]) -> Vec<u8>) -> FlowTable {
    let mut w = PcapWriter::new(Vec::new(), linktype, false, false).unwrap();
    for (ts, ip) in conversation() {
        w.write_packet(ts, &wrap(&ip)).unwrap();
    }
    table(&w.into_inner())
}

#[test]
fn every_supported_link_type() {
    // 802.1Q tagged Ethernet.
    let vlan = link_frames(1, |ip| {
        let mut v = vec![
            2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0x00, 0x2a, 0x08, 0x00,
        ];
        v.extend_from_slice(ip);
        v
    });
    assert_conversation(&vlan, "vlan");
    // Linux cooked capture v1: 16-byte header, protocol last.
    let sll = link_frames(113, |ip| {
        let mut v = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
        v.extend_from_slice(ip);
        v
    });
    assert_conversation(&sll, "sll");
    // SLL2: protocol first, 20-byte header.
    let sll2 = link_frames(276, |ip| {
        let mut v = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
        ];
        v.extend_from_slice(ip);
        v
    });
    assert_conversation(&sll2, "sll2");
    // BSD Null (host order) and OpenBSD loop (network order).
    let null = link_frames(0, |ip| {
        let mut v = 2u32.to_le_bytes().to_vec();
        v.extend_from_slice(ip);
        v
    });
    assert_conversation(&null, "null");
    let lo = link_frames(108, |ip| {
        let mut v = 2u32.to_be_bytes().to_vec();
        v.extend_from_slice(ip);
        v
    });
    assert_conversation(&lo, "loop");
    assert_conversation(&link_frames(101, |ip| ip.to_vec()), "raw");
    assert_conversation(&link_frames(228, |ip| ip.to_vec()), "ipv4");
}

/// An IPv6 packet with a hop-by-hop and a destination-options header in
/// front of TCP (checksum left zero: tether does not check it).
fn ipv6_with_extensions(
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    seq: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&sport.to_be_bytes());
    tcp.extend_from_slice(&dport.to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&0u32.to_be_bytes());
    tcp.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    tcp.extend_from_slice(payload);
    let ext_len = 16;
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&((ext_len + tcp.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 64]); // next header: hop-by-hop
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]); // HBH → destination options, PadN
    v.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]); // dest opts → TCP
    v.extend_from_slice(&tcp);
    v
}

#[test]
fn ipv6_extension_headers_are_walked() {
    let a = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let b = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    let mut w = PcapWriter::new(Vec::new(), 229, false, false).unwrap();
    w.write_packet(
        Micros(1),
        &ipv6_with_extensions(a, b, 40000, 443, 7, 0x02, b""),
    )
    .unwrap();
    w.write_packet(
        Micros(2),
        &ipv6_with_extensions(a, b, 40000, 443, 8, 0x18, b"\x16\x03\x01\x00\x05hello"),
    )
    .unwrap();
    let t = table(&w.into_inner());
    assert_eq!(t.rows.len(), 1, "{:?}", t.diagnostics);
    assert_eq!(t.rows[0].client, "[fd00::1]:40000");
    assert_eq!(t.rows[0].bytes_c2s, 10);
    assert_eq!(t.rows[0].protocol.as_str(), "tls");
}

#[test]
fn fragments_and_other_traffic_are_counted_and_skipped() {
    let conv = conversation();
    let mut w = PcapWriter::new(Vec::new(), 101, false, false).unwrap();
    // A UDP datagram.
    let mut udp = Vec::new();
    etherparse::PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
        .udp(53, 53)
        .write(&mut udp, b"dns")
        .unwrap();
    w.write_packet(Micros(10), &udp).unwrap();
    // The first TCP packet again, marked as a first fragment (MF set).
    let mut frag = conv[3].1.clone();
    frag[6] |= 0x20;
    w.write_packet(Micros(11), &frag).unwrap();
    frag[6] = 0x20;
    w.write_packet(Micros(12), &frag).unwrap();
    for (ts, ip) in &conv {
        w.write_packet(*ts, ip).unwrap();
    }
    let t = table(&w.into_inner());
    assert_eq!(t.stats.not_tcp, 1);
    assert_eq!(t.stats.ip_fragments, 2);
    assert_eq!(t.rows.len(), 1);
    assert_eq!(t.rows[0].bytes_s2c, 12);
    let codes: Vec<_> = t.diagnostics.iter().map(|d| d.code.as_ref()).collect();
    assert_eq!(codes, ["capture.ip_fragment"]);
    assert_eq!(t.diagnostics[0].location.frame, Some(2));
}

fn conversation_pcap() -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), 1, false, false).unwrap();
    for (ts, ip) in conversation() {
        w.write_packet(ts, &ether(&ip)).unwrap();
    }
    w.into_inner()
}

#[test]
fn truncated_final_record_keeps_everything_before_it() {
    let full = conversation_pcap();
    let cut = &full[..full.len() - 10];
    let t = table(cut);
    assert_eq!(t.stats.frames, 7);
    assert_eq!(t.rows[0].bytes_c2s, 12);
    assert_eq!(t.diagnostics.len(), 1, "{:?}", t.diagnostics);
    let d = &t.diagnostics[0];
    assert_eq!(d.code, "capture.truncated_record");
    assert_eq!(d.location.frame, Some(8));
    // Record 8 starts after the file header and seven records.
    let rec_len = |ip: &Vec<u8>| 16 + 14 + ip.len() as u64;
    let expected: u64 = 24
        + conversation()[..7]
            .iter()
            .map(|(_, ip)| rec_len(ip))
            .sum::<u64>();
    assert_eq!(d.location.file_offset, Some(expected));
}

#[test]
fn corrupt_record_header_is_skipped_and_reading_resumes() {
    let mut bytes = conversation_pcap();
    let conv = conversation();
    // Corrupt the captured length of record 3.
    let off = 24
        + conv[..2]
            .iter()
            .map(|(_, ip)| 16 + 14 + ip.len())
            .sum::<usize>();
    bytes[off + 8..off + 12].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    let t = table(&bytes);
    let codes: Vec<_> = t.diagnostics.iter().map(|d| d.code.as_ref()).collect();
    assert_eq!(
        codes,
        ["capture.corrupt_record_header", "capture.resynchronised"]
    );
    assert_eq!(t.diagnostics[0].location.file_offset, Some(off as u64));
    assert_eq!(t.diagnostics[0].location.frame, Some(3));
    // Record 3 (a bare ACK) is lost; all data and both FINs survive.
    assert_eq!(t.stats.frames, 7);
    assert_eq!(t.rows[0].bytes_c2s, 12);
    assert_eq!(t.rows[0].bytes_s2c, 12);
    assert_eq!(t.rows[0].end, EndKind::Fin);
}

#[test]
fn unknown_link_type_and_bad_magic() {
    let mut w = PcapWriter::new(Vec::new(), 147, false, false).unwrap();
    w.write_packet(Micros(1), b"opaque").unwrap();
    w.write_packet(Micros(2), b"opaque").unwrap();
    let t = table(&w.into_inner());
    assert_eq!(t.rows.len(), 0);
    assert_eq!(t.stats.unknown_link_types.get(&147), Some(&2));
    assert_eq!(t.diagnostics.len(), 1);
    assert_eq!(t.diagnostics[0].code, "capture.unknown_link_type");

    let err = flow_table(
        &b"PK\x03\x04not a capture at all"[..],
        "x.zip",
        FlowConfig::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("not a pcap or pcapng file (first bytes 50 4b 03 04)"),
        "{err}"
    );
    let err = flow_table(&b""[..], "empty", FlowConfig::default()).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
}
