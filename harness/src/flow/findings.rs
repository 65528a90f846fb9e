//! TCP flow findings (`flow.*`, and the flow table's limits).

use crate::timeline::kinds::finding_kinds;

finding_kinds! {
    /// What reassembling TCP says.
    pub enum FlowFinding ("flow") {
        TooManyConnections = ("limit.connections", Error, "more connections open at once than the limit; later ones are skipped", "tether's limit (--max-connections)"),
        OutOfOrderBytes = ("limit.ooo_bytes", Warning, "more bytes held behind a hole than the limit: the hole is declared a gap", "tether's limit (--max-ooo-bytes)"),
        InconsistentOverlap = ("flow.inconsistent_overlap", Warning, "a retransmitted or overlapping segment carries other bytes; the first seen are kept", "RFC 9293 §3.10.7.4 (a receiver keeps one copy); first-seen as tshark's reassembly"),
    }
}
