//! UTF-8 validation over a message that arrives in pieces (6455 §5.6,
//! §8.1): a code point may be split across frames or TCP segments, and an
//! invalid byte should be reported as soon as it arrives (Autobahn 6.4).

/// Validator state between pieces: how many continuation bytes are still
/// owed and the allowed range of the next one (which excludes overlongs,
/// surrogates and code points above U+10FFFF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utf8Stream {
    need: u8,
    lo: u8,
    hi: u8,
}

impl Default for Utf8Stream {
    fn default() -> Self {
        Utf8Stream {
            need: 0,
            lo: 0x80,
            hi: 0xBF,
        }
    }
}

impl Utf8Stream {
    /// Feeds the next piece. `Err(i)`: byte `i` of this piece makes the
    /// message invalid whatever follows.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), usize> {
        let mut i = 0;
        // Finish a code point left open by the previous piece.
        while self.need > 0 && i < bytes.len() {
            self.step(bytes[i]).map_err(|_| i)?;
            i += 1;
        }
        if i == bytes.len() {
            return Ok(());
        }
        // Bulk of the piece: std's validator; from where it stops, the byte
        // state machine finds the exact failing byte (std points at the
        // start of the bad sequence) or keeps the incomplete tail's state.
        match std::str::from_utf8(&bytes[i..]) {
            Ok(_) => Ok(()),
            Err(e) => {
                let tail = i + e.valid_up_to();
                for (j, &b) in bytes[tail..].iter().enumerate() {
                    self.step(b).map_err(|_| tail + j)?;
                }
                Ok(())
            }
        }
    }

    /// The message ended: valid only if no code point is left open.
    pub fn is_complete(&self) -> bool {
        self.need == 0
    }

    fn step(&mut self, b: u8) -> Result<(), ()> {
        if self.need > 0 {
            if b < self.lo || b > self.hi {
                return Err(());
            }
            self.need -= 1;
            self.lo = 0x80;
            self.hi = 0xBF;
            return Ok(());
        }
        let (need, lo, hi) = match b {
            0x00..=0x7F => return Ok(()),
            0xC2..=0xDF => (1, 0x80, 0xBF),
            0xE0 => (2, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
            0xED => (2, 0x80, 0x9F),
            0xF0 => (3, 0x90, 0xBF),
            0xF1..=0xF3 => (3, 0x80, 0xBF),
            0xF4 => (3, 0x80, 0x8F),
            _ => return Err(()),
        };
        self.need = need;
        self.lo = lo;
        self.hi = hi;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(b: &[u8]) -> bool {
        let mut v = Utf8Stream::default();
        v.feed(b).is_ok() && v.is_complete()
    }

    fn bytewise(b: &[u8]) -> bool {
        let mut v = Utf8Stream::default();
        b.iter().all(|x| v.feed(std::slice::from_ref(x)).is_ok()) && v.is_complete()
    }

    #[test]
    fn agrees_with_std_on_the_kuhn_style_cases() {
        let cases: &[&[u8]] = &[
            b"",
            b"Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!",
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
            b"\xf0\x90\x80\x80",
            b"\xf4\x8f\xbf\xbf",
            b"\xf4\x90\x80\x80", // above U+10FFFF
            b"\xed\x9f\xbf",     // U+D7FF
            b"\xed\xa0\x80",     // surrogate
            b"\xc0\xaf",         // overlong
            b"\xe0\x80\xaf",     // overlong
            b"\xf8\x88\x80\x80\x80",
            b"\x80",
            b"\xc2",
            b"\xef\xbf\xbe", // non-character, valid
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
        ];
        for c in cases {
            let want = std::str::from_utf8(c).is_ok();
            assert_eq!(whole(c), want, "{c:x?}");
            assert_eq!(bytewise(c), want, "{c:x?}");
        }
    }

    #[test]
    fn reports_the_first_bad_byte_of_the_piece_that_has_it() {
        let mut v = Utf8Stream::default();
        assert_eq!(v.feed(b"ab\xf4"), Ok(()));
        // 0x90 after F4 would be above U+10FFFF: fail right there.
        assert_eq!(v.feed(b"\x90\x80\x80"), Err(0));
        let mut v = Utf8Stream::default();
        assert_eq!(v.feed(b"abc\xffdef"), Err(3));
        // Whole or split, the failing byte is the one after F4.
        let mut v = Utf8Stream::default();
        assert_eq!(v.feed(b"ab\xf4\x90\x80"), Err(3));
    }
}
