//! The RFB handshake's nom parsers: each message, encoded here field by
//! field (RFC 6143 §7.1-§7.3, rfbproto), parses back exactly with nothing
//! left over, and every strict prefix is Incomplete, never an error.

mod support;

use proptest::prelude::*;
use support::all_prefixes_incomplete;
use tether::capture::generate::rfb::push_compact_len;
use tether::decode::rfb::MAX_TEXT;
use tether::decode::rfb::pixel::PixelFormat;
use tether::decode::rfb::wire;
use tether::decode::rfb::wire::rect::{self, HextileTile, RectHeader, TightRect};

/// A PIXEL_FORMAT from arbitrary field values, and its 16 bytes as
/// encoded by `PixelFormat::encode` (flags as 0 or 1, zero padding).
fn pixel_format(raw: &[u8]) -> (PixelFormat, Vec<u8>) {
    let be16 = |at: usize| u16::from_be_bytes([raw[at], raw[at + 1]]);
    let pf = PixelFormat {
        bits_per_pixel: raw[0],
        depth: raw[1],
        big_endian: raw[2] & 1 == 1,
        true_colour: raw[3] & 1 == 1,
        red_max: be16(4),
        green_max: be16(6),
        blue_max: be16(8),
        red_shift: raw[10],
        green_shift: raw[11],
        blue_shift: raw[12],
    };
    (pf, pf.encode().to_vec())
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

        let (pf, pf_bytes) = pixel_format(&pf);
        let init = [&w.to_be_bytes()[..], &pf_bytes, &named].concat();
        let (rest, si) = wire::server_init(&init).unwrap();
        prop_assert!(rest.is_empty());
        prop_assert_eq!(
            (u32::from(si.width) << 16 | u32::from(si.height), si.pixel_format, si.name.shown),
            (w, pf, &name[..])
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

        let (pf, pf_bytes) = pixel_format(&pf);
        let spf = [&[0u8, 0, 0, 0][..], &pf_bytes].concat();
        prop_assert_eq!(wire::set_pixel_format(&spf).unwrap(), (&[][..], pf));
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

    #[test]
    fn rectangle_parts_round_trip(
        x in any::<u16>(), y in any::<u16>(), w in any::<u16>(), h in any::<u16>(),
        encoding in any::<i32>(), k in any::<u32>(), byte in any::<u8>(),
        bpp in prop::sample::select(vec![1u64, 2, 4]),
        mask in 0u8..32, run in 1u64..2000, len in 0u64..(1 << 22),
        tile in (1u64..=16, 1u64..=16),
    ) {
        let head = [x.to_be_bytes(), y.to_be_bytes(), w.to_be_bytes(), h.to_be_bytes()].concat();
        let head = [&head[..], &encoding.to_be_bytes()].concat();
        let r = RectHeader { x, y, w, h, encoding };
        prop_assert_eq!(rect::rect_header(&head).unwrap(), (&[][..], r));
        all_prefixes_incomplete!(rect::rect_header, &head);

        let rre = [&k.to_be_bytes()[..], &vec![byte; bpp as usize]].concat();
        prop_assert_eq!(rect::rre_head(bpp)(&rre).unwrap(), (&[][..], k));
        all_prefixes_incomplete!(rect::rre_head(bpp), &rre);

        let word = k.to_be_bytes();
        prop_assert_eq!(rect::data_length(&word).unwrap(), (&[][..], k));
        all_prefixes_incomplete!(rect::data_length, &word);
        let h264 = [k.to_be_bytes(), (!k).to_be_bytes()].concat();
        prop_assert_eq!(rect::h264_head(&h264).unwrap(), (&[][..], (k, !k)));
        all_prefixes_incomplete!(rect::h264_head, &h264);
        let eds = [byte, 0, 0, 0];
        prop_assert_eq!(rect::extended_desktop_size_head(&eds).unwrap(), (&[][..], byte));
        all_prefixes_incomplete!(rect::extended_desktop_size_head, &eds);
        let cwa = encoding.to_be_bytes();
        prop_assert_eq!(rect::cursor_with_alpha_head(&cwa).unwrap(), (&[][..], encoding));
        all_prefixes_incomplete!(rect::cursor_with_alpha_head, &cwa);
        let vmw = [byte, 0];
        prop_assert_eq!(rect::vmware_cursor_head(&vmw).unwrap(), (&[][..], byte));
        all_prefixes_incomplete!(rect::vmware_cursor_head, &vmw);

        // A Hextile tile header: mask, the colours it announces, the count.
        let (tw, th) = tile;
        let mut hex = vec![mask];
        let mut payload = tw * th * bpp;
        if mask & 1 == 0 {
            let colours = u64::from(mask & 2 != 0) + u64::from(mask & 4 != 0);
            hex.extend(vec![0xaa; (colours * bpp) as usize]);
            let subrects = if mask & 8 != 0 { hex.push(byte); u64::from(byte) } else { 0 };
            payload = subrects * if mask & 16 != 0 { bpp + 2 } else { 2 };
        }
        let parsed = rect::hextile_tile(bpp, tw, th)(&hex).unwrap();
        prop_assert_eq!(parsed, (&[][..], HextileTile { mask, payload }));
        all_prefixes_incomplete!(rect::hextile_tile(bpp, tw, th), &hex);

        // A run of n: (n - 1) as 255s, then the remainder.
        let mut runs = vec![255u8; ((run - 1) / 255) as usize];
        runs.push(((run - 1) % 255) as u8);
        prop_assert_eq!(rect::run_length(&runs).unwrap(), (&[][..], run));
        all_prefixes_incomplete!(rect::run_length, &runs);
        let plain = [&vec![byte; bpp as usize][..], &runs].concat();
        prop_assert_eq!(rect::trle_plain_run(bpp)(&plain).unwrap(), (&[][..], run));
        all_prefixes_incomplete!(rect::trle_plain_run(bpp), &plain);
        let palette_run = [&[0x80 | (byte & 0x7f)][..], &runs].concat();
        prop_assert_eq!(rect::trle_palette_run(&palette_run).unwrap(), (&[][..], (byte & 0x7f, run)));
        all_prefixes_incomplete!(rect::trle_palette_run, &palette_run);
        let single = [byte & 0x7f];
        prop_assert_eq!(rect::trle_palette_run(&single).unwrap(), (&[][..], (byte & 0x7f, 1)));

        let mut compact = Vec::new();
        push_compact_len(&mut compact, len as usize);
        prop_assert_eq!(rect::compact_length(&compact).unwrap(), (&[][..], len));
        all_prefixes_incomplete!(rect::compact_length, &compact);

        // Tight: fill, JPEG, and basic with the palette filter.
        let (tw16, th16) = (u64::from(w % 64) + 1, u64::from(h % 64) + 1);
        let tight = |b: &[u8]| -> Result<(usize, TightRect), ()> { rect::tight_rect(tw16, th16, bpp, false)(b).map(|(rest, t)| (rest.len(), t)).map_err(|_| ()) };
        prop_assert_eq!(tight(&[0x80]), Ok((0, TightRect::Fill)));
        let jpeg = [&[0x90][..], &compact].concat();
        prop_assert_eq!(tight(&jpeg), Ok((0, TightRect::Image { len })));
        all_prefixes_incomplete!(rect::tight_rect(tw16, th16, bpp, false), &jpeg);
        prop_assert_eq!(tight(&[0xa0]), Ok((0, TightRect::BadControl(0xa0))));
        let colours = u64::from(byte) + 1;
        let data = if colours == 2 { tw16.div_ceil(8) * th16 } else { tw16 * th16 };
        let mut basic = vec![0x40, 1, byte];
        basic.extend(vec![0x55; (colours * bpp) as usize]);
        if data >= 12 {
            push_compact_len(&mut basic, len as usize);
        }
        let expect = TightRect::Basic { filter: 1, data: if data >= 12 { len } else { data } };
        prop_assert_eq!(tight(&basic), Ok((0, expect)));
        all_prefixes_incomplete!(rect::tight_rect(tw16, th16, bpp, false), &basic);
    }
}
