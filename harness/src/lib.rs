//! tether: protocol conformance and replay harness for long-lived
//! remote-display and terminal sessions (SPICE, RFB/VNC, WebSocket).
//!
//! The modules follow the data flow in DESIGN.md:
//! `capture` → `flow` → `decode` → `timeline` → `model` → `verdict`,
//! with `cli` as the thin shell around them.

pub mod capture;
pub mod cli;
pub mod decode;
pub mod flow;
pub mod live;
pub mod model;
pub mod replay;
pub mod timeline;
pub mod triage;
pub mod verdict;
