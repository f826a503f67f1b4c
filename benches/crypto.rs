//! Throughput of hutong's national cryptography, side by side with the `sm-crypto` crate.
//!
//! Run it with
//!
//! ```text
//! cargo bench --bench crypto
//! HUTONG_BENCH_SECS=3 cargo bench --bench crypto   # longer runs, steadier numbers
//! ```
//!
//! It prints three tables and asserts nothing about speed. Rows of the first:
//!
//! - SM2 sign (SM3withSM2, DER signature) and verify of a 100-byte canonical string, with the
//!   user ID `1234567812345678` in both libraries and the same key pair (hutong's verifying
//!   key without a precomputed table, so through the `sm2` crate);
//! - SM2 encryption and decryption of a 16-byte SM4 key (GM/T 0009 DER ciphertexts in both);
//! - SM3 over 64 B and 16 KiB, HMAC-SM3 over 256 B (hutong only: `sm-crypto` has no HMAC);
//! - SM4-CBC with PKCS#7 padding, encrypt and decrypt of 1 KiB and 16 KiB;
//! - PHIC1 token issue, and PHIC1 verify through [`hutong::code::Verifier`] against a trust
//!   registry holding one issuer, with the ratio of PHIC1 verify to raw SM2 verify with a
//!   precomputed table, as the registry's keys have ("crypto efficiency": how much of a token
//!   check is the signature itself).
//!
//! Method: everything runs on one thread. For each row the batch size is calibrated by
//! doubling until one batch takes about 1/50 of the run time (this is also the first warm-up),
//! the operation is warmed up for a further tenth of the run time, then batches run until at
//! least `HUTONG_BENCH_SECS` seconds (default 1.0) have passed; that is done three times and
//! the median ops/s is reported. MB/s is 10^6 bytes of input (plaintext for the ciphers) per
//! second. Inputs and outputs go through [`std::hint::black_box`].
//!
//! A second table puts SM2 verification through the `sm2` crate (`ProjectivePoint::lincomb`,
//! what a key without a table uses) beside verification with a precomputed per-key table
//! (`VerifyingKey::precompute`, what the gateway's configured and trust-list keys use): same
//! key, message and signature, with the ratio, the time to build one key's table and the
//! table's memory.
//!
//! A third puts the `sm2` crate's SM2 signer beside hutong's (`crypto::sm2_sign`), after a
//! check that they give the same signature bytes.
//!
//! A fourth, shorter table puts hutong's SM4-CBC beside the RustCrypto `sm4` + `cbc` crates as
//! `Sm4Key` used them before it had its own cipher (key schedule on every call, IV from the OS
//! RNG, `IV‖ct` out): encrypt and decrypt of 512 B and 16 KiB, with the ratio.
//!
//! Before timing, the bench checks that the two libraries agree (each verifies the other's
//! signatures and decrypts the other's ciphertexts, SM3 digests match) and prints the result;
//! a mismatch is reported, not fatal.

// A benchmark binary: a failed setup step is a bug in the bench, and `expect` says which.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::thread;

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hutong::code::{
    Claims, CodeId, Colour, FixedClock, IssuerKey, Verifier, VerifierConfig, issue,
};
use hutong::crypto::{
    DEFAULT_DISTID, DecryptionKey, MacKey, SigningKey, Sm4Key, VerifyingKey, fill_random, hmac_sm3,
    sm3,
};
use hutong::trust::{Issuer, IssuerId, KeyStatus, Kid, TrustList, TrustRegistry, TrustedKey};
use sm_crypto::{sm2 as sc_sm2, sm3 as sc_sm3, sm4 as sc_sm4};

#[path = "crypto/harness.rs"]
mod harness;
use harness::{Bench, RUNS, W_NUM, W_OP, fmt_num, header, row, run_seconds};

