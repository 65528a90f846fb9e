//! The parallel router: the reading thread reassembles and hands each
//! connection's events, batched, to the worker that owns it.

use super::{
    ConnectionReport, DecodeOptions, DecodeReport, Decoder, assemble_report, decode_capture,
    key_store, next_frame,
};
use crate::capture::{CaptureError, Frame, Segments};
use crate::flow::{FlowEvent, FlowEventOf, FlowSink, Reassembler};
use crate::timeline::Finding;
use std::io::Read;

/// A flow event that owns its bytes, to cross to a worker thread.
type OwnedFlowEvent = FlowEventOf<Vec<u8>>;

/// Feeds an owned event to a sink as the reassembler would have.
fn replay(event: OwnedFlowEvent, sink: &mut dyn FlowSink) {
    let mut bytes = Vec::new();
    let event = event.map_bytes(|b| bytes = b);
    sink.flow_event(event.map_bytes(|()| &bytes[..]));
}

/// Bytes batched per worker before they are handed over.
const BATCH_BYTES: usize = 256 * 1024;

/// Routes each connection's events to one worker, in batches.
struct Router {
    senders: Vec<std::sync::mpsc::SyncSender<Vec<OwnedFlowEvent>>>,
    batches: Vec<Vec<OwnedFlowEvent>>,
    batch_bytes: Vec<usize>,
    diagnostics: Vec<Finding>,
}

impl Router {
    fn flush(&mut self, w: usize) {
        if !self.batches[w].is_empty() {
            let batch = std::mem::take(&mut self.batches[w]);
            self.batch_bytes[w] = 0;
            // A worker only goes away if it panicked; its report is lost either way.
            let _ = self.senders[w].send(batch);
        }
    }
}

impl FlowSink for Router {
    fn flow_event(&mut self, event: FlowEvent<'_>) {
        let owned = event.map_bytes(<[u8]>::to_vec);
        let Some(conn) = owned.conn() else {
            if let OwnedFlowEvent::Diagnostic(f) = owned {
                self.diagnostics.push(f);
            }
            return;
        };
        let w = conn.0 as usize % self.senders.len();
        if let OwnedFlowEvent::Data { bytes, .. } = &owned {
            self.batch_bytes[w] += bytes.len();
        }
        self.batch_bytes[w] += 64;
        self.batches[w].push(owned);
        if self.batch_bytes[w] >= BATCH_BYTES {
            self.flush(w);
        }
    }
}

/// Like [`decode_capture`], with connections decoded on `threads` workers
/// while this thread reads and reassembles. The report is identical to the
/// single-threaded one: each connection is decoded by one worker in
/// capture order, and reports are merged by connection number.
pub fn decode_capture_parallel<R: Read>(
    src: R,
    file: &str,
    mut options: DecodeOptions,
    threads: usize,
) -> Result<DecodeReport, CaptureError> {
    if threads <= 1 {
        return decode_capture(src, file, options);
    }
    let keys = key_store(&mut options);
    let mut segments = Segments::new(src, file)?;
    let mut reassembler = Reassembler::new(options.flow);
    let mut receivers = Vec::new();
    let mut router = Router {
        senders: Vec::new(),
        batches: Vec::new(),
        batch_bytes: Vec::new(),
        diagnostics: Vec::new(),
    };
    for _ in 0..threads {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<OwnedFlowEvent>>(4);
        router.senders.push(tx);
        router.batches.push(Vec::new());
        router.batch_bytes.push(0);
        receivers.push(rx);
    }
    let mut results: Vec<(Vec<ConnectionReport>, Vec<Finding>)> = Vec::new();
    // Scoped threads: the reader stays on this thread (it need not be Send).
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        for rx in receivers {
            let done_tx = done_tx.clone();
            let file = file.to_string();
            let options = options.clone();
            scope.spawn(move || {
                let mut decoder = Decoder::new(&file, options);
                while let Ok(batch) = rx.recv() {
                    for e in batch {
                        replay(e, &mut decoder);
                    }
                }
                let _ = done_tx.send(decoder.finish());
            });
        }
        drop(done_tx);
        while let Some(frame) = next_frame(&mut segments, &keys) {
            if let Frame::Tcp(seg) = frame {
                reassembler.segment(&seg, &mut router);
            }
        }
        reassembler.finish(&mut router);
        for w in 0..threads {
            router.flush(w);
        }
        router.senders.clear();
        results.extend(done_rx.iter());
    });
    let mut connections = Vec::new();
    let mut diagnostics = std::mem::take(&mut router.diagnostics);
    for (mut conns, mut diags) in results {
        connections.append(&mut conns);
        diagnostics.append(&mut diags);
    }
    connections.sort_by_key(|c| c.connection);
    Ok(assemble_report(
        file,
        segments,
        reassembler,
        connections,
        diagnostics,
    ))
}
