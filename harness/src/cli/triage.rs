//! `tether triage FILE`: what ended the session in a capture or bug-report
//! zip, with evidence, the client's conformance, and what-if re-runs.

use super::input;
use crate::triage::{TriageOptions, render, svg, triage_reader};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Pcaps, pcapngs or ryll bug-report zips, or directories of them; `-`
    /// reads a capture from stdin.
    #[arg(required = true)]
    pub files: Vec<String>,
    /// Client profile as NAME@VARIANT (default: detected from the capture).
    #[arg(long)]
    pub profile: Option<String>,
    /// Override a profile constant for conformance and what-if, e.g.
    /// `--set renewal_interval=150s`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Draw the primary session as per-channel swimlanes to this SVG file;
    /// with --session/--client/--outcome each session asked for (numbered
    /// OUT-N.svg when several), with --summary an overview of every session.
    #[arg(long, value_name = "OUT")]
    pub svg: Option<String>,
    /// Write the environment extracted from the primary session as a
    /// synthetic timeline (TOML) for `tether run`.
    #[arg(long, value_name = "OUT")]
    pub extract: Option<String>,
    /// Skip the what-if runs.
    #[arg(long)]
    pub no_what_if: bool,
    /// Report only session N (as numbered in the text; repeat for several).
    #[arg(long = "session", value_name = "N")]
    pub sessions: Vec<usize>,
    /// Report only the sessions of this client address.
    #[arg(long, value_name = "ADDR")]
    pub client: Option<String>,
    /// Report only the sessions that ended this way: open, recovered,
    /// disconnected, dead_session or refused.
    #[arg(long, value_name = "OUTCOME", value_parser = ["open", "recovered", "disconnected", "dead_session", "refused"])]
    pub outcome: Option<String>,
    /// Only the summary: sessions counted by ending and one row each, no
    /// per-session diagnosis (a server capture's overview).
    #[arg(long)]
    pub summary: bool,
    /// Decoder threads (default: all cores). Output is identical for any
    /// number.
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub keys: super::keys::KeyArgs,
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// One triage per line, written as each input is read.
    Jsonl,
}

