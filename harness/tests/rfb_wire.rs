//! The RFB handshake's nom parsers: each message, encoded here field by
//! field (RFC 6143 §7.1-§7.3, rfbproto), parses back exactly with nothing
//! left over, and every strict prefix is Incomplete, never an error.

use proptest::prelude::*;
use tether::decode::rfb::MAX_TEXT;
use tether::decode::rfb::wire;

macro_rules! all_prefixes_incomplete {
    ($parse:expr, $bytes:expr) => {{
        let bytes: &[u8] = $bytes;
        for k in 0..bytes.len() {
            let r = $parse(&bytes[..k]);
            prop_assert!(
                matches!(r, Err(nom::Err::Incomplete(_))),
                "prefix {k} of {}: {r:?}",
                bytes.len()
            );
        }
    }};
}

fn text(s: &[u8]) -> Vec<u8> {
    [&(s.len() as u32).to_be_bytes()[..], s].concat()
}

proptest! {
    #[test]
    fn handshake_messages_round_trip(
        w in any::<u32>(), h in any::<u16>(), g in any::<u16>(),
        types in proptest::collection::vec(any::<u8>(), 0..8),
        subtypes in proptest::collection::vec(any::<u32>(), 0..6),
        name in proptest::collection::vec(any::<u8>(), 0..64),
        pf in proptest::collection::vec(any::<u8>(), 16),
        challenge in proptest::collection::vec(any::<u8>(), 16),
    ) {
        let word = w.to_be_bytes();
        prop_assert_eq!(wire::word(&word).unwrap(), (&[][..], w));
        all_prefixes_incomplete!(wire::word, &word);

        let version = b"RFB 003.008\n";
        prop_assert_eq!(wire::version(version).unwrap(), (&[][..], &version[..]));
        all_prefixes_incomplete!(wire::version, version);

        let offered = [&[types.len() as u8][..], &types].concat();
        prop_assert_eq!(wire::security_types(&offered).unwrap(), (&[][..], &types[..]));
        all_prefixes_incomplete!(wire::security_types, &offered);

        prop_assert_eq!(wire::challenge(&challenge).unwrap(), (&[][..], &challenge[..]));
        all_prefixes_incomplete!(wire::challenge, &challenge);

        let ard = [g.to_be_bytes(), h.to_be_bytes()].concat();
        prop_assert_eq!(wire::ard_params(&ard).unwrap(), (&[][..], (g, h)));
        all_prefixes_incomplete!(wire::ard_params, &ard);

        let mut sub = vec![subtypes.len() as u8];
        for t in &subtypes {
            sub.extend_from_slice(&t.to_be_bytes());
        }
        prop_assert_eq!(wire::vencrypt_subtypes(&sub).unwrap(), (&[][..], subtypes.clone()));
        all_prefixes_incomplete!(wire::vencrypt_subtypes, &sub);

        let named = text(&name);
        let (rest, t) = wire::text(&named).unwrap();
        prop_assert!(rest.is_empty());
        prop_assert_eq!((t.shown, t.skipped), (&name[..], 0));
        all_prefixes_incomplete!(wire::text, &named);

        let init = [&w.to_be_bytes()[..], &pf, &named].concat();
        let (rest, si) = wire::server_init(&init).unwrap();
        prop_assert!(rest.is_empty());
        prop_assert_eq!(
            (u32::from(si.width) << 16 | u32::from(si.height), si.pixel_format, si.name.shown),
            (w, &pf[..], &name[..])
        );
        all_prefixes_incomplete!(wire::server_init, &init);

        let caps = [g.to_be_bytes(), h.to_be_bytes(), g.to_be_bytes(), [0, 0]].concat();
        prop_assert_eq!(wire::tight_init_caps(&caps).unwrap(), (&[][..], (g, h, g)));
        all_prefixes_incomplete!(wire::tight_init_caps, &caps);

        let plain = [w.to_be_bytes(), (!w).to_be_bytes()].concat();
        prop_assert_eq!(wire::plain_lengths(&plain).unwrap(), (&[][..], (w, !w)));
        all_prefixes_incomplete!(wire::plain_lengths, &plain);
    }

    #[test]
    fn a_long_text_is_read_to_its_bound_and_the_rest_skipped(len in (MAX_TEXT as u32)..1_000_000) {
        let mut b = len.to_be_bytes().to_vec();
        b.resize(4 + MAX_TEXT, b'x');
        let (rest, t) = wire::text(&b).unwrap();
        prop_assert!(rest.is_empty());
        prop_assert_eq!((t.shown.len(), t.skipped), (MAX_TEXT, u64::from(len) - MAX_TEXT as u64));
        all_prefixes_incomplete!(wire::text, &b);
    }
}
