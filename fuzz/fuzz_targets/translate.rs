//! Fuzzes the dialect mapping engine with regional payloads.
//!
//! The first input byte picks the dialect (bits 0–1), the service (bit 2: verifyCode or
//! queryHealthInfo), the direction (bit 3) and the side the bytes come from (bit 4: the
//! dialect's wire form, or national JSON). The rest is the body: decoded with the dialect's
//! codec and read into the national model, then written back; or read as national JSON and
//! written in the dialect.
//!
//! The contract under test: any input gives `Ok` or a typed `Err` with a return code,
//! never a panic; whatever is read can be written back without a panic.
//!
//! Run: `cargo +nightly fuzz run translate fuzz/corpus/translate fuzz/seeds/translate -- -max_total_time=120`

#![no_main]

use std::sync::OnceLock;

use hutong::standard::{Direction, ServiceName, Standard};
use hutong::translate::{self, Dialect, codec};
use libfuzzer_sys::fuzz_target;

fn dialects() -> &'static [Dialect] {
    static D: OnceLock<Vec<Dialect>> = OnceLock::new();
    D.get_or_init(|| {
        let standard = Standard::embedded();
        [
            ("zhejiang", include_str!("../../config/regions/zhejiang.toml")),
            ("jiangsu", include_str!("../../config/regions/jiangsu.toml")),
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
    let ds = dialects();
    let d = &ds[usize::from(mode & 3) % ds.len()];
    let service = if mode & 4 == 0 { ServiceName::VerifyCode } else { ServiceName::QueryHealthInfo };
    let dir = if mode & 8 == 0 { Direction::Request } else { Direction::Response };
    let wire = if dir == Direction::Request { d.codec } else { d.response_codec };
    if mode & 16 == 0 {
        let Ok(v) = codec::decode(wire, body) else { return };
        match translate::to_national(d, service, dir, &v) {
            Ok(t) => {
                let _ = translate::to_dialect(d, service, dir, &t.body);
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
