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
pub use parallel::decode_capture_parallel;
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
    mut options: DecodeOptions,
) -> Result<DecodeReport, CaptureError> {
    let mut segments = Segments::new(src, file)?;
    let mut reassembler = Reassembler::new(options.flow);
    let keys = key_store(&mut options);
    let mut decoder = Decoder::new(file, options);
    while let Some(frame) = next_frame(&mut segments, &keys) {
        if let Frame::Tcp(seg) = frame {
            reassembler.segment(&seg, &mut decoder);
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