pub fn run(args: Args) -> ExitCode {
    let keys = match args.keys.load() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let options = TriageOptions {
        keys,
        profile: args.profile.clone(),
        overrides: args.set.clone(),
        no_what_if: args.no_what_if,
        flow: args.limits.flow(),
        messages: args.limits.messages(),
        zip: args.limits.zip(),
        selection: crate::triage::Selection {
            sessions: args.sessions.clone(),
            client: args.client.clone(),
            outcome: args.outcome.clone(),
            none: args.summary,
        },
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    };
    if let Some(p) = &args.profile
        && let Err(e) = crate::model::registry::resolve(p)
    {
        eprintln!("error: --profile: {e}");
        return ExitCode::from(2);
    }
    if let Err(e) = check_overrides(args.profile.as_deref(), &args.set) {
        eprintln!("error: --set: {e}");
        return ExitCode::from(2);
    }
    let files = match input::expand_with_zips(&args.files) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if files.len() != 1 && (args.svg.is_some() || args.extract.is_some()) {
        eprintln!("error: --svg and --extract take exactly one input");
        return ExitCode::from(2);
    }
    let mut all = Vec::new();
    let mut failed = false;
    for file in &files {
        let name = input::display_name(file).to_string();
        let zip = input::is_zip(file);
        match input::open(file)
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|r| triage_reader(r, &name, zip, &options))
        {
            Ok(t) => {
                for f in &t.unread {
                    eprintln!("error: {name}: not fully read: {f}");
                    failed = true;
                }
                if matches!(args.format, Format::Jsonl) {
                    outln!("{}", serde_json::to_string(&t).unwrap_or_default());
                }
                all.push(t)
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if let [tr] = &all[..]
        && let Err(e) = write_extras(&args, tr)
    {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let body = match args.format {
        Format::Jsonl => String::new(),
        Format::Text => all.iter().map(render::text).collect::<Vec<_>>().join("\n"),
        Format::Json => {
            // One shape for any number of inputs: an array of triages.
            let json = serde_json::to_string_pretty(&all);
            match json {
                Ok(j) => j + "\n",
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    if super::print(&body).is_err() {
        return ExitCode::from(2);
    }
    if failed {
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

/// `--svg` and `--extract` for a single input: the picture of each session
/// asked for (the primary one when none was), or with `--summary` the
/// overview of every session; the primary session's environment.
fn write_extras(args: &Args, tr: &crate::triage::Triage) -> Result<(), String> {
    let primary = tr.primary.map(|i| &tr.sessions[i]);
    if let Some(out) = &args.svg {
        if args.summary {
            let picture = svg::overview(&tr.summary, &tr.input, tr.start);
            std::fs::write(out, picture).map_err(|e| format!("{out}: {e}"))?;
        } else {
            let asked =
                !args.sessions.is_empty() || args.client.is_some() || args.outcome.is_some();
            let drawn: Vec<&crate::triage::SessionTriage> = if asked {
                tr.sessions
                    .iter()
                    .filter(|st| st.session.relay_of.is_none())
                    .collect()
            } else {
                primary.into_iter().collect()
            };
            if drawn.is_empty() {
                return Err(format!("--svg: no session in {}", tr.input));
            }
            let zip = tr.zip.as_ref().map_or(&[][..], |z| &z.per_channel);
            for st in &drawn {
                // One picture names its file as given; several are numbered.
                let path = if drawn.len() == 1 {
                    out.clone()
                } else {
                    numbered(out, st.number)
                };
                let title = format!(
                    "{} · session {} ({})",
                    tr.input, st.number, st.session.client
                );
                let picture = svg::render(st, &tr.legs_of(st), &title, zip);
                std::fs::write(&path, picture).map_err(|e| format!("{path}: {e}"))?;
            }
        }
    }
    if let Some(out) = &args.extract {
        let tl = primary
            .and_then(|st| st.environment.as_ref())
            .ok_or_else(|| format!("--extract: no session in {}", tr.input))?;
        let text = toml::to_string(tl).map_err(|e| format!("--extract: {e}"))?;
        std::fs::write(out, text).map_err(|e| format!("{out}: {e}"))?;
    }
    Ok(())
}

/// `plot.svg` for session 3 is `plot-3.svg`.
fn numbered(path: &str, n: usize) -> String {
    let p = std::path::Path::new(path);
    match (p.file_stem(), p.extension()) {
        (Some(stem), Some(ext)) => p
            .with_file_name(format!(
                "{}-{n}.{}",
                stem.to_string_lossy(),
                ext.to_string_lossy()
            ))
            .display()
            .to_string(),
        _ => format!("{path}-{n}"),
    }
}

/// `--set` as `run` checks it, before any capture is read: against the
/// given profile, or (when the profile is detected per session) against
/// every profile, so a name no profile has or a value that does not parse
/// is refused up front.
fn check_overrides(profile: Option<&str>, set: &[String]) -> Result<(), String> {
    if set.is_empty() {
        return Ok(());
    }
    let quiet = crate::timeline::synthetic::Timeline::quiet(crate::timeline::synthetic::Dur(
        crate::timeline::Micros(1_000_000),
    ));
    let specs: Vec<String> = match profile {
        Some(p) => vec![p.to_string()],
        None => crate::model::registry::every_profile()
            .flat_map(|(n, _, vs)| vs.iter().map(move |v| format!("{n}@{}", v.name)))
            .collect(),
    };
    for o in set {
        let one = std::slice::from_ref(o);
        let errors: Vec<String> = specs
            .iter()
            .filter_map(|p| crate::triage::whatif::constants(p, &quiet, one).err())
            .collect();
        if errors.len() == specs.len() {
            return Err(errors.into_iter().next().unwrap_or_default());
        }
    }
    Ok(())
}