/// The message both libraries sign: an envelope-style canonical string, exactly 100 bytes
/// (the array type makes the compiler check the length).
const MESSAGE: &[u8; 100] = b"appId=33000001&bizContent=eyJjaWQiOiIxIn0&nonce=9a7e2b6d8053f1c&signType=SM2&timestamp=1700000000123";

/// The SM2 user ID, spelled out for `sm-crypto` (hutong's keys carry [`DEFAULT_DISTID`]).
const USER_ID: &[u8] = b"1234567812345678";

/// The SM4 key that SM2 encryption wraps. Its first byte is non-zero: `sm-crypto` decrypts
/// through a big integer and would drop leading zero bytes.
const WRAPPED_KEY: [u8; 16] = *b"\x5a\x17hutong-bench-k";

fn main() {
    let (secs, secs_note) = run_seconds();
    let bench = Bench { secs };

    let nproc = thread::available_parallelism().map_or(0, |n| n.get());
    let profile = if cfg!(debug_assertions) {
        "debug assertions ON: not an optimised build, numbers are not representative"
    } else {
        "bench profile (inherits release: opt-level 3, lto = \"thin\", codegen-units = 4)"
    };
    let rule = "-".repeat(W_OP + 6 + 5 * (W_NUM + 1));

    println!("hutong national cryptography vs sm-crypto 0.1.9 -- cargo bench --bench crypto");
    println!("nproc: {nproc}   build: {profile}");
    println!(
        "single-threaded; per row: calibrate + warm up, then {RUNS} runs of >= {secs} s, \
         median ops/s{secs_note}"
    );
    println!(
        "SM2 message: {} B canonical string, user ID {DEFAULT_DISTID}; MB/s = 10^6 B/s of input",
        MESSAGE.len()
    );

    // ----------------------------------------------------------------------------------
    // Keys and fixtures, shared by both libraries.
    let sign_key = SigningKey::generate().expect("generate SM2 signing key");
    let verify_key = sign_key.verifying_key();
    let sc_sign_sk = sign_key.to_hex();
    let sc_sign_pk_full = verify_key.to_hex();
    // `sm-crypto` wants x‖y without the `04` prefix.
    let sc_sign_pk = &sc_sign_pk_full[2..];
    let sc_signer = sc_sm2::Sign::new_with_id(USER_ID, &sc_sign_sk);
    let sc_verifier = sc_sm2::Verify::new_with_id(USER_ID, sc_sign_pk);

    let dec_key = DecryptionKey::generate().expect("generate SM2 decryption key");
    let enc_key = dec_key.encryption_key();
    let sc_dec_sk = dec_key.to_hex();
    let sc_enc_pk_full = enc_key.to_hex();
    let sc_encryptor = sc_sm2::Encrypt::new(&sc_enc_pk_full);
    let sc_decryptor = sc_sm2::Decrypt::new(&sc_dec_sk);

    let sm4_key = Sm4Key::generate().expect("generate SM4 key");
    let sm4_iv = [0x42u8; 16];
    let sc_sm4 = sc_sm4::CryptSM4CBC::new(sm4_key.as_bytes(), &sm4_iv);

    let mac_key = MacKey::generate().expect("generate HMAC-SM3 key");

    let hutong_sig = sign_key.sign(MESSAGE);
    let sc_sig = sc_signer.sign_der(MESSAGE, true);
    let hutong_ct = enc_key.encrypt(&WRAPPED_KEY).expect("hutong SM2 encrypt");
    let sc_ct = sc_encryptor.encrypt_asna1(&WRAPPED_KEY);

    // ----------------------------------------------------------------------------------
    // Interoperability: the two libraries must be computing the same thing.
    let data_16k = pattern(16 * 1024);
    let checks = [
        (
            "sm-crypto verifies hutong sig",
            sc_verifier.verify_der(MESSAGE, &hutong_sig, true),
        ),
        (
            "hutong verifies sm-crypto sig",
            verify_key.verify(MESSAGE, &sc_sig).is_ok(),
        ),
        (
            "hutong decrypts sm-crypto SM2",
            dec_key
                .decrypt(&sc_ct)
                .is_ok_and(|p| p.as_slice() == WRAPPED_KEY),
        ),
        (
            "sm-crypto decrypts hutong SM2",
            sc_decryptor.decrypt_asna1(&hutong_ct) == WRAPPED_KEY,
        ),
        (
            "SM3 digests equal",
            sc_sm3::sm3_hash_raw(&data_16k) == sm3(&data_16k),
        ),
        ("SM4-CBC interoperates", sm4_interop(&sm4_key, &sm4_iv)),
    ];
    let summary: Vec<String> = checks
        .iter()
        .map(|(what, ok)| format!("{what}: {}", if *ok { "yes" } else { "NO" }))
        .collect();
    println!("interop: {}", summary[..3].join("; "));
    println!("         {}", summary[3..].join("; "));
    header(&rule, "sm-crypto", "hutong/sm-c");

    // ----------------------------------------------------------------------------------
    // SM2 signatures.
    let h_sign = bench.ops_per_sec(|| sign_key.sign(black_box(MESSAGE)));
    let s_sign = bench.ops_per_sec(|| sc_signer.sign_der(black_box(MESSAGE), true));
    row("SM2 sign (SM3withSM2, DER)", None, h_sign, Some(s_sign));

    let h_verify = bench.ops_per_sec(|| {
        verify_key
            .verify(black_box(MESSAGE), black_box(&hutong_sig))
            .is_ok()
    });
    let s_verify =
        bench.ops_per_sec(|| sc_verifier.verify_der(black_box(MESSAGE), black_box(&sc_sig), true));
    row("SM2 verify (DER)", None, h_verify, Some(s_verify));

    // ----------------------------------------------------------------------------------
    // SM2 encryption of a 16-byte key.
    let h_enc = bench.ops_per_sec(|| enc_key.encrypt(black_box(&WRAPPED_KEY)));
    let s_enc = bench.ops_per_sec(|| sc_encryptor.encrypt_asna1(black_box(&WRAPPED_KEY)));
    row("SM2 encrypt 16 B key (DER)", Some(16), h_enc, Some(s_enc));

    let h_dec = bench.ops_per_sec(|| dec_key.decrypt(black_box(&hutong_ct)));
    let s_dec = bench.ops_per_sec(|| sc_decryptor.decrypt_asna1(black_box(&sc_ct)));
    row(
        "SM2 decrypt 16 B key (DER) [1]",
        Some(16),
        h_dec,
        Some(s_dec),
    );

    // ----------------------------------------------------------------------------------
    // SM3 and HMAC-SM3.
    for size in [64, 16 * 1024] {
        let data = pattern(size);
        let h = bench.ops_per_sec(|| sm3(black_box(&data)));
        let s = bench.ops_per_sec(|| sc_sm3::sm3_hash_raw(black_box(&data)));
        row("SM3", Some(size), h, Some(s));
    }
    let data_256 = pattern(256);
    let h_mac = bench.ops_per_sec(|| hmac_sm3(black_box(mac_key.as_bytes()), black_box(&data_256)));
    row("HMAC-SM3", Some(256), h_mac, None);

    // ----------------------------------------------------------------------------------
    // SM4-CBC with PKCS#7.
    for size in [1024, 16 * 1024] {
        let plain = pattern(size);
        let h_ct = sm4_key.encrypt_cbc(&plain).expect("hutong SM4 encrypt");
        let s_ct = sc_sm4.encrypt_cbc(&plain);

        let h = bench.ops_per_sec(|| sm4_key.encrypt_cbc(black_box(&plain)));
        let s = bench.ops_per_sec(|| sc_sm4.encrypt_cbc(black_box(&plain)));
        row("SM4-CBC encrypt [2]", Some(size), h, Some(s));

        let h = bench.ops_per_sec(|| sm4_key.decrypt_cbc(black_box(&h_ct)));
        let s = bench.ops_per_sec(|| sc_sm4.decrypt_cbc(black_box(&s_ct)));
        row("SM4-CBC decrypt", Some(size), h, Some(s));
    }

    // ----------------------------------------------------------------------------------
    // PHIC1 tokens through the public API: issuer key, trust registry, verifier.
    let iat = 1_700_000_000;
    let issuer_id = IssuerId::parse("33000001").expect("issuer id");
    let kid = Kid::parse("zj-2023-1").expect("key id");
    let trusted = TrustedKey {
        kid: kid.clone(),
        public_key: verify_key.clone(),
        not_before: iat - 86_400,
        not_after: iat + 365 * 86_400,
        status: KeyStatus::Active,
    };
    let list = TrustList {
        version: 1,
        issued_at: iat - 3_600,
        issuers: vec![Issuer {
            region: issuer_id.region(),
            name: "浙江省健康码服务".to_owned(),
            id: issuer_id.clone(),
            keys: vec![trusted],
        }],
    };
    let registry = Arc::new(TrustRegistry::new(list).expect("trust registry"));
    let verifier = Verifier::new(
        registry,
        Arc::new(FixedClock::new(iat + 10)),
        VerifierConfig::default(),
    );
    let issuer_key = IssuerKey::new(issuer_id, kid, sign_key.clone());
    let claims = Claims {
        cid: CodeId::parse("0f1e2d3c4b5a69788796a5b4c3d2e1f0").expect("cid"),
        col: Colour::Green,
        iat,
        exp: iat + 300,
        nc: Some(CodeId::parse("00112233445566778899aabbccddeeff").expect("nc")),
    };
    let token = issue(&issuer_key, &claims).expect("issue PHIC1 token");
    verifier
        .verify_at(&token, iat + 10)
        .expect("the benchmark token verifies");

    let h_issue = bench.ops_per_sec(|| issue(&issuer_key, black_box(&claims)));
    row("PHIC1 issue", Some(token.len()), h_issue, None);
    let h_phic = bench.ops_per_sec(|| verifier.verify_at(black_box(&token), black_box(iat + 10)));
    row(
        "PHIC1 verify (1-issuer registry)",
        Some(token.len()),
        h_phic,
        None,
    );

    // The registry precomputes its keys, so a PHIC1 verify is compared with the table path.
    let table_key = verify_key.clone().precompute();
    let h_verify_table = bench.ops_per_sec(|| {
        table_key
            .verify(black_box(MESSAGE), black_box(&hutong_sig))
            .is_ok()
    });

    println!("{rule}");
    println!(
        "crypto efficiency: PHIC1 verify / raw SM2 verify (per-key table) = {:.1}% ({} / {} \
         op/s); PHIC1 issue / raw SM2 sign = {:.1}%",
        100.0 * h_phic / h_verify_table,
        fmt_num(h_phic),
        fmt_num(h_verify_table),
        100.0 * h_issue / h_sign,
    );
    println!("size: input bytes (for PHIC1, the token length); hutong/sm-c: ops/s ratio");
    println!(
        "[1] sm-crypto's SM2 decrypt does not check the C3 hash; hutong's does (and parses DER \
         strictly)"
    );
    println!(
        "[2] hutong draws a fresh IV from the OS RNG per message and writes IV||ct; \
         sm-crypto uses a fixed IV"
    );

    // ----------------------------------------------------------------------------------
    // SM2 verification: the crate's lincomb against a precomputed per-key table.
    sm2_table_comparison(&bench, &rule, &verify_key, &hutong_sig);

    // ----------------------------------------------------------------------------------
    // SM2 signing: the crate's signer against hutong's.
    sm2_sign_comparison(&bench, &rule, &sign_key);

    // ----------------------------------------------------------------------------------
    // SM4-CBC against the RustCrypto crates hutong used before its own cipher.
    println!();
    println!(
        "SM4-CBC vs RustCrypto sm4 0.6 + cbc 0.2 as Sm4Key used them before (key schedule per \
         call); both draw the IV from the OS RNG and write IV||ct"
    );
    let key = sm4_key.as_bytes();
    let probe = pattern(1000);
    let agree = rc_decrypt_cbc(
        key,
        &sm4_key.encrypt_cbc(&probe).expect("hutong SM4 encrypt"),
    )
    .is_some_and(|p| p == probe)
        && sm4_key
            .decrypt_cbc(&rc_encrypt_cbc(key, &probe))
            .is_ok_and(|p| p == probe);
    println!(
        "interop: each decrypts the other's 1000 B: {}",
        if agree { "yes" } else { "NO" }
    );
    header(&rule, "RustCrypto", "hutong/RC");
    for size in [512, 16 * 1024] {
        let plain = pattern(size);
        let h_ct = sm4_key.encrypt_cbc(&plain).expect("hutong SM4 encrypt");
        let r_ct = rc_encrypt_cbc(key, &plain);

        let h = bench.ops_per_sec(|| sm4_key.encrypt_cbc(black_box(&plain)));
        let r = bench.ops_per_sec(|| rc_encrypt_cbc(key, black_box(&plain)));
        row("SM4-CBC encrypt", Some(size), h, Some(r));

        let h = bench.ops_per_sec(|| sm4_key.decrypt_cbc(black_box(&h_ct)));
        let r = bench.ops_per_sec(|| rc_decrypt_cbc(key, black_box(&r_ct)));
        row("SM4-CBC decrypt", Some(size), h, Some(r));
    }
    println!("{rule}");
    println!("hutong/RC: ops/s ratio");
}

