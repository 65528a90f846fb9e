//! A client's liveness timers: give up on a silent peer, or send
//! something on a channel idle both ways.

use crate::model::env::spice_server::SpiceMsg;
use crate::timeline::Micros;

/// Fires `timeout` after the last byte received.
#[derive(Clone, Copy, Debug)]
pub struct LivenessDeadline {
    pub timeout: Micros,
    pub last_rx: Micros,
}

impl LivenessDeadline {
    pub fn deadline(&self) -> Micros {
        Micros(self.last_rx.0.saturating_add(self.timeout.0))
    }
}

/// Fires when a channel has been idle in both directions for `idle`.
#[derive(Clone, Copy, Debug)]
pub struct IdleKeepalive {
    pub idle: Micros,
    pub msg: SpiceMsg,
}

impl IdleKeepalive {
    pub fn deadline(&self, last_rx: Micros, last_tx: Micros) -> Micros {
        Micros(last_rx.max(last_tx).0.saturating_add(self.idle.0))
    }
}
