//! JSON Schemas of the commands' `--format json` output, generated from the
//! very types that are serialised, so they cannot drift from the output.
//! The committed copies in `schemas/` are checked against these by a test.

/// A command whose JSON output has a schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Flows,
    Decode,
    Triage,
    Score,
    Run,
    /// `replay --format json` and `merge` of replay shards.
    Replay,
    /// `sweep --format json` and `merge` of sweep shards.
    Sweep,
    Bisect,
    /// The verdict `proxy --json FILE` writes.
    Proxy,
}

impl Output {
    pub const ALL: [Output; 9] = [
        Output::Flows,
        Output::Decode,
        Output::Triage,
        Output::Score,
        Output::Run,
        Output::Replay,
        Output::Sweep,
        Output::Bisect,
        Output::Proxy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Output::Flows => "flows",
            Output::Decode => "decode",
            Output::Triage => "triage",
            Output::Score => "score",
            Output::Run => "run",
            Output::Replay => "replay",
            Output::Sweep => "sweep",
            Output::Bisect => "bisect",
            Output::Proxy => "proxy",
        }
    }
}

/// The schema of `command`'s JSON output, pretty-printed: the contract of
/// what is written (a field skipped when empty is not required).
pub fn json(command: Output) -> String {
    fn of<T: schemars::JsonSchema + ?Sized>() -> schemars::Schema {
        schemars::generate::SchemaSettings::draft2020_12()
            .for_serialize()
            .into_generator()
            .into_root_schema_for::<T>()
    }
    let schema = match command {
        Output::Flows => of::<Vec<super::flows::FileRow<'static>>>(),
        Output::Decode => of::<super::decode::DecodeOutput>(),
        Output::Triage => of::<Vec<crate::triage::Triage>>(),
        Output::Score => of::<crate::replay::score::Score>(),
        Output::Run => of::<crate::verdict::Verdict>(),
        Output::Replay => of::<super::replay::ReplayOutput<'static>>(),
        Output::Sweep => of::<crate::replay::sweep::SweepReport>(),
        Output::Bisect => of::<crate::replay::sweep::BisectReport>(),
        Output::Proxy => of::<crate::live::monitor::LiveVerdict>(),
    };
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}