/// The crate-versus-table rows: verifications of `hutong_sig` over [`MESSAGE`] with
/// `plain_key` (no table, so the crate's path) and with the same key precomputed, timed one
/// right after the other, then the table build.
fn sm2_table_comparison(bench: &Bench, rule: &str, plain_key: &VerifyingKey, hutong_sig: &[u8]) {
    let table_key = plain_key.clone().precompute();
    let agree = plain_key.verify(MESSAGE, hutong_sig).is_ok()
        && table_key.verify(MESSAGE, hutong_sig).is_ok()
        && plain_key.verify(&MESSAGE[1..], hutong_sig).is_err()
        && table_key.verify(&MESSAGE[1..], hutong_sig).is_err();
    let verify_with = |key: &VerifyingKey| {
        bench.ops_per_sec(|| {
            key.verify(black_box(MESSAGE), black_box(hutong_sig))
                .is_ok()
        })
    };
    let crate_rate = verify_with(plain_key);
    let table_rate = verify_with(&table_key);
    let builds = bench.ops_per_sec(|| plain_key.clone().precompute());
    let bytes = table_key.table_bytes();

    println!();
    println!(
        "SM2 verify: the sm2 crate (ProjectivePoint::lincomb) vs a precomputed per-key table \
         (VerifyingKey::precompute); same key, message and signature"
    );
    println!(
        "agreement: both accept the signature and reject it over another message: {}",
        if agree { "yes" } else { "NO" }
    );
    println!("{rule}");
    println!("{:<W_OP$} {:>5} {:>W_NUM$}", "operation", "size", "op/s");
    println!("{rule}");
    for (op, rate) in [
        ("SM2 verify, crate (lincomb)", crate_rate),
        ("SM2 verify, per-key table", table_rate),
    ] {
        println!("{op:<W_OP$} {:>5} {:>W_NUM$}", MESSAGE.len(), fmt_num(rate));
    }
    println!("{rule}");
    println!(
        "ratio per-key table / crate: {:.2}x; table build: {:.3} ms per key ({} builds/s); \
         table memory: {bytes} B ({:.1} KiB) per key, plus one shared table of the same size \
         for G",
        table_rate / crate_rate,
        1e3 / builds,
        fmt_num(builds),
        bytes as f64 / 1024.0,
    );
}

