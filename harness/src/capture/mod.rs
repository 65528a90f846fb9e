//! Capture readers: pcap, pcapng, link layers, bug-report zips.
//!
//! [`Segments`] walks a capture record by record and hands each TCP
//! segment to the caller, counting and reporting everything it skips.

pub mod bugreport;
pub mod findings;
pub mod generate;
pub mod link;
pub mod reader;
pub mod writer;

pub use link::{Skip, TcpSegment};
pub use reader::{CaptureError, CaptureReader, Format, RawPacket};

use crate::capture::findings::CaptureFinding;
use crate::timeline::kinds::FindingKind;
use crate::timeline::{Finding, Location, Micros};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;

/// What a pass over a capture skipped, for the summary line.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct CaptureStats {
    pub frames: u64,
    pub tcp_segments: u64,
    pub not_tcp: u64,
    pub ip_fragments: u64,
    pub malformed: u64,
    /// Frames of link types tether cannot read, by link type number.
    pub unknown_link_types: BTreeMap<i32, u64>,
}

/// Reads every TCP segment of a capture, in file order.
pub struct Segments<R: Read> {
    reader: CaptureReader<R>,
    name: String,
    pub stats: CaptureStats,
    /// Diagnostics so far. Per-frame skips of non-TCP traffic are counted
    /// in `stats`, not listed; the first of each kind is listed.
    pub diagnostics: Vec<Finding>,
    /// The first frame's timestamp, of any kind: every time tether writes
    /// counts from it, as Wireshark's "seconds since beginning of capture".
    pub first_ts: Option<Micros>,
    reported_fragment: bool,
}

impl<R: Read> Segments<R> {
    pub fn new(src: R, name: &str) -> Result<Segments<R>, CaptureError> {
        Ok(Segments {
            reader: CaptureReader::new(src, name)?,
            name: name.to_string(),
            stats: CaptureStats::default(),
            diagnostics: Vec::new(),
            first_ts: None,
            reported_fragment: false,
        })
    }

    pub fn format(&self) -> Format {
        self.reader.format()
    }

    /// TLS key logs from the capture's Decryption Secrets Blocks read so far.
    pub fn take_secrets(&mut self) -> Vec<Vec<u8>> {
        self.reader.take_secrets()
    }

    /// The next frame: a TCP segment, or `Frame::Skipped` for anything
    /// else (counted and reported here); `None` at the end of the capture.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        {
            let packet = self.reader.next_packet(&mut self.diagnostics)?;
            self.stats.frames += 1;
            self.first_ts.get_or_insert(packet.ts);
            match link::tcp_segment(&packet) {
                Ok(seg) => {
                    self.stats.tcp_segments += 1;
                    Some(Frame::Tcp(seg))
                }
                Err(skip) => {
                    let loc = Location {
                        file: Some(self.name.clone()),
                        frame: Some(packet.frame),
                        file_offset: Some(packet.file_offset),
                        ..Location::default()
                    };
                    match skip {
                        Skip::NotTcp => self.stats.not_tcp += 1,
                        Skip::Fragment => {
                            self.stats.ip_fragments += 1;
                            if !self.reported_fragment {
                                self.reported_fragment = true;
                                self.diagnostics.push(CaptureFinding::IpFragment.at("IP fragments are not reassembled; this and later fragments are skipped (see the count)",
                                    loc,
                                ));
                            }
                        }
                        Skip::UnknownLinkType(lt) => {
                            let n = self.stats.unknown_link_types.entry(lt).or_insert(0);
                            *n += 1;
                            if *n == 1 {
                                self.diagnostics.push(CaptureFinding::UnknownLinkType.at(
                                    format!(
                                        "link type {lt} is not supported; its frames are skipped"
                                    ),
                                    loc,
                                ));
                            }
                        }
                        Skip::Malformed(why) => {
                            self.stats.malformed += 1;
                            self.diagnostics
                                .push(CaptureFinding::MalformedFrame.at(why, loc));
                        }
                    }
                    Some(Frame::Skipped)
                }
            }
        }
    }
}

/// One frame of a capture as [`Segments`] sees it.
pub enum Frame<'a> {
    Tcp(TcpSegment<'a>),
    Skipped,
}
