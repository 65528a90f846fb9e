//! The virtual-clock model: simulation loop, environment actors, client profiles.

pub mod constants;
pub mod duration;
pub mod spice_server;
