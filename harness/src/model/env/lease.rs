//! A lease and token service.

use crate::model::duration::format_duration;
use crate::timeline::Micros;

/// A session token: signed with an expiry the holder cannot extend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub id: u64,
    pub holder: String,
    pub expires_at: Micros,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseError {
    /// Someone else holds it (the user is blocked until `until`).
    HeldBy { holder: String, until: Micros },
    /// HTTP 401: the token's expiry has passed.
    StaleToken { expired_at: Micros },
}

/// A lease/token service: one lease with a TTL; acquiring again as the
/// same holder extends it (upsert); tokens carry an expiry bound to the
/// lease's at signing time (and `token_ttl`); a stale token gets 401.
pub struct LeaseService {
    pub lease_ttl: Micros,
    pub token_ttl: Micros,
    lease: Option<(String, Micros)>,
    next_token: u64,
    history: Vec<(Micros, String)>,
}

impl LeaseService {
    pub fn new(lease_ttl: Micros, token_ttl: Micros) -> LeaseService {
        LeaseService {
            lease_ttl,
            token_ttl,
            lease: None,
            next_token: 1,
            history: Vec::new(),
        }
    }

    fn expire(&mut self, now: Micros) {
        if let Some((holder, until)) = &self.lease
            && *until <= now
        {
            self.history
                .push((*until, format!("lease of {holder} expired")));
            self.lease = None;
        }
    }

    /// Acquire or renew (the same call: an upsert keyed by holder).
    pub fn acquire(&mut self, now: Micros, holder: &str) -> Result<Token, LeaseError> {
        self.expire(now);
        if let Some((h, until)) = &self.lease
            && h != holder
        {
            return Err(LeaseError::HeldBy {
                holder: h.clone(),
                until: *until,
            });
        }
        let renewed = self.lease.is_some();
        let until = Micros(now.0.saturating_add(self.lease_ttl.0));
        self.lease = Some((holder.to_string(), until));
        self.history.push((
            now,
            format!(
                "{} by {holder} until {}",
                if renewed { "renewed" } else { "acquired" },
                format_duration(until)
            ),
        ));
        let id = self.next_token;
        self.next_token += 1;
        Ok(Token {
            id,
            holder: holder.to_string(),
            expires_at: Micros(now.0.saturating_add(self.token_ttl.0)).min(until),
        })
    }

    /// A request presenting `token`.
    pub fn check(&mut self, now: Micros, token: &Token) -> Result<(), LeaseError> {
        if now >= token.expires_at {
            self.history.push((
                now,
                format!("401 for {} (token {} stale)", token.holder, token.id),
            ));
            return Err(LeaseError::StaleToken {
                expired_at: token.expires_at,
            });
        }
        Ok(())
    }

    pub fn release(&mut self, now: Micros, holder: &str) {
        if self.lease.as_ref().is_some_and(|(h, _)| h == holder) {
            self.lease = None;
            self.history.push((now, format!("released by {holder}")));
        }
    }

    pub fn holder(&mut self, now: Micros) -> Option<&str> {
        self.expire(now);
        self.lease.as_ref().map(|(h, _)| h.as_str())
    }

    pub fn poll_timeout(&self) -> Option<Micros> {
        self.lease.as_ref().map(|(_, until)| *until)
    }
    pub fn handle_timeout(&mut self, now: Micros) {
        self.expire(now);
    }
    /// (time, what) for the verdict's lease history.
    pub fn history(&self) -> &[(Micros, String)] {
        &self.history
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Micros {
        Micros(n * 1_000_000)
    }

    #[test]
    fn lease_upsert_extends_and_blocks_others_and_stale_tokens_get_401() {
        let mut l = LeaseService::new(s(300), s(3600));
        let t1 = l.acquire(s(0), "tab-a").unwrap();
        assert_eq!(t1.expires_at, s(300), "token bound to the lease expiry");
        assert_eq!(
            l.acquire(s(10), "tab-b"),
            Err(LeaseError::HeldBy {
                holder: "tab-a".into(),
                until: s(300)
            })
        );
        let t2 = l.acquire(s(120), "tab-a").unwrap();
        assert_eq!(t2.expires_at, s(420));
        // The old token still carries its own expiry: renewal does not extend it.
        assert_eq!(
            l.check(s(301), &t1),
            Err(LeaseError::StaleToken { expired_at: s(300) })
        );
        assert_eq!(l.check(s(301), &t2), Ok(()));
        // Nobody renews: the lease lapses and another holder may take it.
        assert_eq!(l.poll_timeout(), Some(s(420)));
        l.handle_timeout(s(420));
        assert_eq!(l.holder(s(420)), None);
        assert!(l.acquire(s(421), "tab-b").is_ok());
        let h: Vec<&str> = l.history().iter().map(|(_, w)| w.as_str()).collect();
        assert_eq!(
            h,
            [
                "acquired by tab-a until 5m",
                "renewed by tab-a until 7m",
                "401 for tab-a (token 1 stale)",
                "lease of tab-a expired",
                "acquired by tab-b until 721s"
            ]
        );
    }
}
