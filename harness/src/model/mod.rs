//! The virtual-clock model: simulation loop, environment actors, client profiles.

pub mod client;
pub mod clock;
pub mod constants;
pub mod duration;
pub mod env;
pub mod net;
pub mod profile;
pub mod profiles;
pub mod registry;
pub mod sim;
pub mod size;
