//! Searching a replay's constants: `bisect` one constant for the value
//! where the verdict flips, `sweep` a grid of one or two, and split a sweep
//! into deterministic shards that `merge` puts back together.
//!
//! Every run is a pure function of (spec, overrides), so a search is exact
//! and reproducible; rayon only changes how fast the same points are run,
//! never what they say (results are collected in grid order).

use crate::model::duration::{format_duration, parse_duration};
use crate::model::registry::run_timeline;
use crate::replay::spec::{BadInput, LoadedSpec, load_spec};
use crate::timeline::Micros;
use crate::timeline::synthetic::Timeline;
use crate::verdict::Verdict;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

pub mod plot;

/// A grid larger than this is refused rather than allocated: the sizes
/// come from the command line.
pub const MAX_POINTS: u64 = 4_000_000;

/// Evenly spaced probes a bisection runs over its range before narrowing,
/// to catch a constant with more than one boundary.
pub const PROBES: u64 = 17;

/// A replay spec with its timeline parsed once, ready to run many times.
pub struct Target {
    pub spec: LoadedSpec,
    timeline: Timeline,
}

impl Target {
    pub fn load(path: &Path) -> Result<Target, BadInput> {
        let spec = load_spec(path)?;
        let text = std::fs::read_to_string(&spec.input_path).map_err(|e| {
            BadInput(format!(
                "{}: input {}: {e}",
                spec.path.display(),
                spec.input_path.display()
            ))
        })?;
        let timeline =
            Timeline::parse(&text, &spec.spec.input).map_err(|e| BadInput(e.to_string()))?;
        Ok(Target { spec, timeline })
    }

    /// Runs with the spec's own overrides, then `extra` on top.
    pub fn run(&self, extra: &[String]) -> Result<Verdict, BadInput> {
        let mut overrides: Vec<String> = self
            .spec
            .spec
            .set
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        overrides.extend(extra.iter().cloned());
        run_timeline(
            &self.timeline,
            &self.spec.spec.input,
            &self.spec.spec.profile,
            &overrides,
        )
        .map_err(|e| BadInput(format!("{}: {e}", self.spec.path.display())))
    }
}

/// How a constant's values are written: durations carry a unit, counts
/// are bare whole numbers. Values are held as µs or as the count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Duration,
    Count,
}

impl Kind {
    pub fn format(self, v: u64) -> String {
        match self {
            Kind::Duration => format_duration(Micros(v)),
            Kind::Count => v.to_string(),
        }
    }

    pub fn parse(self, text: &str) -> Result<u64, String> {
        match self {
            Kind::Duration => parse_duration(text).map(|d| d.0),
            Kind::Count => text
                .trim()
                .parse()
                .map_err(|_| format!("{text:?} is not a whole number")),
        }
    }
}

/// `LO..HI`: both bare whole numbers (a count) or both durations.
pub fn parse_range(text: &str) -> Result<(Kind, u64, u64), String> {
    let (lo, hi) = text
        .split_once("..")
        .ok_or_else(|| format!("range {text:?}: expected LO..HI"))?;
    let kind = if lo.trim().parse::<u64>().is_ok() && hi.trim().parse::<u64>().is_ok() {
        Kind::Count
    } else {
        Kind::Duration
    };
    let lo = kind.parse(lo).map_err(|e| format!("range {text:?}: {e}"))?;
    let hi = kind.parse(hi).map_err(|e| format!("range {text:?}: {e}"))?;
    if lo >= hi {
        return Err(format!("range {text:?}: LO must be below HI"));
    }
    Ok((kind, lo, hi))
}

/// What a search compares: the outcome and its cause. The channel and the
/// time are left out on purpose: which channel a reset lands on first can
/// change with a constant while the verdict means the same thing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Class {
    pub outcome: String,
    pub cause: Option<String>,
}

impl Class {
    pub fn of(v: &Verdict) -> Class {
        Class {
            outcome: v.outcome.as_str().to_string(),
            cause: v.cause.clone(),
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Some(c) => write!(f, "{} ({c})", self.outcome),
            None => f.write_str(&self.outcome),
        }
    }
}

