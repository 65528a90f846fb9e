//! Selecting connections on `flows` and `decode`: by number, client
//! address, protocol or time window. The capture is still read whole (a
//! connection's protocol and times are known only once read); the
//! selection narrows what is reported.

use crate::model::duration::parse_duration;
use crate::timeline::Micros;

#[derive(clap::Args, Clone, Debug, Default)]
#[command(next_help_heading = "Selection")]
pub struct SelectArgs {
    /// Only this connection number (repeat for several).
    #[arg(long = "connection", value_name = "N")]
    pub connections: Vec<u32>,
    /// Only connections from this client: an address, or address:port.
    #[arg(long, value_name = "ADDR")]
    pub client: Option<String>,
    /// Only connections whose stack holds this protocol: spice, rfb,
    /// websocket (or ws), http, tls, unknown.
    #[arg(long, value_name = "NAME")]
    pub protocol: Option<String>,
    /// Only connections active within `FROM..TO` (durations since the
    /// capture's first frame, e.g. `10s..2m`; `FROM..` to the end).
    #[arg(long, value_name = "FROM..TO", value_parser = parse_time_window)]
    pub time: Option<(Micros, Option<Micros>)>,
}

fn parse_time_window(s: &str) -> Result<(Micros, Option<Micros>), String> {
    let (from, to) = s
        .split_once("..")
        .ok_or_else(|| format!("`{s}`: expected FROM..TO or FROM.. (e.g. 10s..2m)"))?;
    let from = parse_duration(from)?;
    let to = match to.trim() {
        "" => None,
        t => Some(parse_duration(t)?),
    };
    if to.is_some_and(|t| t < from) {
        return Err(format!("`{s}`: ends before it starts"));
    }
    Ok((from, to))
}

/// What a selection looks at of one connection.
pub struct Candidate<'a> {
    pub connection: u32,
    /// `address:port`, as reported.
    pub client: &'a str,
    /// The protocol names of its stack (`tcp`, `ws`, `rfb`, ...) or its
    /// sniffed protocol.
    pub protocols: &'a [&'a str],
    /// Active span, seconds since the capture's first frame.
    pub from: f64,
    pub to: f64,
}

impl SelectArgs {
    pub fn is_empty(&self) -> bool {
        self.connections.is_empty()
            && self.client.is_none()
            && self.protocol.is_none()
            && self.time.is_none()
    }

    pub fn keeps(&self, c: &Candidate) -> bool {
        if !self.connections.is_empty() && !self.connections.contains(&c.connection) {
            return false;
        }
        if let Some(want) = &self.client {
            // An address alone matches any port; `[v6]:port` and `v4:port`
            // match exactly.
            let host = c.client.rsplit_once(':').map_or(c.client, |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let want_host = want.trim_start_matches('[').trim_end_matches(']');
            if c.client != want && host != want_host {
                return false;
            }
        }
        if let Some(p) = &self.protocol {
            let p = p.to_ascii_lowercase();
            let names: &[&str] = match p.as_str() {
                "ws" | "websocket" => &["ws", "websocket"],
                other => &[other][..],
            };
            if !c.protocols.iter().any(|x| names.contains(x)) {
                return false;
            }
        }
        if let Some((from, to)) = self.time {
            let from = from.as_secs_f64();
            let before_end = to.is_none_or(|t| c.from <= t.as_secs_f64());
            if !(before_end && c.to >= from) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand<'a>(protocols: &'a [&'a str]) -> Candidate<'a> {
        Candidate {
            connection: 3,
            client: "10.0.0.7:40123",
            protocols,
            from: 5.0,
            to: 20.0,
        }
    }

    #[test]
    fn each_criterion_narrows() {
        let c = cand(&["tcp", "ws", "rfb"]);
        let mut s = SelectArgs::default();
        assert!(s.is_empty() && s.keeps(&c));
        s.connections = vec![2];
        assert!(!s.keeps(&c));
        s.connections = vec![2, 3];
        assert!(s.keeps(&c));
        s.client = Some("10.0.0.7".into());
        assert!(s.keeps(&c));
        s.client = Some("10.0.0.7:1".into());
        assert!(!s.keeps(&c));
        s.client = Some("10.0.0.7:40123".into());
        s.protocol = Some("WebSocket".into());
        assert!(s.keeps(&c));
        s.protocol = Some("spice".into());
        assert!(!s.keeps(&c));
        s.protocol = None;
        s.time = Some(parse_time_window("21s..").unwrap());
        assert!(!s.keeps(&c));
        s.time = Some(parse_time_window("0s..5s").unwrap());
        assert!(s.keeps(&c));
        assert!(parse_time_window("5s..1s").is_err());
        assert!(parse_time_window("5s").is_err());
    }
}
