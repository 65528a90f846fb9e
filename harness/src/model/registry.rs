//! One registry over every profile: the SPICE clients the simulation's
//! actors build (`PROFILES`) and the profiles of `profiles/`.
//! Every caller resolves `name@variant`, lists variants and builds
//! constants here, so no caller tries one table and then the other.

use super::constants::Constants;
use super::profile::{Profile, Variant};
use super::profiles::OtherProfile;
use super::profiles::ryll::RYLL;
use super::profiles::spice_gtk::SPICE_GTK;
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
    resolve_spice(spec).map(|(p, v)| Resolved::Spice(p, v))
}

/// The variant names of profile `name`, none when it is unknown.
pub fn variants(name: &str) -> Vec<&'static str> {
    every_profile()
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
pub fn run_timeline(
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

pub const PROFILES: &[Profile] = &[RYLL, SPICE_GTK];

/// Every profile of both registries (the SPICE one first) as (name,
/// about, variants): for listings and for checks across all profiles.
pub fn every_profile() -> impl Iterator<Item = (&'static str, &'static str, &'static [Variant])> {
    PROFILES
        .iter()
        .map(|p| (p.name, p.about, p.variants))
        .chain(
            super::profiles::OTHER_PROFILES
                .iter()
                .map(|p| (p.name, p.about, p.variants)),
        )
}

/// Looks up `name@variant` (`name` alone picks the first variant).
pub fn resolve_spice(spec: &str) -> Result<(&'static Profile, &'static Variant), String> {
    let (name, variant) = spec.split_once('@').unwrap_or((spec, ""));
    let profile = PROFILES.iter().find(|p| p.name == name).ok_or_else(|| {
        // Both registries: the caller tries the other one first.
        let known: Vec<&str> = every_profile().map(|(name, _, _)| name).collect();
        format!("unknown profile `{name}` (known: {})", known.join(", "))
    })?;
    let v = if variant.is_empty() {
        &profile.variants[0]
    } else {
        profile
            .variants
            .iter()
            .find(|v| v.name == variant)
            .ok_or_else(|| {
                let known: Vec<&str> = profile.variants.iter().map(|v| v.name).collect();
                format!(
                    "profile `{name}` has no variant `{variant}` (known: {})",
                    known.join(", ")
                )
            })?
    };
    Ok((profile, v))
}