/// One run of a search: the value tried and what came of it.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Probe {
    pub value: String,
    pub class: Class,
    pub at: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum BisectResult {
    /// The verdict is `below_class` up to `below` and `above_class` from
    /// `above` on; `above - below <= resolution`.
    Boundary {
        below: String,
        below_class: Class,
        above: String,
        above_class: Class,
    },
    /// The same verdict at every probe.
    NoChange { class: Class },
    /// More than one flip (or a third verdict between two): no single
    /// boundary exists, and none is returned.
    NonMonotonic { flips: Vec<(Probe, Probe)> },
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct BisectReport {
    pub spec: String,
    pub profile: String,
    pub param: String,
    pub kind: Kind,
    pub lo: String,
    pub hi: String,
    pub resolution: String,
    pub runs: u64,
    #[serde(flatten)]
    pub result: BisectResult,
    /// Every run in the order the search made them (probes first).
    pub probes: Vec<Probe>,
}

/// One run of a search before its value is spelled: (value, class, at).
pub type Run = (u64, Class, Option<f64>);

/// The search over any verdict function: probe `PROBES` evenly spaced
/// values, then halve the one bracket where the class flips until it is
/// at most `resolution` wide. A flip that happens and reverts between two
/// neighbouring probes is not seen; narrowing the range finds it.
pub fn bisect_with<F>(
    lo: u64,
    hi: u64,
    resolution: u64,
    run: F,
) -> Result<(BisectResult, Vec<Run>), BadInput>
where
    F: Fn(u64) -> Result<(Class, Option<f64>), BadInput> + Sync,
{
    let resolution = resolution.max(1);
    let n = PROBES.min(hi - lo + 1);
    let xs: Vec<u64> = (0..n)
        .map(|i| lo + ((hi - lo) as u128 * i as u128 / (n - 1) as u128) as u64)
        .collect();
    let mut runs: Vec<Run> = xs
        .par_iter()
        .map(|&x| run(x).map(|(c, at)| (x, c, at)))
        .collect::<Result<_, _>>()?;
    let flips: Vec<usize> = (1..runs.len())
        .filter(|&i| runs[i - 1].1 != runs[i].1)
        .collect();
    let result = match flips.as_slice() {
        [] => BisectResult::NoChange {
            class: runs[0].1.clone(),
        },
        [i] => {
            let (mut a, left) = (runs[i - 1].0, runs[i - 1].1.clone());
            let (mut b, right) = (runs[*i].0, runs[*i].1.clone());
            let mut third = None;
            while b - a > resolution {
                let mid = a + (b - a) / 2;
                let (c, at) = run(mid)?;
                runs.push((mid, c.clone(), at));
                if c == left {
                    a = mid;
                } else if c == right {
                    b = mid;
                } else {
                    third = Some(runs.len() - 1);
                    break;
                }
            }
            match third {
                None => BisectResult::Boundary {
                    below: a.to_string(),
                    below_class: left,
                    above: b.to_string(),
                    above_class: right,
                },
                Some(k) => {
                    let (m, c, at) = runs[k].clone();
                    let p = |x: u64, c: Class, at| Probe {
                        value: x.to_string(),
                        class: c,
                        at,
                    };
                    BisectResult::NonMonotonic {
                        flips: vec![
                            (p(a, left.clone(), None), p(m, c.clone(), at)),
                            (p(m, c, at), p(b, right, None)),
                        ],
                    }
                }
            }
        }
        many => BisectResult::NonMonotonic {
            flips: many
                .iter()
                .map(|&i| {
                    let p = |k: usize| Probe {
                        value: runs[k].0.to_string(),
                        class: runs[k].1.clone(),
                        at: runs[k].2,
                    };
                    (p(i - 1), p(i))
                })
                .collect(),
        },
    };
    Ok((result, runs))
}

/// `tether bisect`: the boundary of `param` over `lo..hi` on a spec.
pub fn bisect(
    target: &Target,
    param: &str,
    kind: Kind,
    lo: u64,
    hi: u64,
    resolution: u64,
) -> Result<BisectReport, BadInput> {
    let (result, runs) = bisect_with(lo, hi, resolution, |x| {
        let v = target.run(&[format!("{param}={}", kind.format(x))])?;
        Ok((Class::of(&v), v.at))
    })?;
    // Values travel as raw numbers inside the search; spell them here.
    let spell = |raw: &str| {
        raw.parse::<u64>()
            .map_or(raw.to_string(), |x| kind.format(x))
    };
    let respell = |p: Probe| Probe {
        value: spell(&p.value),
        ..p
    };
    let result = match result {
        BisectResult::Boundary {
            below,
            below_class,
            above,
            above_class,
        } => BisectResult::Boundary {
            below: spell(&below),
            below_class,
            above: spell(&above),
            above_class,
        },
        BisectResult::NonMonotonic { flips } => BisectResult::NonMonotonic {
            flips: flips
                .into_iter()
                .map(|(a, b)| (respell(a), respell(b)))
                .collect(),
        },
        r => r,
    };
    Ok(BisectReport {
        spec: target.spec.path.display().to_string(),
        profile: target.spec.spec.profile.clone(),
        param: param.to_string(),
        kind,
        lo: kind.format(lo),
        hi: kind.format(hi),
        resolution: kind.format(resolution.max(1)),
        runs: runs.len() as u64,
        result,
        probes: runs
            .into_iter()
            .map(|(x, class, at)| Probe {
                value: kind.format(x),
                class,
                at,
            })
            .collect(),
    })
}

impl BisectReport {
    pub fn to_text(&self) -> String {
        let head = format!(
            "{} over {}..{} (resolution {}) on {} [{}]: {} runs\n",
            self.param, self.lo, self.hi, self.resolution, self.spec, self.profile, self.runs
        );
        let body = match &self.result {
            BisectResult::Boundary {
                below,
                below_class,
                above,
                above_class,
            } => format!(
                "boundary between {below} and {above}\n  {} <= {below}: {below_class}\n  {} >= {above}: {above_class}\n",
                self.param, self.param
            ),
            BisectResult::NoChange { class } => {
                format!("no boundary: {class} at every probe\n")
            }
            BisectResult::NonMonotonic { flips } => {
                let mut s = format!(
                    "NON-MONOTONIC: the verdict flips {} times; no single boundary\n",
                    flips.len()
                );
                for (a, b) in flips {
                    s.push_str(&format!(
                        "  {} at {} -> {} at {}\n",
                        a.class, a.value, b.class, b.value
                    ));
                }
                s
            }
        };
        head + &body
    }
}

/// One axis of a sweep: `NAME=LO..HI:STEP`, both ends included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Axis {
    pub name: String,
    pub kind: Kind,
    pub lo: u64,
    pub hi: u64,
    pub step: u64,
}

