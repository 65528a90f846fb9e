//! The RFB handshake's nom parsers: each message, encoded here field by
//! field (RFC 6143 §7.1-§7.3, rfbproto), parses back exactly with nothing
//! left over, and every strict prefix is Incomplete, never an error.

mod support;

use proptest::prelude::*;
use support::all_prefixes_incomplete;
use tether::decode::rfb::MAX_TEXT;
use tether::decode::rfb::wire;

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

    #[test]
    fn data_stage_messages_round_trip(
        a in any::<u16>(), b in any::<u16>(), c in any::<u16>(), d in any::<u16>(),
        k in any::<u32>(), flag in any::<bool>(), byte in any::<u8>(),
        encodings in proptest::collection::vec(any::<i32>(), 0..20),
        pf in proptest::collection::vec(any::<u8>(), 16),
    ) {
        let fu = [&[0u8, 0][..], &a.to_be_bytes()].concat();
        prop_assert_eq!(wire::framebuffer_update(&fu).unwrap(), (&[][..], a));
        all_prefixes_incomplete!(wire::framebuffer_update, &fu);

        let cme = [&[1u8, 0][..], &a.to_be_bytes(), &b.to_be_bytes()].concat();
        prop_assert_eq!(wire::set_colour_map_entries(&cme).unwrap(), (&[][..], (a, b)));
        all_prefixes_incomplete!(wire::set_colour_map_entries, &cme);

        let cut = [&[3u8, 0, 0, 0][..], &k.to_be_bytes()].concat();
        prop_assert_eq!(wire::cut_text(&cut).unwrap(), (&[][..], k));
        all_prefixes_incomplete!(wire::cut_text, &cut);

        let fence = [&[248u8, 0, 0, 0][..], &k.to_be_bytes(), &[byte]].concat();
        prop_assert_eq!(wire::fence(&fence).unwrap(), (&[][..], (k, byte)));
        all_prefixes_incomplete!(wire::fence, &fence);

        // gii's length is in the byte order its subtype's top bit names.
        let be = [&[253u8, 0x80 | (byte & 0x7f)][..], &a.to_be_bytes()].concat();
        prop_assert_eq!(wire::gii(&be).unwrap(), (&[][..], (byte & 0x7f, a)));
        let le = [&[253u8, byte & 0x7f][..], &a.to_le_bytes()].concat();
        prop_assert_eq!(wire::gii(&le).unwrap(), (&[][..], (byte & 0x7f, a)));
        all_prefixes_incomplete!(wire::gii, &be);

        let spf = [&[0u8, 0, 0, 0][..], &pf].concat();
        prop_assert_eq!(wire::set_pixel_format(&spf).unwrap(), (&[][..], &pf[..]));
        all_prefixes_incomplete!(wire::set_pixel_format, &spf);

        let mut se = vec![2u8, 0];
        se.extend_from_slice(&(encodings.len() as u16).to_be_bytes());
        for e in &encodings {
            se.extend_from_slice(&e.to_be_bytes());
        }
        prop_assert_eq!(wire::set_encodings(&se).unwrap(), (&[][..], encodings.clone()));
        all_prefixes_incomplete!(wire::set_encodings, &se);

        let req = [&[3u8, u8::from(flag)][..], &a.to_be_bytes(), &b.to_be_bytes(), &c.to_be_bytes(), &d.to_be_bytes()].concat();
        prop_assert_eq!(wire::area_request(&req).unwrap(), (&[][..], (flag, [a, b, c, d])));
        all_prefixes_incomplete!(wire::area_request, &req);

        let key = [&[4u8, u8::from(flag), 0, 0][..], &k.to_be_bytes()].concat();
        prop_assert_eq!(wire::key_event(&key).unwrap(), (&[][..], (flag, k)));
        all_prefixes_incomplete!(wire::key_event, &key);

        let ptr = [&[5u8, byte][..], &a.to_be_bytes(), &b.to_be_bytes()].concat();
        prop_assert_eq!(wire::pointer_event(&ptr, false).unwrap(), (&[][..], (byte, a, b)));
        all_prefixes_incomplete!(|i| wire::pointer_event(i, false), &ptr);
        let ext = [&ptr[..], &[1]].concat();
        prop_assert_eq!(wire::pointer_event(&ext, true).unwrap(), (&[][..], (byte, a, b)));
        all_prefixes_incomplete!(|i| wire::pointer_event(i, true), &ext);

        let sds = [&[251u8, 0][..], &a.to_be_bytes(), &b.to_be_bytes(), &[byte, 0]].concat();
        prop_assert_eq!(wire::set_desktop_size(&sds).unwrap(), (&[][..], (a, b, byte)));
        all_prefixes_incomplete!(wire::set_desktop_size, &sds);

        let qk = [&[255u8, 0][..], &u16::from(flag).to_be_bytes(), &k.to_be_bytes(), &(!k).to_be_bytes()].concat();
        prop_assert_eq!(wire::qemu_extended_key(&qk).unwrap(), (&[][..], (flag, k, !k)));
        all_prefixes_incomplete!(wire::qemu_extended_key, &qk);

        let qs = [&[255u8, byte][..], &a.to_be_bytes()].concat();
        prop_assert_eq!(wire::qemu_server(&qs).unwrap(), (&[][..], (byte, a)));
        all_prefixes_incomplete!(wire::qemu_server, &qs);
        let qa = [&qs[..], &k.to_be_bytes()].concat();
        prop_assert_eq!(wire::qemu_audio_data(&qa).unwrap(), (&[][..], k));
        all_prefixes_incomplete!(wire::qemu_audio_data, &qa);
    }
}
