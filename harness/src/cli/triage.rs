//! `tether triage FILE`: what ended the session in a capture or bug-report
//! zip, with evidence, the client's conformance, and what-if re-runs.

use super::input;
use crate::triage::{TriageOptions, render, svg, triage_reader};
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// A pcap, pcapng or ryll bug-report zip; `-` reads a capture from stdin.
    pub file: String,
    /// Client profile as NAME@VARIANT (default: detected from the capture).
    #[arg(long)]
    pub profile: Option<String>,
    /// Override a profile constant for conformance and what-if, e.g.
    /// `--set renewal_interval=150s`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Draw the primary session as per-channel swimlanes to this SVG file.
    #[arg(long, value_name = "OUT")]
    pub svg: Option<String>,
    /// Write the environment extracted from the primary session as a
    /// synthetic timeline (TOML) for `tether run`.
    #[arg(long, value_name = "OUT")]
    pub extract: Option<String>,
    /// Skip the what-if runs.
    #[arg(long)]
    pub no_what_if: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn run(args: Args) -> ExitCode {
    let options = TriageOptions {
        profile: args.profile.clone(),
        overrides: args.set.clone(),
        no_what_if: args.no_what_if,
    };
    if let Some(p) = &args.profile
        && let Err(e) = crate::model::profile::resolve(p).map(|_| ()).or_else(|e| {
            crate::model::profiles::resolve(p)
                .map(|r| r.map(|_| ()))
                .unwrap_or(Err(e))
        })
    {
        eprintln!("error: --profile: {e}");
        return ExitCode::from(2);
    }
    let name = input::display_name(&args.file).to_string();
    let zip = input::is_zip(&args.file);
    let tr = match input::open(&args.file)
        .map_err(|e| format!("{name}: {e}"))
        .and_then(|r| triage_reader(r, &name, zip, &options))
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let primary = tr.primary.map(|i| &tr.sessions[i]);
    if let Some(out) = &args.svg {
        let Some(st) = primary else {
            eprintln!("error: --svg: no session in {name}");
            return ExitCode::from(2);
        };
        if let Err(e) = std::fs::write(out, svg::render(st, &name)) {
            eprintln!("error: {out}: {e}");
            return ExitCode::from(2);
        }
    }
    if let Some(out) = &args.extract {
        let Some(tl) = primary.and_then(|st| st.environment.as_ref()) else {
            eprintln!("error: --extract: no session in {name}");
            return ExitCode::from(2);
        };
        let text = match toml::to_string(tl) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: --extract: {e}");
                return ExitCode::from(2);
            }
        };
        if let Err(e) = std::fs::write(out, text) {
            eprintln!("error: {out}: {e}");
            return ExitCode::from(2);
        }
    }
    let body = match args.format {
        Format::Text => render::text(&tr),
        Format::Json => match serde_json::to_string_pretty(&tr) {
            Ok(j) => j + "\n",
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(body.as_bytes())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
