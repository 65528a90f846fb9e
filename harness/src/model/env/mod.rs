//! The environment's actors the profiles compose: the SPICE server, a
//! websockify-like WebSocket proxy, a lease and token service, and a
//! sandbox host that sleeps when idle. All sans-IO: `handle_*(now, ..)`,
//! `poll_*`, `poll_timeout`. The network and load balancers are `net`.

pub mod lease;
pub mod sandbox;
pub mod spice_server;
pub mod websockify;

pub use lease::{LeaseError, LeaseService, Token};
pub use sandbox::{SandboxHost, SandboxOutput, SandboxState};
pub use websockify::{WsProxy, WsProxyOutput};
