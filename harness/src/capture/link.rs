//! From a link-layer frame to a TCP segment: Ethernet (with VLAN tags),
//! Linux cooked SLL and SLL2, BSD loopback/Null, raw IPv4/IPv6.

use super::reader::RawPacket;
use crate::timeline::Micros;
use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};
use std::net::{IpAddr, SocketAddr};

pub mod linktype {
    pub const NULL: i32 = 0;
    pub const ETHERNET: i32 = 1;
    pub const RAW_OPENBSD: i32 = 12;
    pub const RAW: i32 = 101;
    pub const LOOP: i32 = 108;
    pub const LINUX_SLL: i32 = 113;
    pub const IPV4: i32 = 228;
    pub const IPV6: i32 = 229;
    pub const LINUX_SLL2: i32 = 276;
}

/// A TCP segment as captured. `payload` may be shorter than what was sent
/// when the capture snapped the frame; `missing_tail` says by how much.
#[derive(Debug, Clone, Copy)]
pub struct TcpSegment<'a> {
    pub frame: u64,
    pub ts: Micros,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub syn: bool,
    pub ack_flag: bool,
    pub fin: bool,
    pub rst: bool,
    pub payload: &'a [u8],
    pub missing_tail: u32,
    /// The advertised receive window (unscaled; zero is what matters).
    pub window: u16,
    /// Bytes of the frame on the wire, as tshark's conversation table counts.
    pub wire_len: u32,
}

/// Why a frame did not yield a TCP segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Not TCP (UDP, ICMP, ARP, ...): counted, not reported one by one.
    NotTcp,
    /// An IP fragment: tether does not reassemble IP.
    Fragment,
    UnknownLinkType(i32),
    /// The headers do not parse; the reason names the layer.
    Malformed(String),
}

pub fn tcp_segment<'a>(p: &RawPacket<'a>) -> Result<TcpSegment<'a>, Skip> {
    let sliced = slice_link(p.linktype, p.data)?;
    if let Some((err, layer)) = &sliced.stop_err
        && sliced.transport.is_none()
    {
        // Anything short of a TCP header is malformed only if it was TCP.
        let is_tcp = sliced
            .net
            .as_ref()
            .map(|n| ip_number(n) == Some(etherparse::IpNumber::TCP))
            .unwrap_or(false);
        if is_tcp || sliced.net.is_none() {
            return Err(Skip::Malformed(format!("{layer:?}: {err}")));
        }
    }
    let Some(net) = &sliced.net else {
        return Err(Skip::NotTcp);
    };
    let (src_ip, dst_ip, fragmented): (IpAddr, IpAddr, bool) = match net {
        LaxNetSlice::Ipv4(v4) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
            v4.payload().fragmented,
        ),
        LaxNetSlice::Ipv6(v6) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
            v6.payload().fragmented,
        ),
    };
    if fragmented {
        return Err(if ip_number(net) == Some(etherparse::IpNumber::TCP) {
            Skip::Fragment
        } else {
            Skip::NotTcp
        });
    }
    let Some(TransportSlice::Tcp(tcp)) = &sliced.transport else {
        return Err(Skip::NotTcp);
    };
    let missing_tail = p.orig_len.saturating_sub(p.data.len() as u32);
    Ok(TcpSegment {
        frame: p.frame,
        ts: p.ts,
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        syn: tcp.syn(),
        ack_flag: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        payload: tcp.payload(),
        missing_tail,
        window: tcp.window_size(),
        wire_len: p.orig_len,
    })
}

fn ip_number(net: &LaxNetSlice<'_>) -> Option<etherparse::IpNumber> {
    match net {
        LaxNetSlice::Ipv4(v4) => Some(v4.payload().ip_number),
        LaxNetSlice::Ipv6(v6) => Some(v6.payload().ip_number),
    }
}

fn malformed(layer: &str, data: &[u8], need: usize) -> Skip {
    Skip::Malformed(format!(
        "{layer} header needs {need} bytes, frame has {}",
        data.len()
    ))
}

fn slice_link(linktype: i32, data: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    match linktype {
        linktype::ETHERNET => LaxSlicedPacket::from_ethernet(data)
            .map_err(|e| Skip::Malformed(format!("ethernet: {e}"))),
        linktype::RAW | linktype::RAW_OPENBSD | linktype::IPV4 | linktype::IPV6 => from_ip(data),
        linktype::NULL | linktype::LOOP => {
            if data.len() < 4 {
                return Err(malformed("loopback", data, 4));
            }
            // The family is in the writer's byte order for NULL and network
            // order for LOOP; IPv4 is 2 everywhere, IPv6 24, 28 or 30.
            let le = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            let be = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            let family = if le < 256 { le } else { be };
            match family {
                2 | 24 | 28 | 30 => from_ip(&data[4..]),
                _ => Err(Skip::NotTcp),
            }
        }
        linktype::LINUX_SLL => {
            if data.len() < 16 {
                return Err(malformed("linux sll", data, 16));
            }
            let proto = u16::from_be_bytes([data[14], data[15]]);
            Ok(LaxSlicedPacket::from_ether_type(
                EtherType(proto),
                &data[16..],
            ))
        }
        linktype::LINUX_SLL2 => {
            if data.len() < 20 {
                return Err(malformed("linux sll2", data, 20));
            }
            let proto = u16::from_be_bytes([data[0], data[1]]);
            Ok(LaxSlicedPacket::from_ether_type(
                EtherType(proto),
                &data[20..],
            ))
        }
        other => Err(Skip::UnknownLinkType(other)),
    }
}

fn from_ip(data: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    LaxSlicedPacket::from_ip(data).map_err(|e| Skip::Malformed(format!("ip: {e}")))
}
