//! Client-side building blocks every profile composes, and the sans-IO
//! SPICE client built from them.
//!
//! Building blocks: [`LivenessDeadline`] (give up on a silent peer),
//! [`IdleKeepalive`] (send something on a channel idle both ways),
//! [`Reconnect`] (backoff schedule, attempt budget, cluster window,
//! conditions that forbid retry), [`LeaseRenewal`] (renewal timer with a
//! generation guard). User activity reaches a client as `handle_user_*`.

pub mod lease;
pub mod liveness;
pub mod reconnect;
pub mod spice;

pub use lease::LeaseRenewal;
pub use liveness::{IdleKeepalive, LivenessDeadline};
pub use reconnect::{Reconnect, ReconnectDecision, ReconnectPolicy};
pub use spice::*;
