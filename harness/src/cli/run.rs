//! `tether run TIMELINE --profile NAME@VARIANT [--set NAME=VALUE]...`
//! Exit status: 0 survived, 1 any other outcome, 2 bad input.

use crate::model::registry::run_timeline;
use crate::timeline::synthetic::Timeline;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Junit,
}

#[derive(clap::Args)]
pub struct Args {
    /// Synthetic timeline (TOML).
    pub timeline: Option<PathBuf>,
    /// Client profile and variant, e.g. `spice-ryll@phase02`.
    #[arg(long)]
    pub profile: Option<String>,
    /// Override a constant, e.g. `--set connectivity_timeout=45s`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// List the profiles and their variants, or with a timeline and a
    /// profile, every constant with its default and source.
    #[arg(long)]
    pub list: bool,
}

pub fn run(args: Args) -> ExitCode {
    if args.list && (args.timeline.is_none() || args.profile.is_none()) {
        for (name, about, variants) in crate::model::registry::every_profile() {
            outln!("{name}: {about}");
            for v in variants {
                outln!("  {name}@{}: {}", v.name, v.about);
            }
        }
        return ExitCode::SUCCESS;
    }
    let (Some(path), Some(profile)) = (&args.timeline, &args.profile) else {
        eprintln!(
            "tether run: a TIMELINE and --profile NAME@VARIANT are required (--list shows profiles)"
        );
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tether run: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let name = path.display().to_string();
    let timeline = match Timeline::parse(&text, &name) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tether run: {e}");
            return ExitCode::from(2);
        }
    };
    if args.list {
        let c = match crate::model::registry::resolve(profile) {
            Ok(r) => r.constants(&timeline),
            Err(e) => {
                eprintln!("tether run: {e}");
                return ExitCode::from(2);
            }
        };
        for (k, value, source) in c.iter() {
            outln!("{k} = {value}    # {source}");
        }
        return ExitCode::SUCCESS;
    }
    let verdict = match run_timeline(&timeline, &name, profile, &args.set) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("tether run: {e}");
            return ExitCode::from(2);
        }
    };
    // A verdict that ignored part of the timeline would answer another
    // question than the one asked.
    let ignored = crate::model::profiles::unmodelled_events(&verdict);
    if !ignored.is_empty() {
        eprintln!(
            "tether run: {name}: profile {profile} cannot use {} (it does not model them); use a profile that does, or leave them out",
            ignored.join(", ")
        );
        return ExitCode::from(2);
    }
    match args.format {
        Format::Text => out!("{}", verdict.to_text()),
        Format::Json => outln!("{}", verdict.to_json()),
        Format::Junit => out!("{}", verdict.to_junit(&name)),
    }
    if verdict.outcome == crate::verdict::Outcome::Survived {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