impl Axis {
    pub fn parse(text: &str) -> Result<Axis, String> {
        let (name, rest) = text
            .split_once('=')
            .ok_or_else(|| format!("--param {text:?}: expected NAME=LO..HI:STEP"))?;
        let (range, step) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("--param {text:?}: expected NAME=LO..HI:STEP"))?;
        let (kind, lo, hi) = parse_range(range)?;
        let step = kind
            .parse(step)
            .map_err(|e| format!("--param {text:?}: step {e}"))?;
        if step == 0 {
            return Err(format!("--param {text:?}: step must be above zero"));
        }
        Ok(Axis {
            name: name.trim().to_string(),
            kind,
            lo,
            hi,
            step,
        })
    }

    pub fn len(&self) -> u64 {
        (self.hi - self.lo) / self.step + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn value(&self, i: u64) -> u64 {
        self.lo + i * self.step
    }
}

/// `K/N` with 1 <= K <= N: this shard runs grid points (or specs) whose
/// index is K-1 modulo N, so shards interleave and cost about the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Shard {
    pub k: u64,
    pub n: u64,
}

impl Shard {
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("--shard {text:?}: expected K/N with 1 <= K <= N");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let k: u64 = k.trim().parse().map_err(|_| bad())?;
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        if k == 0 || n == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard { k, n })
    }

    pub fn owns(self, index: u64) -> bool {
        index % self.n == self.k - 1
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Point {
    /// Position in the whole grid, row-major over the axes in order.
    pub index: u64,
    /// The axes' values, spelled as on the command line.
    pub values: Vec<String>,
    pub outcome: String,
    pub cause: Option<String>,
    pub channel: Option<String>,
    /// Time to failure in seconds; null when the session survived.
    pub at: Option<f64>,
    pub sessions: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SweepReport {
    pub spec: String,
    pub profile: String,
    pub axes: Vec<Axis>,
    pub total_points: u64,
    /// The shard this report holds, or null for the whole grid.
    pub shard: Option<Shard>,
    pub points: Vec<Point>,
}

/// Grid size, refusing what would not fit.
pub fn grid_size(axes: &[Axis]) -> Result<u64, BadInput> {
    if axes.is_empty() || axes.len() > 2 {
        return Err(BadInput("a sweep takes one or two --param axes".into()));
    }
    let mut n: u64 = 1;
    for a in axes {
        n = n
            .checked_mul(a.len())
            .filter(|&n| n <= MAX_POINTS)
            .ok_or_else(|| BadInput(format!("sweep grid over {MAX_POINTS} points")))?;
    }
    Ok(n)
}

/// Runs the grid (or one shard of it) on the current rayon pool. Calls
/// `tick` once per finished point (for a progress bar), from any thread.
pub fn sweep(
    target: &Target,
    axes: &[Axis],
    shard: Option<Shard>,
    tick: &(dyn Fn() + Sync),
) -> Result<SweepReport, BadInput> {
    let total = grid_size(axes)?;
    let mine: Vec<u64> = (0..total)
        .filter(|&i| shard.is_none_or(|s| s.owns(i)))
        .collect();
    let points = mine
        .par_iter()
        .map(|&index| {
            // Row-major: the last axis varies fastest.
            let mut rest = index;
            let mut raw = vec![0u64; axes.len()];
            for (slot, a) in raw.iter_mut().zip(axes).rev() {
                *slot = a.value(rest % a.len());
                rest /= a.len();
            }
            let values: Vec<String> = raw
                .iter()
                .zip(axes)
                .map(|(&x, a)| a.kind.format(x))
                .collect();
            let sets: Vec<String> = values
                .iter()
                .zip(axes)
                .map(|(v, a)| format!("{}={v}", a.name))
                .collect();
            let v = target.run(&sets)?;
            tick();
            Ok(Point {
                index,
                values,
                outcome: v.outcome.as_str().to_string(),
                cause: v.cause.clone(),
                channel: v.channel.clone(),
                at: v.at,
                sessions: v.sessions,
            })
        })
        .collect::<Result<Vec<_>, BadInput>>()?;
    Ok(SweepReport {
        spec: target.spec.path.display().to_string(),
        profile: target.spec.spec.profile.clone(),
        axes: axes.to_vec(),
        total_points: total,
        shard,
        points,
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl SweepReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("sweep report serialises")
    }

    pub fn to_csv(&self) -> String {
        let mut s = String::new();
        let mut head: Vec<String> = self.axes.iter().map(|a| csv_field(&a.name)).collect();
        head.extend(
            ["outcome", "cause", "channel", "at", "sessions"]
                .iter()
                .map(|h| h.to_string()),
        );
        s.push_str(&head.join(","));
        s.push('\n');
        for p in &self.points {
            let mut row: Vec<String> = p.values.iter().map(|v| csv_field(v)).collect();
            row.push(csv_field(&p.outcome));
            row.push(csv_field(p.cause.as_deref().unwrap_or("")));
            row.push(csv_field(p.channel.as_deref().unwrap_or("")));
            row.push(p.at.map_or(String::new(), |a| format!("{a}")));
            row.push(p.sessions.to_string());
            s.push_str(&row.join(","));
            s.push('\n');
        }
        s
    }

    pub fn to_table(&self) -> String {
        let mut s = String::new();
        for a in &self.axes {
            s.push_str(&format!("{:>14} ", a.name));
        }
        s.push_str(&format!("{:<14} {:<28} {:>12}\n", "outcome", "cause", "at"));
        for p in &self.points {
            for v in &p.values {
                s.push_str(&format!("{v:>14} "));
            }
            s.push_str(&format!(
                "{:<14} {:<28} {:>12}\n",
                p.outcome,
                p.cause.as_deref().unwrap_or("-"),
                p.at.map_or("-".to_string(), |a| format!("{a:.3}s"))
            ));
        }
        s.push_str(&format!(
            "{} of {} points{}\n",
            self.points.len(),
            self.total_points,
            self.shard
                .map_or(String::new(), |sh| format!(" (shard {}/{})", sh.k, sh.n))
        ));
        s
    }
}

/// Merges shard reports of one sweep into one. Refuses reports of
/// different sweeps, overlapping points and (unless `allow_partial`) a
/// grid with points missing.
pub fn merge(reports: Vec<SweepReport>, allow_partial: bool) -> Result<SweepReport, BadInput> {
    let mut it = reports.into_iter();
    let mut out = it
        .next()
        .ok_or_else(|| BadInput("merge: no reports".into()))?;
    for r in it {
        if r.spec != out.spec
            || r.profile != out.profile
            || r.axes != out.axes
            || r.total_points != out.total_points
        {
            return Err(BadInput(format!(
                "merge: reports of different sweeps ({} vs {})",
                out.spec, r.spec
            )));
        }
        out.points.extend(r.points);
    }
    out.points.sort_by_key(|p| p.index);
    for w in out.points.windows(2) {
        if w[0].index == w[1].index {
            return Err(BadInput(format!(
                "merge: point {} is in more than one report",
                w[0].index
            )));
        }
    }
    if let Some(p) = out.points.iter().find(|p| p.index >= out.total_points) {
        return Err(BadInput(format!(
            "merge: point {} is outside the grid",
            p.index
        )));
    }
    let missing = out.total_points - out.points.len() as u64;
    if missing > 0 && !allow_partial {
        return Err(BadInput(format!(
            "merge: {missing} of {} points missing (a shard not merged?)",
            out.total_points
        )));
    }
    out.shard = None;
    Ok(out)
}
