//! Finding kinds: one enum per layer (capture, flow, and each protocol),
//! each variant with its code, severity, what it means and the rule it
//! rests on. The code strings are part of the output contract; the README's
//! list of findings is generated from [`all`] by a test, so it cannot drift
//! from what the decoders emit.

use super::{Finding, Location, Severity};

/// What every finding kind says about itself.
pub trait FindingKind: Copy {
    /// The rule's code in JSON and text (`ws.unmasked_client_frame`).
    fn code(self) -> &'static str;
    fn severity(self) -> Severity;
    /// What it means, in a line.
    fn meaning(self) -> &'static str;
    /// The specification or behaviour the rule rests on.
    fn source(self) -> &'static str;

    /// A located finding of this kind.
    fn at(self, message: impl Into<String>, location: Location) -> Finding {
        Finding::new(self.severity(), self.code(), message, location)
    }
}

/// One kind as the README lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindInfo {
    pub layer: &'static str,
    pub code: &'static str,
    pub severity: Severity,
    pub meaning: &'static str,
    pub source: &'static str,
}

/// Declares a finding-kind enum: `Variant = (code, Severity, meaning,
/// source)`. One code may have two variants where the severity differs
/// with the case (a reserved close code is an error, one past every range
/// a warning).
macro_rules! finding_kinds {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($layer:literal) {
            $( $variant:ident = ($code:literal, $sev:ident, $meaning:literal, $source:literal), )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( #[doc = $meaning] $variant, )*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub const LAYER: &'static str = $layer;
        }

        impl $crate::timeline::kinds::FindingKind for $name {
            fn code(self) -> &'static str {
                match self { $($name::$variant => $code,)* }
            }
            fn severity(self) -> $crate::timeline::Severity {
                match self { $($name::$variant => $crate::timeline::Severity::$sev,)* }
            }
            fn meaning(self) -> &'static str {
                match self { $($name::$variant => $meaning,)* }
            }
            fn source(self) -> &'static str {
                match self { $($name::$variant => $source,)* }
            }
        }
    };
}
pub(crate) use finding_kinds;

fn infos<K: FindingKind>(layer: &'static str, all: &'static [K]) -> impl Iterator<Item = KindInfo> {
    all.iter().map(move |&k| KindInfo {
        layer,
        code: k.code(),
        severity: k.severity(),
        meaning: k.meaning(),
        source: k.source(),
    })
}

/// Every finding kind, layer by layer in the data flow's order.
pub fn all() -> Vec<KindInfo> {
    use crate::capture::findings::{BugReportFinding, CaptureFinding};
    use crate::decode::rfb::findings::RfbFinding;
    use crate::decode::spice::findings::SpiceFinding;
    use crate::decode::tls::findings::TlsFinding;
    use crate::decode::ws::findings::WsFinding;
    use crate::flow::findings::FlowFinding;
    infos(CaptureFinding::LAYER, CaptureFinding::ALL)
        .chain(infos(BugReportFinding::LAYER, BugReportFinding::ALL))
        .chain(infos(FlowFinding::LAYER, FlowFinding::ALL))
        .chain(infos(TlsFinding::LAYER, TlsFinding::ALL))
        .chain(infos(WsFinding::LAYER, WsFinding::ALL))
        .chain(infos(RfbFinding::LAYER, RfbFinding::ALL))
        .chain(infos(SpiceFinding::LAYER, SpiceFinding::ALL))
        .collect()
}

/// The README's table of findings.
pub fn markdown_table() -> String {
    let mut out =
        String::from("| layer | code | severity | meaning | rests on |\n|---|---|---|---|---|\n");
    for k in all() {
        let sev = match k.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        out.push_str(&format!(
            "| {} | `{}` | {sev} | {} | {} |\n",
            k.layer, k.code, k.meaning, k.source
        ));
    }
    out
}
