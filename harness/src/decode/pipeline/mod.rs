//! Runs a capture through reassembly, sniffing and the protocol decoders.
//!
//! Per connection: the first bytes each way are held until sniffing names
//! the protocol, then replayed into the decoder in capture order; from then
//! on bytes stream straight through. Nothing here keeps more than the
//! sniffing prefix per connection, unless the caller asks for events.
//! The stages, in the data flow's order: [`connection`] (sniff, decode,
//! count), [`parallel`] (the router to worker threads), [`flows`] (the
//! flow table) and [`report`] (what they produce).

mod connection;
mod flows;
mod parallel;
mod report;

pub use connection::Decoder;
pub use flows::{flow_table, flow_table_decoded};
pub use parallel::{decode_capture_parallel, decode_capture_parallel_streaming};
pub use report::{
    Activity, ConnectionReport, Counts, DecodeOptions, DecodeReport, EventFold, FlowRow, FlowTable,
    FoldWith, Folded,
};

use crate::capture::{CaptureError, Frame, Segments};
use crate::decode::tls::keylog::KeyStore;
use crate::flow::Reassembler;
use crate::timeline::Finding;
use std::io::Read;
use std::sync::Arc;

/// The key store a decode shares: the one given, or an empty one that
/// the capture's Decryption Secrets Blocks may fill.
fn key_store(options: &mut DecodeOptions) -> Arc<KeyStore> {
    options
        .keys
        .get_or_insert_with(|| Arc::new(KeyStore::default()))
        .clone()
}

/// The next frame, once the secrets of Decryption Secrets Blocks read so
/// far are in the store (editcap writes them before the packets; a TLS
/// connection looks its keys up at its ServerHello, frames later).
fn next_frame<'s, R: Read>(segments: &'s mut Segments<R>, keys: &KeyStore) -> Option<Frame<'s>> {
    // A block's secrets serve the frames after it.
    let from = segments.stats.frames + 1;
    for text in segments.take_secrets() {
        let mut findings = Vec::new();
        keys.add_from_frame(from, &text, "Decryption Secrets Block", &mut findings);
        segments.diagnostics.extend(findings);
    }
    segments.next_frame()
}

/// Reads, reassembles and decodes a whole capture.
pub fn decode_capture<R: Read>(
    src: R,
    file: &str,
    options: DecodeOptions,
) -> Result<DecodeReport, CaptureError> {
    decode_capture_streaming(src, file, options, None)
}

/// What a streaming decode hands its reader at each look: the connections
/// finished since the last look (a connection's summary and its report may
/// come at different looks when workers decode), and those still open.
pub struct Progress<'a> {
    /// The latest frame time read.
    pub now: crate::timeline::Micros,
    /// The capture's first frame.
    pub start: Option<crate::timeline::Micros>,
    pub summaries: Vec<crate::flow::ConnSummary>,
    pub reports: Vec<ConnectionReport>,
    pub reassembler: &'a Reassembler,
}

/// Every `every` of capture time, what a streaming decode's reader is
/// handed, and the reader.
pub type Looks<'a> = (crate::timeline::Micros, &'a mut dyn FnMut(Progress<'_>));

/// Whether a look is due at `now`, every `every` of capture time; moves
/// `next` on when it is.
fn look_due(
    next: &mut crate::timeline::Micros,
    now: crate::timeline::Micros,
    every: crate::timeline::Micros,
) -> bool {
    let due = now >= *next;
    if due {
        *next = crate::timeline::Micros(now.0.saturating_add(every.0));
    }
    due
}

/// [`decode_capture`] that hands finished connections to `looks` as it
/// reads, so that a reader of hours of clients holds only the open ones;
/// the report returned holds what was not handed over.
pub fn decode_capture_streaming<R: Read>(
    src: R,
    file: &str,
    mut options: DecodeOptions,
    mut looks: Option<Looks<'_>>,
) -> Result<DecodeReport, CaptureError> {
    let mut segments = Segments::new(src, file)?;
    let mut reassembler = Reassembler::new(options.flow);
    let keys = key_store(&mut options);
    let mut decoder = Decoder::new(file, options);
    let mut next_look = crate::timeline::Micros::ZERO;
    while let Some(frame) = next_frame(&mut segments, &keys) {
        if let Frame::Tcp(seg) = frame {
            reassembler.segment(&seg, &mut decoder);
            if let Some((every, look)) = looks.as_mut()
                && look_due(&mut next_look, reassembler.now(), *every)
            {
                look(Progress {
                    now: reassembler.now(),
                    start: segments.first_ts,
                    summaries: reassembler.take_finished(),
                    reports: decoder.take_done(),
                    reassembler: &reassembler,
                });
            }
        }
    }
    reassembler.finish(&mut decoder);
    let (connections, flow_diags) = decoder.finish();
    Ok(assemble_report(
        file,
        segments,
        reassembler,
        connections,
        flow_diags,
    ))
}

/// The report of a whole decode: the capture's own diagnostics first, then
/// those of reassembly and decoding.
fn assemble_report<R: Read>(
    file: &str,
    mut segments: Segments<R>,
    reassembler: Reassembler,
    connections: Vec<ConnectionReport>,
    mut more: Vec<Finding>,
) -> DecodeReport {
    let mut diagnostics = std::mem::take(&mut segments.diagnostics);
    diagnostics.append(&mut more);
    DecodeReport {
        file: file.to_string(),
        start: segments.first_ts,
        stats: segments.stats.clone(),
        diagnostics,
        flows: reassembler.into_summaries(),
        connections,
    }
}

/// The problems that mean an input was not fully read: in a capture a
/// truncated or corrupt record, a block or link type that could not be
/// decoded, a read error; in a bug-report zip a member that could not be
/// parsed or was refused (a hostile name, past a zip limit). (A peer's
/// protocol violation is a finding about the session, not a reading
/// failure; a zip lacking a member was still read whole.)
pub fn unread_parts(findings: &[Finding]) -> impl Iterator<Item = &Finding> {
    use crate::timeline::Severity;
    findings.iter().filter(|f| {
        (f.code.starts_with("capture.") && f.severity >= Severity::Warning)
            || ((f.code.starts_with("bugreport.") || f.code.starts_with("limit.zip"))
                && f.severity == Severity::Error)
    })
}
