//! What a profile is: its variants (overrides of its constants) and, for
//! a SPICE profile, a `define` function (constants with defaults and
//! sources) and a `build` function (constants → the SPICE client actor's
//! config). The profiles are in `profiles/`; `registry` lists them.

use super::client::SpiceClientConfig;
use super::constants::Constants;
use crate::timeline::synthetic::Timeline;

pub struct Variant {
    pub name: &'static str,
    pub about: &'static str,
    /// Overrides of the profile's defaults that make this variant.
    pub apply: fn(&mut Constants),
}

pub struct Profile {
    pub name: &'static str,
    pub about: &'static str,
    pub variants: &'static [Variant],
    pub define: fn(&mut Constants),
    pub build: fn(&Constants, &Timeline) -> SpiceClientConfig,
}
