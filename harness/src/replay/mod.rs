//! What sits above triage and the model: replay specs and their golden
//! verdicts, sweeps and bisection over a spec's constants, and scoring
//! triage against the lab's ground truth. The model below does no I/O.

pub mod score;
pub mod spec;
pub mod sweep;
