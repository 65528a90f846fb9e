//! Named constants of a run: every timer and budget the model uses, with a
//! default from its source, overridable by `--set name=value` or a replay
//! spec. The verdict lists every one in effect.

use super::duration::{format_duration, parse_duration};
use crate::timeline::Micros;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Duration(Micros),
    Count(u64),
    /// A schedule such as reconnect backoff: `1s,4s,16s`.
    Schedule(Vec<Micros>),
    Flag(bool),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Duration(d) => f.write_str(&format_duration(*d)),
            Value::Count(n) => write!(f, "{n}"),
            Value::Schedule(v) => {
                let parts: Vec<String> = v.iter().map(|d| format_duration(*d)).collect();
                f.write_str(&parts.join(","))
            }
            Value::Flag(b) => write!(f, "{b}"),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[derive(Clone, Debug)]
struct Entry {
    value: Value,
    /// Where the default comes from (a source key from protocol-facts.md or
    /// a seed), shown by `--list-constants`.
    source: &'static str,
}

/// The table. Names are snake_case and fixed by whoever registers them; a
/// `--set` of an unknown name is an error that lists the known ones.
#[derive(Clone, Debug, Default)]
pub struct Constants {
    entries: BTreeMap<&'static str, Entry>,
}

impl Constants {
    pub fn define(&mut self, name: &'static str, value: Value, source: &'static str) {
        self.entries.insert(name, Entry { value, source });
    }

    /// The value of `name`, for callers that work across profiles and so
    /// cannot know which names a profile registers (triage).
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.entries.get(name).map(|e| &e.value)
    }

    pub fn duration(&self, name: &str) -> Micros {
        match self.entries.get(name).map(|e| &e.value) {
            Some(Value::Duration(d)) => *d,
            other => unreachable!("constant {name} is not a registered duration: {other:?}"),
        }
    }
    pub fn count(&self, name: &str) -> u64 {
        match self.entries.get(name).map(|e| &e.value) {
            Some(Value::Count(n)) => *n,
            other => unreachable!("constant {name} is not a registered count: {other:?}"),
        }
    }
    pub fn schedule(&self, name: &str) -> Vec<Micros> {
        match self.entries.get(name).map(|e| &e.value) {
            Some(Value::Schedule(v)) => v.clone(),
            other => unreachable!("constant {name} is not a registered schedule: {other:?}"),
        }
    }
    pub fn flag(&self, name: &str) -> bool {
        match self.entries.get(name).map(|e| &e.value) {
            Some(Value::Flag(b)) => *b,
            other => unreachable!("constant {name} is not a registered flag: {other:?}"),
        }
    }

    /// Applies `name=value`, parsed according to the kind the name was
    /// registered with.
    pub fn set(&mut self, name: &str, text: &str) -> Result<(), String> {
        let Some(entry) = self.entries.get_mut(name) else {
            let known: Vec<&str> = self.entries.keys().copied().collect();
            return Err(format!(
                "unknown constant `{name}` (known: {})",
                known.join(", ")
            ));
        };
        let text = text.trim();
        entry.value = match entry.value {
            Value::Duration(_) => {
                Value::Duration(parse_duration(text).map_err(|e| format!("{name}: {e}"))?)
            }
            Value::Count(_) => Value::Count(
                text.parse()
                    .map_err(|_| format!("{name}: {text:?} is not a whole number"))?,
            ),
            Value::Schedule(_) => {
                let mut v = Vec::new();
                for part in text.split(',').filter(|p| !p.trim().is_empty()) {
                    v.push(parse_duration(part).map_err(|e| format!("{name}: {e}"))?);
                }
                Value::Schedule(v)
            }
            Value::Flag(_) => Value::Flag(match text {
                "true" => true,
                "false" => false,
                _ => return Err(format!("{name}: {text:?} is not true or false")),
            }),
        };
        Ok(())
    }

    /// `name=value` as written on a command line.
    pub fn set_assignment(&mut self, assignment: &str) -> Result<(), String> {
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("--set {assignment:?}: expected NAME=VALUE"))?;
        self.set(name.trim(), value)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value, &'static str)> {
        self.entries.iter().map(|(k, e)| (*k, &e.value, e.source))
    }

    /// Every constant in effect, as the verdict prints it.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        self.entries
            .iter()
            .map(|(k, e)| (k.to_string(), e.value.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_parses_by_kind_and_rejects_unknown_names() {
        let mut c = Constants::default();
        c.define("pong_wait", Value::Duration(Micros(45_000_000)), "test");
        c.define("attempts", Value::Count(3), "test");
        c.define("backoff", Value::Schedule(vec![]), "test");
        c.set_assignment("pong_wait=1.5s").unwrap();
        c.set_assignment("attempts=5").unwrap();
        c.set_assignment("backoff=1s,4s,16s").unwrap();
        assert_eq!(c.duration("pong_wait"), Micros(1_500_000));
        assert_eq!(c.count("attempts"), 5);
        assert_eq!(c.snapshot()["backoff"], "1s,4s,16s");
        let e = c.set_assignment("pong_wiat=1s").unwrap_err();
        assert!(
            e.contains("unknown constant `pong_wiat`") && e.contains("pong_wait"),
            "{e}"
        );
        assert!(c.set_assignment("attempts=3s").is_err());
        assert!(c.set_assignment("pong_wait").is_err());
    }
}