/// The signer rows: signatures of [`MESSAGE`] by the `sm2` crate's signer
/// (`SigningKey::sign_with_crate`: an inversion of `1 + d` and one of `[k]G`'s `Z` per
/// signature) and by hutong's (`SigningKey::sign`: `(1 + d)^-1` kept per key, `[k]G` on its
/// own table with a Fermat chain), timed one right after the other, after a check that the
/// two signatures are the same bytes.
fn sm2_sign_comparison(bench: &Bench, rule: &str, key: &SigningKey) {
    let agree = (0..64u8).all(|i| {
        let msg = [MESSAGE.as_slice(), &[i]].concat();
        key.sign_with_crate(&msg, &[]) == Some(key.sign(&msg))
    });
    let crate_rate = bench.ops_per_sec(|| key.sign_with_crate(black_box(MESSAGE), &[]));
    let ours = bench.ops_per_sec(|| key.sign(black_box(MESSAGE)));

    println!();
    println!(
        "SM2 sign: the sm2 crate's signer vs hutong's (crypto::sm2_sign); same key and message"
    );
    println!(
        "agreement: the same signature bytes for 64 messages: {}",
        if agree { "yes" } else { "NO" }
    );
    println!("{rule}");
    println!("{:<W_OP$} {:>5} {:>W_NUM$}", "operation", "size", "op/s");
    println!("{rule}");
    for (op, rate) in [("SM2 sign, crate", crate_rate), ("SM2 sign, hutong", ours)] {
        println!("{op:<W_OP$} {:>5} {:>W_NUM$}", MESSAGE.len(), fmt_num(rate));
    }
    println!("{rule}");
    println!("ratio hutong / crate: {:.2}x", ours / crate_rate);
}

