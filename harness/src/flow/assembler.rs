//! One direction's byte stream put back in order: bytes at or past the
//! delivery point are delivered or held, old bytes are checked against
//! what was delivered and dropped, and the first-seen bytes win wherever
//! copies overlap. Sans-IO and event-free: the reassembler decides what a
//! mismatch, a gap or a limit means.

use std::collections::{BTreeMap, VecDeque};

/// Bytes of recently delivered data kept, to check that a retransmission
/// carries the same bytes as the original.
pub const RETRANSMIT_CHECK_BYTES: usize = 4096;

#[derive(Debug, Default)]
pub struct Assembler {
    /// Stream offset of the next byte to deliver.
    next: u64,
    /// Out-of-order bytes by stream offset, never overlapping each other.
    held: BTreeMap<u64, Vec<u8>>,
    held_bytes: usize,
    /// The tail of what was delivered, the last [`RETRANSMIT_CHECK_BYTES`]
    /// at most: a ring, grown only as far as the connection has sent, since
    /// a server capture holds thousands of connections open at once.
    recent: VecDeque<u8>,
}

/// What was old in a segment: bytes before the delivery point.
#[derive(Debug, PartialEq, Eq)]
pub struct Old<'a> {
    /// Bytes that were already delivered (or skipped) before.
    pub retransmitted: u64,
    /// The start of the remembered range the copy differs from, if it does.
    pub mismatch_at: Option<u64>,
    /// The part at or past the delivery point, with its offset.
    pub rest: Option<(u64, &'a [u8])>,
}

impl Assembler {
    pub fn next(&self) -> u64 {
        self.next
    }

    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Offset of the first held byte: where the hole in front of held
    /// bytes ends.
    pub fn first_held(&self) -> Option<u64> {
        self.held.keys().next().copied()
    }

    pub fn is_untouched(&self) -> bool {
        self.next == 0 && self.held.is_empty()
    }

