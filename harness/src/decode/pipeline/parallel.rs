//! The parallel router: the reading thread reassembles and hands each
//! connection's events, batched, to the worker that owns it.

use super::{
    ConnectionReport, DecodeOptions, DecodeReport, Decoder, Looks, Progress, assemble_report,
    decode_capture_streaming, key_store, look_due, next_frame,
};
use crate::capture::{CaptureError, Frame, Segments};
use crate::flow::{FlowEvent, FlowEventOf, FlowSink, Reassembler};
use crate::timeline::{Finding, Micros};
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
    options: DecodeOptions,
    threads: usize,
) -> Result<DecodeReport, CaptureError> {
    decode_capture_parallel_streaming(src, file, options, threads, None)
}

/// What a worker hands back: reports of connections let go of as it goes,
/// then everything else once its input ends.
enum WorkerOutput {
    Released(Vec<ConnectionReport>),
    Finished(Vec<ConnectionReport>, Vec<Finding>),
}

/// [`decode_capture_parallel`] that hands finished connections to `looks`
/// as [`super::decode_capture_streaming`] does. A connection's report
/// reaches a look some time after its summary (its worker may be behind
/// the reader); what a reader makes of both must not depend on when.
pub fn decode_capture_parallel_streaming<R: Read>(
    src: R,
    file: &str,
    mut options: DecodeOptions,
    threads: usize,
    mut looks: Option<Looks<'_>>,
) -> Result<DecodeReport, CaptureError> {
    if threads <= 1 {
        return decode_capture_streaming(src, file, options, looks);
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
    let streaming = looks.is_some();
    let mut connections = Vec::new();
    let mut diagnostics = Vec::new();
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
                    if streaming {
                        let done = decoder.take_done();
                        if !done.is_empty() {
                            let _ = done_tx.send(WorkerOutput::Released(done));
                        }
                    }
                }
                let (reports, diags) = decoder.finish();
                let _ = done_tx.send(WorkerOutput::Finished(reports, diags));
            });
        }
        drop(done_tx);
        let mut next_look = Micros::ZERO;
        while let Some(frame) = next_frame(&mut segments, &keys) {
            if let Frame::Tcp(seg) = frame {
                reassembler.segment(&seg, &mut router);
                if let Some((every, look)) = looks.as_mut()
                    && look_due(&mut next_look, reassembler.now(), *every)
                {
                    // Hand the workers what is batched, so that a worker
                    // holding a finished connection's last events lets it go.
                    for w in 0..threads {
                        router.flush(w);
                    }
                    let reports = done_rx
                        .try_iter()
                        .flat_map(|out| match out {
                            WorkerOutput::Released(r) => r,
                            // A worker ends only once the reader is done.
                            WorkerOutput::Finished(..) => Vec::new(),
                        })
                        .collect();
                    look(Progress {
                        now: reassembler.now(),
                        start: segments.first_ts,
                        summaries: reassembler.take_finished(),
                        reports,
                        reassembler: &reassembler,
                    });
                }
            }
        }
        reassembler.finish(&mut router);
        for w in 0..threads {
            router.flush(w);
        }
        router.senders.clear();
        for out in done_rx.iter() {
            match out {
                WorkerOutput::Released(mut r) => connections.append(&mut r),
                WorkerOutput::Finished(mut r, mut d) => {
                    connections.append(&mut r);
                    diagnostics.append(&mut d);
                }
            }
        }
    });
    let mut all_diagnostics = std::mem::take(&mut router.diagnostics);
    all_diagnostics.append(&mut diagnostics);
    connections.sort_by_key(|c| c.connection);
    Ok(assemble_report(
        file,
        segments,
        reassembler,
        connections,
        all_diagnostics,
    ))
}
