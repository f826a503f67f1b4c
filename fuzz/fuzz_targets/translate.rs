//! Fuzzes the dialect mapping engine with regional payloads.
//!
//! The first input byte picks the dialect (bits 0–2, of the six shipped), the service
//! (bit 3: verifyCode or queryHealthInfo; generateCode for a dialect without either), the
//! direction (bit 4) and the side the bytes come from (bit 5: the dialect's wire form —
//! JSON, form or XML — or national JSON). Bit 6 set feeds the body to the XML codec alone
//! and writes back what it read. The rest is the body: decoded with the dialect's codec and
//! read into the national model, then written back and encoded; or read as national JSON
//! and written in the dialect.
//!
//! Decoded wire bodies also go through `holder_id` and `sign::one_time_value`. The
//! contract under test: any input gives `Ok` or a typed `Err` with a return code, never a
//! panic; whatever is read can be written back without a panic; a document the
//! XML codec read encodes again.
//!
//! Run: `cargo +nightly fuzz run translate fuzz/corpus/translate fuzz/seeds/translate -- -max_total_time=120`

#![no_main]

use std::sync::OnceLock;

use hutong::standard::{Direction, ServiceName, Standard};
use hutong::translate::{self, Codec, Dialect, codec};
use libfuzzer_sys::fuzz_target;

fn dialects() -> &'static [Dialect] {
    static D: OnceLock<Vec<Dialect>> = OnceLock::new();
    D.get_or_init(|| {
        let standard = Standard::embedded();
        [
            ("zhejiang", include_str!("../../config/regions/zhejiang.toml")),
            ("jiangsu", include_str!("../../config/regions/jiangsu.toml")),
            ("beijing", include_str!("../../config/regions/beijing.toml")),
            ("hubei", include_str!("../../config/regions/hubei.toml")),
            ("anhui", include_str!("../../config/regions/anhui.toml")),
            ("guangdong", include_str!("../../config/regions/guangdong.toml")),
        ]
        .into_iter()
        .map(|(id, text)| Dialect::from_toml(id, id, text, &standard).expect("shipped dialects load"))
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    if mode & 64 != 0 {
        if let Ok(v) = codec::decode(Codec::Xml, body) {
            let again = codec::encode(Codec::Xml, &v).expect("a document read encodes again");
            codec::decode(Codec::Xml, &again).expect("and reads again");
        }
        return;
    }
    let ds = dialects();
    let d = &ds[usize::from(mode & 7) % ds.len()];
    let wanted = if mode & 8 == 0 { ServiceName::VerifyCode } else { ServiceName::QueryHealthInfo };
    let service = if d.service(wanted).is_some() { wanted } else { ServiceName::GenerateCode };
    let dir = if mode & 16 == 0 { Direction::Request } else { Direction::Response };
    let wire = if dir == Direction::Request { d.codec } else { d.response_codec };
    if mode & 32 == 0 {
        let Ok(v) = codec::decode(wire, body) else { return };
        // What the gateway reads of a message beside its translation: the holder's full
        // ID (answers), and the one-time value an ingress request's signature covers.
        let _ = translate::holder_id(d, service, dir, &v);
        let _ = translate::sign::one_time_value(&d.signing, &v, &[], 1_795_393_805);
        match translate::to_national(d, service, dir, &v) {
            Ok(t) => {
                if let Ok(back) = translate::to_dialect(d, service, dir, &t.body) {
                    let _ = codec::encode(wire, &back.body);
                }
            }
            Err(e) => {
                let _ = e.return_code(dir);
            }
        }
    } else if let Ok(v) = serde_json::from_slice(body) {
        if let Ok(t) = translate::to_dialect(d, service, dir, &v) {
            let _ = codec::encode(wire, &t.body);
        }
    }
    let _ = translate::recognise(ds, &String::from_utf8_lossy(body));
});
