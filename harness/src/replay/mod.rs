//! What sits above triage and the model: scoring triage against the lab's
//! ground truth. (Replay specs, goldens, bisect and sweep still live in
//! `model::replay` and `sweep`; DESIGN.md moves them here.)

pub mod score;