    /// Splits a segment at `offset` (which may be before the delivery
    /// point) into its old part, compared with what is remembered of the
    /// delivered bytes, and the rest.
    pub fn old<'a>(&self, offset: i64, bytes: &'a [u8]) -> Old<'a> {
        let next = self.next as i64;
        let end = offset + bytes.len() as i64;
        if offset >= next {
            return Old {
                retransmitted: 0,
                mismatch_at: None,
                rest: Some((offset as u64, bytes)),
            };
        }
        let overlap_end = end.min(next);
        let retransmitted = (overlap_end - offset).max(0) as u64;
        let recent_start = next - self.recent.len() as i64;
        let from = offset.max(recent_start);
        let mismatch_at = (from < overlap_end
            && !self
                .recent
                .range((from - recent_start) as usize..(overlap_end - recent_start) as usize)
                .eq(&bytes[(from - offset) as usize..(overlap_end - offset) as usize]))
        .then_some(from as u64);
        let rest = (end > next).then(|| (self.next, &bytes[(next - offset) as usize..]));
        Old {
            retransmitted,
            mismatch_at,
            rest,
        }
    }

    /// Takes in-order bytes at the delivery point; returns their offset.
    pub fn advance(&mut self, bytes: &[u8]) -> u64 {
        let offset = self.next;
        self.next += bytes.len() as u64;
        let kept = &bytes[bytes.len().saturating_sub(RETRANSMIT_CHECK_BYTES)..];
        let over = (self.recent.len() + kept.len()).saturating_sub(RETRANSMIT_CHECK_BYTES);
        self.recent.drain(..over);
        let needed = self.recent.len() + kept.len();
        if needed > self.recent.capacity() {
            // Doubling, but never past the bytes checked.
            let to = needed
                .max(2 * self.recent.capacity())
                .min(RETRANSMIT_CHECK_BYTES);
            self.recent.reserve_exact(to - self.recent.len());
        }
        self.recent.extend(kept);
        offset
    }

    /// Holds bytes past the delivery point, keeping bytes already held
    /// where they overlap; returns the start of the first overlap whose
    /// held bytes differ from the new copy, if one does.
    pub fn hold(&mut self, offset: u64, bytes: &[u8]) -> Option<u64> {
        let mut pieces: Vec<(u64, &[u8])> = Vec::new();
        let mut cur = offset;
        let end = offset + bytes.len() as u64;
        let mut mismatch_at = None;
        // Held ranges that may overlap [offset, end).
        let start_key = self
            .held
            .range(..=offset)
            .next_back()
            .map(|(&k, _)| k)
            .unwrap_or(offset);
        for (&k, v) in self.held.range(start_key..end) {
            let k_end = k + v.len() as u64;
            if k_end <= cur {
                continue;
            }
            if k > cur {
                pieces.push((cur, &bytes[(cur - offset) as usize..(k - offset) as usize]));
            }
            let from = cur.max(k);
            let to = end.min(k_end);
            if from < to
                && mismatch_at.is_none()
                && bytes[(from - offset) as usize..(to - offset) as usize]
                    != v[(from - k) as usize..(to - k) as usize]
            {
                mismatch_at = Some(from);
            }
            cur = cur.max(k_end);
            if cur >= end {
                break;
            }
        }
        if cur < end {
            pieces.push((cur, &bytes[(cur - offset) as usize..]));
        }
        for (o, b) in pieces {
            if !b.is_empty() {
                self.held_bytes += b.len();
                self.held.insert(o, b.to_vec());
            }
        }
        mismatch_at
    }

    /// The next held bytes that have become contiguous with the delivery
    /// point (their already-delivered front cut off), taken out; empty
    /// when a held piece lay wholly behind it.
    pub fn take_ready(&mut self) -> Option<Vec<u8>> {
        let (&k, _) = self.held.iter().next()?;
        if k > self.next {
            return None;
        }
        let mut v = self.held.remove(&k)?;
        self.held_bytes -= v.len();
        let skip = ((self.next - k) as usize).min(v.len());
        v.drain(..skip);
        Some(v)
    }

    /// Moves the delivery point to `to` over bytes never seen (a gap);
    /// returns the gap's offset and length, if it moved.
    pub fn skip_to(&mut self, to: u64) -> Option<(u64, u64)> {
        if to <= self.next {
            return None;
        }
        let gap = (self.next, to - self.next);
        self.next = to;
        self.recent.clear();
        Some(gap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Delivers what is ready, as the reassembler does after each segment.
    fn drain(a: &mut Assembler, out: &mut Vec<u8>) {
        while let Some(v) = a.take_ready() {
            a.advance(&v);
            out.extend(v);
        }
    }

    /// Feeds a segment the way the reassembler does: old part checked,
    /// the rest delivered or held.
    fn feed(a: &mut Assembler, offset: i64, bytes: &[u8], out: &mut Vec<u8>) -> Option<u64> {
        let old = a.old(offset, bytes);
        let mut mismatch = old.mismatch_at;
        if let Some((o, rest)) = old.rest {
            if o == a.next() {
                a.advance(rest);
                out.extend_from_slice(rest);
                drain(a, out);
            } else {
                mismatch = mismatch.or(a.hold(o, rest));
            }
        }
        mismatch
    }

    /// A server capture keeps thousands of connections open: each keeps at
    /// most the checked bytes, yet a copy of any of the last
    /// RETRANSMIT_CHECK_BYTES is still checked.
    #[test]
    fn retransmission_memory_is_bounded_and_released() {
        let mut a = Assembler::default();
        let mut out = Vec::new();
        let stream: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for (k, piece) in stream.chunks(1000).enumerate() {
            feed(&mut a, (k * 1000) as i64, piece, &mut out);
            assert!(a.recent.capacity() <= RETRANSMIT_CHECK_BYTES);
            assert_eq!(a.recent.len(), RETRANSMIT_CHECK_BYTES.min(out.len()));
        }
        assert_eq!(out, stream);
        let back = (stream.len() - RETRANSMIT_CHECK_BYTES) as i64;
        let mut altered = stream[back as usize..back as usize + 10].to_vec();
        altered[3] ^= 0xff;
        assert_eq!(feed(&mut a, back, &altered, &mut out), Some(back as u64));
    }

    /// An idle or quiet connection keeps what it sent, not the window.
    #[test]
    fn retransmission_memory_grows_only_with_what_was_sent() {
        let mut a = Assembler::default();
        let mut out = Vec::new();
        feed(&mut a, 0, &[1u8; 100], &mut out);
        assert!(a.recent.capacity() < RETRANSMIT_CHECK_BYTES / 8);
        assert_eq!(feed(&mut a, 50, &[2u8; 10], &mut out), Some(50));
    }

    #[test]
    fn in_order_bytes_go_straight_through() {
        let mut a = Assembler::default();
        let mut out = Vec::new();
        feed(&mut a, 0, b"hello ", &mut out);
        feed(&mut a, 6, b"world", &mut out);
        assert_eq!(out, b"hello world");
        assert_eq!((a.next(), a.held_bytes()), (11, 0));
    }

    #[test]
    fn out_of_order_bytes_wait_for_the_hole() {
        let mut a = Assembler::default();
        let mut out = Vec::new();
        feed(&mut a, 6, b"world", &mut out);
        feed(&mut a, 3, b"lo ", &mut out);
        assert!(out.is_empty());
        assert_eq!((a.first_held(), a.held_bytes()), (Some(3), 8));
        feed(&mut a, 0, b"hel", &mut out);
        assert_eq!(out, b"hello world");
        assert_eq!(a.held_bytes(), 0);
    }

    #[test]
    fn a_duplicate_is_counted_and_dropped() {
        let mut a = Assembler::default();
        let mut out = Vec::new();
        feed(&mut a, 0, b"abcdef", &mut out);
        let old = a.old(0, b"abcdef");
        assert_eq!(
            old,
            Old {
                retransmitted: 6,
                mismatch_at: None,
                rest: None
            }
        );
        assert_eq!(out, b"abcdef");
    }

    #[test]
    fn a_retransmission_with_other_bytes_is_found_and_the_first_copy_kept() {
        let mut a = Assembler::default();
        let mut out = Vec::new();
        feed(&mut a, 0, b"abcdef", &mut out);
        // Overlaps the delivered tail and carries new bytes past it.
        assert_eq!(feed(&mut a, 4, b"XYgh", &mut out), Some(4));
        assert_eq!(out, b"abcdefgh");
    }

    #[test]
    fn old_data_past_what_is_remembered_is_dropped_unchecked() {
        let mut a = Assembler::default();
        let mut out = Vec::new();
        let big = vec![7u8; RETRANSMIT_CHECK_BYTES * 2];
        feed(&mut a, 0, &big, &mut out);
        // Bytes 0..10 are no longer remembered: counted, not compared.
        let old = a.old(0, &[1u8; 10]);
        assert_eq!(
            (old.retransmitted, old.mismatch_at, old.rest),
            (10, None, None)
        );
    }

    #[test]
    fn a_contained_segment_and_overlaps_on_both_sides_keep_the_first_bytes() {
        let mut a = Assembler::default();
        let mut out = Vec::new();
        // Held: [10, 20).
        assert_eq!(a.hold(10, b"0123456789"), None);
        // Contained, same bytes.
        assert_eq!(a.hold(12, b"234"), None);
        // Overlapping the front and the back; in the back one byte differs,
        // said at the start of that overlap.
        assert_eq!(a.hold(5, b"abcde01"), None);
        assert_eq!(a.hold(18, b"8Xzz"), Some(18));
        assert_eq!(a.held_bytes(), 5 + 10 + 2);
        feed(&mut a, 0, b"vwxyz", &mut out);
        assert_eq!(out, b"vwxyzabcde0123456789zz");
    }

    #[test]
    fn a_piece_wholly_behind_the_delivery_point_is_dropped() {
        let mut a = Assembler::default();
        let mut out = Vec::new();
        a.hold(2, b"cd");
        feed(&mut a, 0, b"abcdef", &mut out);
        assert_eq!(out, b"abcdef");
        assert_eq!((a.held_bytes(), a.first_held()), (0, None));
    }

    #[test]
    fn a_gap_moves_past_the_hole_and_forgets_the_tail() {
        let mut a = Assembler::default();
        let mut out = Vec::new();
        feed(&mut a, 0, b"ab", &mut out);
        a.hold(5, b"fg");
        // Too many bytes waiting, say: the hole [2, 5) is a gap.
        assert_eq!(a.skip_to(a.first_held().unwrap()), Some((2, 3)));
        drain(&mut a, &mut out);
        assert_eq!(out, b"abfg");
        assert_eq!(a.skip_to(3), None);
        // Bytes before the gap are old now, and not compared.
        assert_eq!(a.old(0, b"zz").mismatch_at, None);
    }

    #[test]
    fn many_holes_are_all_held_until_filled() {
        let mut a = Assembler::default();
        let mut out = Vec::new();
        // Odd offsets 1..97 held, newest hole first.
        for i in (1..50u64).rev() {
            a.hold(i * 2 - 1, &[i as u8; 1]);
        }
        assert_eq!(a.held_bytes(), 49);
        for i in 0..50u64 {
            feed(&mut a, (i * 2) as i64, &[0xff; 1], &mut out);
        }
        assert_eq!(a.held_bytes(), 0);
        assert_eq!(a.next(), 99);
        assert_eq!(out.len(), 99);
    }
}