/// SM4-CBC-PKCS#7 encryption as `Sm4Key::encrypt_cbc` did it over RustCrypto: a fresh IV from
/// the OS RNG, a key schedule per call, `IV‖ct` out.
fn rc_encrypt_cbc(key: &[u8; 16], plain: &[u8]) -> Vec<u8> {
    let mut iv = [0u8; 16];
    fill_random(&mut iv).expect("OS RNG");
    let body = cbc::Encryptor::<sm4::Sm4>::new(&(*key).into(), &iv.into())
        .encrypt_padded_vec::<Pkcs7>(plain);
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&iv);
    out.extend_from_slice(&body);
    out
}

/// The matching decryption of `IV‖ct`, as `Sm4Key::decrypt_cbc` did it; `None` on any error.
fn rc_decrypt_cbc(key: &[u8; 16], data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 32 || data.len() % 16 != 0 {
        return None;
    }
    let (iv, body) = data.split_at(16);
    let mut iv_block = [0u8; 16];
    iv_block.copy_from_slice(iv);
    cbc::Decryptor::<sm4::Sm4>::new(&(*key).into(), &iv_block.into())
        .decrypt_padded_vec::<Pkcs7>(body)
        .ok()
}

/// `len` bytes of a fixed, non-trivial pattern.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect()
}

/// Whether each library decrypts the other's SM4-CBC ciphertext of 1000 bytes. hutong's wire
/// form is `IV‖ct`; `sm-crypto` takes the IV separately.
fn sm4_interop(key: &Sm4Key, iv: &[u8; 16]) -> bool {
    let plain = pattern(1000);
    let sc = sc_sm4::CryptSM4CBC::new(key.as_bytes(), iv);
    let mut from_sc = iv.to_vec();
    from_sc.extend_from_slice(&sc.encrypt_cbc(&plain));
    let hutong_reads_sc = key.decrypt_cbc(&from_sc).is_ok_and(|p| p == plain);

    let from_hutong = key.encrypt_cbc(&plain).expect("hutong SM4 encrypt");
    let (h_iv, h_body) = from_hutong.split_at(16);
    let sc_reads_hutong =
        sc_sm4::CryptSM4CBC::new(key.as_bytes(), h_iv).decrypt_cbc(h_body) == plain;
    hutong_reads_sc && sc_reads_hutong
}
