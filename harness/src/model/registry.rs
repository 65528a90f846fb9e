//! One registry over every profile: the SPICE clients the simulation's
//! actors build (`profile::PROFILES`) and the profiles of `profiles/`.
//! Every caller resolves `name@variant`, lists variants and builds
//! constants here, so no caller tries one table and then the other.

use super::constants::Constants;
use super::profile::{Profile, Variant};
use super::profiles::OtherProfile;
use crate::timeline::synthetic::Timeline;
use crate::verdict::Verdict;

/// A profile and one of its variants.
#[derive(Clone, Copy)]
pub enum Resolved {
    Spice(&'static Profile, &'static Variant),
    Other(&'static OtherProfile, &'static Variant),
}

/// Looks up `name@variant` (`name` alone picks the first variant).
pub fn resolve(spec: &str) -> Result<Resolved, String> {
    if let Some(found) = super::profiles::resolve(spec) {
        return found.map(|(p, v)| Resolved::Other(p, v));
    }
    super::profile::resolve(spec).map(|(p, v)| Resolved::Spice(p, v))
}

/// The variant names of profile `name`, none when it is unknown.
pub fn variants(name: &str) -> Vec<&'static str> {
    super::profile::every_profile()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, vs)| vs.iter().map(|v| v.name).collect())
        .unwrap_or_default()
}

impl Resolved {
    pub fn variant(&self) -> &'static Variant {
        match self {
            Resolved::Spice(_, v) | Resolved::Other(_, v) => v,
        }
    }

    /// Every constant of this variant on `timeline`: the profile's
    /// defaults, then the variant's.
    pub fn constants(&self, timeline: &Timeline) -> Constants {
        match *self {
            Resolved::Spice(p, v) => super::sim::constants_for(p, v, timeline),
            Resolved::Other(p, v) => super::profiles::constants_for(p, v, timeline),
        }
    }
}

/// Every constant of `spec` on `timeline`, `overrides` (`name=value`)
/// applied last.
pub fn constants(
    spec: &str,
    timeline: &Timeline,
    overrides: &[String],
) -> Result<Constants, String> {
    let mut c = resolve(spec)?.constants(timeline);
    for o in overrides {
        c.set_assignment(o)?;
    }
    Ok(c)
}

/// Runs `timeline` with `spec`'s constants, `overrides` applied.
pub fn run(
    timeline: &Timeline,
    input: &str,
    spec: &str,
    overrides: &[String],
) -> Result<Verdict, String> {
    let resolved = resolve(spec)?;
    let c = constants(spec, timeline, overrides)?;
    match resolved {
        Resolved::Spice(p, v) => super::sim::run_spice(p, v, &c, timeline, input),
        Resolved::Other(p, v) => Ok((p.run)(&c, v, timeline, input)),
    }
}
