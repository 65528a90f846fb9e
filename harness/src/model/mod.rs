//! The virtual-clock model: simulation loop, environment actors, client profiles.
