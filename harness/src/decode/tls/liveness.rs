//! Liveness read from record sizes when the records stay encrypted.
//!
//! spice-server pings every channel with a *pair* of PINGs queued together
//! (same id, no data: 12 bytes of body behind a 6-byte mini header, or an
//! 18-byte full header), and a client answers each at once with a PONG of the
//! same size (protocol-facts §1.14; SS server/red-channel-client.cpp:596-604,
//! SG src/channel-base.c:43-51). AEAD records grow by a fixed amount, so two
//! consecutive server records of exactly that plaintext size are taken for a
//! ping pair, and the client's next records of the same size for its pongs.
//! Other suites (CBC pads to its block) say nothing and are left alone.

use crate::timeline::Micros;

/// SPICE PING/PONG plaintext: mini header (6) or full header (18), plus
/// id (4) and timestamp (8).
const PING_SIZES: [usize; 2] = [18, 30];
/// The pair is queued in one go; more than this between the two records is
/// two unrelated messages.
const PAIR_WINDOW: Micros = Micros(1_000_000);
/// Pings waiting for their pong; a client that answers none keeps only the
/// newest, which is what liveness asks about.
const MAX_OUTSTANDING: usize = 8;

/// What a record's size says.
#[derive(Debug, PartialEq, Eq)]
pub enum Inferred {
    /// Two pings of `plaintext` bytes: the first at `first` (in frame
    /// `first_frame`), the second in the record just read.
    PingPair {
        first: Micros,
        first_frame: u64,
        plaintext: usize,
    },
    /// The answer to the ping sent at `ping`.
    Pong { ping: Micros, plaintext: usize },
}

#[derive(Default)]
pub struct PingShape {
    /// The last server record, when it had a ping's size.
    candidate: Option<(Micros, u64, usize)>,
    outstanding: std::collections::VecDeque<(Micros, usize)>,
}

impl PingShape {
    /// A server record of `plaintext` bytes (estimated) at `at`.
    pub fn server_record(
        &mut self,
        at: Micros,
        frame: u64,
        plaintext: Option<usize>,
    ) -> Option<Inferred> {
        let Some(p) = plaintext.filter(|p| PING_SIZES.contains(p)) else {
            self.candidate = None;
            return None;
        };
        match self.candidate.take() {
            Some((first, first_frame, q))
                if q == p && at.0.saturating_sub(first.0) <= PAIR_WINDOW.0 =>
            {
                for t in [first, at] {
                    if self.outstanding.len() == MAX_OUTSTANDING {
                        self.outstanding.pop_front();
                    }
                    self.outstanding.push_back((t, p));
                }
                Some(Inferred::PingPair {
                    first,
                    first_frame,
                    plaintext: p,
                })
            }
            _ => {
                self.candidate = Some((at, frame, p));
                None
            }
        }
    }

    /// A client record of `plaintext` bytes (estimated).
    pub fn client_record(&mut self, plaintext: Option<usize>) -> Option<Inferred> {
        let p = plaintext?;
        let i = self.outstanding.iter().position(|&(_, q)| q == p)?;
        // Pongs come in order: older pings of that size are not answered.
        let (ping, _) = self.outstanding.drain(..=i).next_back()?;
        Some(Inferred::Pong { ping, plaintext: p })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Micros {
        Micros(n * 1000)
    }

    #[test]
    fn a_pair_and_its_answers() {
        let mut s = PingShape::default();
        assert_eq!(s.server_record(ms(0), 7, Some(18)), None);
        assert_eq!(
            s.server_record(ms(1), 7, Some(18)),
            Some(Inferred::PingPair {
                first: ms(0),
                first_frame: 7,
                plaintext: 18
            })
        );
        assert_eq!(s.client_record(Some(40)), None);
        assert_eq!(
            s.client_record(Some(18)),
            Some(Inferred::Pong {
                ping: ms(0),
                plaintext: 18
            })
        );
        assert_eq!(
            s.client_record(Some(18)),
            Some(Inferred::Pong {
                ping: ms(1),
                plaintext: 18
            })
        );
        assert_eq!(s.client_record(Some(18)), None);
    }

    #[test]
    fn lone_ping_sized_records_and_slow_pairs_are_not_pings() {
        let mut s = PingShape::default();
        assert_eq!(s.server_record(ms(0), 7, Some(18)), None);
        assert_eq!(s.server_record(ms(1), 7, Some(40)), None);
        assert_eq!(s.server_record(ms(2), 7, Some(18)), None);
        assert_eq!(s.server_record(ms(2000), 7, Some(18)), None);
        assert_eq!(s.server_record(ms(2001), 7, Some(30)), None);
        // Unknown sizes (CBC) break a pair too.
        assert_eq!(s.server_record(ms(2002), 7, None), None);
        assert_eq!(s.server_record(ms(2003), 7, Some(30)), None);
        assert_eq!(s.client_record(Some(18)), None);
    }

    #[test]
    fn unanswered_pings_are_bounded() {
        let mut s = PingShape::default();
        for i in 0..100 {
            s.server_record(ms(i * 15_000), 7, Some(18));
            assert!(s.server_record(ms(i * 15_000 + 1), 7, Some(18)).is_some());
        }
        assert_eq!(s.outstanding.len(), MAX_OUTSTANDING);
        // A late answer goes to the oldest ping still held.
        assert_eq!(
            s.client_record(Some(18)),
            Some(Inferred::Pong {
                ping: ms(96 * 15_000),
                plaintext: 18
            })
        );
    }
}
