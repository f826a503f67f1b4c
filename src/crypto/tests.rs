//! Known-answer tests from the standards, round trips, and malformed input that must give an
//! error and never a panic. OpenSSL interop lives in the integration tests (`tests/openssl.rs`).

use proptest::prelude::*;

use super::*;

pub(super) fn unhex(s: &str) -> Vec<u8> {
    let mut out = vec![0u8; s.len() / 2];
    decode_hex_into(s, &mut out, "test").unwrap();
    out
}

// ---------------------------------------------------------------------------------------------
// Known answers.

/// GB/T 32905-2016 Appendix A, example 1.
#[test]
fn sm3_of_abc_matches_gbt_32905() {
    assert_eq!(
        to_hex(&sm3(b"abc")),
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    );
}

/// GB/T 32905-2016 Appendix A, example 2 (512 bits of "abcd").
#[test]
fn sm3_of_64_bytes_matches_gbt_32905() {
    assert_eq!(
        to_hex(&sm3("abcd".repeat(16).as_bytes())),
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    );
}

/// Values from OpenSSL 3.0 `openssl mac -digest SM3 HMAC`, with the keys and messages of
/// RFC 4231 test cases 1, 2 and 6 (the last has a key longer than one block).
#[test]
fn hmac_sm3_matches_openssl() {
    let cases: [(Vec<u8>, &[u8], &str); 3] = [
        (
            vec![0x0b; 20],
            b"Hi There",
            "51b00d1fb49832bfb01c3ce27848e59f871d9ba938dc563b338ca964755cce70",
        ),
        (
            b"Jefe".to_vec(),
            b"what do ya want for nothing?",
            "2e87f1d16862e6d964b50a5200bf2b10b764faa9680a296a2405f24bec39f882",
        ),
        (
            vec![0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
            "b4fd844e13342002f0b2e0690ea7741f1497d993a70494cea601e657bedf67a0",
        ),
    ];
    for (key, msg, want) in cases {
        let tag = hmac_sm3(&key, msg);
        assert_eq!(to_hex(&tag), want);
        assert!(hmac_sm3_verify(&key, msg, &tag));
    }
}

#[test]
fn hmac_sm3_verify_rejects_wrong_tags() {
    let tag = hmac_sm3(b"0123456789abcdef", b"data");
    let mut flipped = tag;
    flipped[31] ^= 1;
    assert!(!hmac_sm3_verify(b"0123456789abcdef", b"data", &flipped));
    assert!(!hmac_sm3_verify(b"0123456789abcdef", b"data", &tag[..31]));
    assert!(!hmac_sm3_verify(b"0123456789abcdef", b"data", &[]));
    assert!(!hmac_sm3_verify(b"0123456789abcdeF", b"data", &tag));
    assert!(!hmac_sm3_verify(b"0123456789abcdef", b"Data", &tag));
}

#[test]
fn mac_key_refuses_short_keys() {
    assert_eq!(
        MacKey::from_bytes(&[0; 15]).unwrap_err(),
        CryptoError::MacKeyTooShort
    );
    let key = MacKey::from_bytes(&[7; 16]).unwrap();
    assert!(key.verify(b"m", &key.tag(b"m")));
    assert_eq!(format!("{key:?}"), "MacKey(..)");
}

#[test]
fn mac_key_tags_equal_hmac_of_its_bytes_message_after_message() {
    // A block-sized key, a shorter one and a longer one (hashed first); each tag starts from
    // the keyed state afresh, so the second message's tag does not depend on the first.
    for len in [16, 64, 65, 131] {
        let bytes: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5c).collect();
        let key = MacKey::from_bytes(&bytes).unwrap();
        for msg in [&b""[..], b"abc", &[0x36; 200][..], b"abc"] {
            assert_eq!(key.tag(msg), hmac_sm3(&bytes, msg), "key of {len} bytes");
            assert!(key.verify(msg, &hmac_sm3(&bytes, msg)));
            assert!(!key.verify(msg, &hmac_sm3(&bytes, b"other")));
        }
        assert_eq!(key.clone().as_bytes(), &bytes[..]);
    }
}

/// GB/T 32907-2016 Appendix A, example 1: key = plaintext = 0123456789abcdeffedcba9876543210.
/// With a zero IV the first CBC block is the raw block encryption.
#[test]
fn sm4_block_matches_gbt_32907() {
    let key = Sm4Key::from_hex("0123456789abcdeffedcba9876543210").unwrap();
    let plain = unhex("0123456789abcdeffedcba9876543210");
    let out = key.encrypt_cbc_with_iv(&[0; 16], &plain);
    assert_eq!(
        out.len(),
        16 + 32,
        "IV, the block, and a full padding block"
    );
    assert_eq!(to_hex(&out[16..32]), "681edf34d206965e86b3e94f536e4246");
    assert_eq!(key.decrypt_cbc(&out).unwrap(), plain);
}

/// The SM2 private key of GB/T 32918.5-2017 Appendix A (GM/T 0003.5-2012 A.2).
pub(super) const GBT_PRIVATE: &str =
    "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8";
pub(super) const GBT_PUBLIC: &str = "0409f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020\
                          ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13";

/// The same private key as OpenSSL 3.0 writes it (`openssl pkey`), PKCS#8 without the
/// optional public key.
const GBT_PRIVATE_PEM_OPENSSL: &str = "-----BEGIN PRIVATE KEY-----
MEECAQAwEwYHKoZIzj0CAQYIKoEcz1UBgi0EJzAlAgEBBCA5RSCPeyFEsT8244rG
05+ViJOTaShgtRpC+4HvTffFuA==
-----END PRIVATE KEY-----
";

/// Its public key from `openssl pkey -pubout`.
const GBT_PUBLIC_PEM_OPENSSL: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoEcz1UBgi0DQgAECfnfMR5UIaFQ3X0WHkvFxnIXn60Y
M/wHa7CP81bzUCDM6kkM4md1pS3G6nGMwapgCu0F+/NeCEpmMvYHLamtEw==
-----END PUBLIC KEY-----
";

/// GB/T 32918.5-2017 Appendix A: the signature of "message digest" with ID
/// 1234567812345678, r and s as DER.
#[test]
fn sm2_signature_matches_gbt_32918() {
    let sig = unhex(
        "3046022100f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3\
         022100b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa",
    );
    let vk = VerifyingKey::from_hex(GBT_PUBLIC).unwrap();
    vk.verify(b"message digest", &sig).unwrap();
    assert_eq!(
        vk.verify(b"message digesT", &sig).unwrap_err(),
        CryptoError::BadSignature
    );
    // The private key derives that public key, and signs verifiably with it.
    let sk = SigningKey::from_hex(GBT_PRIVATE).unwrap();
    assert_eq!(sk.verifying_key(), vk);
    vk.verify(b"message digest", &sk.sign(b"message digest"))
        .unwrap();
}

/// GB/T 32918.5-2017 Appendix C: "encryption standard" encrypted under the same key, as
/// GM/T 0009 DER (checked independently with `openssl pkeyutl -decrypt`).
#[test]
fn sm2_decryption_matches_gbt_32918() {
    let ct = unhex(
        "307c022004ebfc718e8d1798620432268e77feb6415e2ede0e073c0f4f640ecd2e149a73\
         022100e858f9d81e5430a57b36daab8f950a3c64e6ee6a63094d99283aff767e124df0\
         042059983c18f809e262923c53aec295d30383b54e39d609d160afcb1908d0bd8766\
         041321886ca989ca9c7d58087307ca93092d651efa",
    );
    let dk = DecryptionKey::from_hex(GBT_PRIVATE).unwrap();
    assert_eq!(dk.decrypt(&ct).unwrap().as_slice(), b"encryption standard");
    for i in [3, 40, 80, 110, ct.len() - 1] {
        let mut bad = ct.clone();
        bad[i] ^= 0x01;
        assert!(dk.decrypt(&bad).is_err(), "byte {i} flipped");
    }
}

#[test]
fn openssl_pem_keys_parse() {
    let sk = SigningKey::from_pem(GBT_PRIVATE_PEM_OPENSSL).unwrap();
    assert_eq!(sk.to_hex().as_str(), GBT_PRIVATE);
    let vk = VerifyingKey::from_pem(GBT_PUBLIC_PEM_OPENSSL).unwrap();
    assert_eq!(vk.to_hex(), GBT_PUBLIC);
    let dk = DecryptionKey::from_pem(GBT_PRIVATE_PEM_OPENSSL).unwrap();
    assert_eq!(dk.encryption_key().to_hex(), GBT_PUBLIC);
    assert_eq!(
        EncryptionKey::from_pem(GBT_PUBLIC_PEM_OPENSSL)
            .unwrap()
            .to_hex(),
        GBT_PUBLIC
    );
}

#[test]
fn keys_round_trip_through_pem_and_hex() {
    let sk = SigningKey::generate().unwrap();
    let again = SigningKey::from_pem(&sk.to_pem().unwrap()).unwrap();
    assert_eq!(again.to_hex(), sk.to_hex());
    assert_eq!(
        SigningKey::from_hex(&sk.to_hex()).unwrap().to_hex(),
        sk.to_hex()
    );
    let vk = sk.verifying_key();
    assert_eq!(VerifyingKey::from_pem(&vk.to_pem().unwrap()).unwrap(), vk);
    assert_eq!(VerifyingKey::from_hex(&vk.to_hex()).unwrap(), vk);
    assert_eq!(
        VerifyingKey::from_hex(&vk.to_hex().to_uppercase()).unwrap(),
        vk
    );

    let dk = DecryptionKey::generate().unwrap();
    let again = DecryptionKey::from_pem(&dk.to_pem().unwrap()).unwrap();
    assert_eq!(again.to_hex(), dk.to_hex());
    let ek = dk.encryption_key();
    assert_eq!(EncryptionKey::from_pem(&ek.to_pem().unwrap()).unwrap(), ek);
    assert_eq!(EncryptionKey::from_hex(&ek.to_hex()).unwrap(), ek);
}

#[test]
fn debug_output_hides_secrets() {
    let sk = SigningKey::from_hex(GBT_PRIVATE).unwrap();
    let dk = DecryptionKey::from_hex(GBT_PRIVATE).unwrap();
    let sm4 = Sm4Key::from_hex("0123456789abcdeffedcba9876543210").unwrap();
    for shown in [format!("{sk:?}"), format!("{dk:?}"), format!("{sm4:?}")] {
        assert!(
            !shown.to_lowercase().contains(&GBT_PRIVATE[..16]),
            "{shown}"
        );
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
    }
}

#[test]
fn signing_is_deterministic_and_der() {
    let sk = SigningKey::from_hex(GBT_PRIVATE).unwrap();
    let a = sk.sign(b"payload");
    assert_eq!(a, sk.sign(b"payload"));
    assert_ne!(a, sk.sign(b"payload2"));
    assert_eq!(a[0], 0x30);
    assert!(a.len() <= 72);
}

// ---------------------------------------------------------------------------------------------
// Malformed keys, signatures and ciphertexts.

pub(super) const ORDER_N: &str = "fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123";
const PRIME_P: &str = "fffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffff";

#[test]
fn rejects_malformed_public_keys() {
    let x_of_g = "32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7";
    let y_of_g = "bc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0";
    let bad_hex = [
        String::new(),
        "00".to_string(),                                // the identity
        format!("02{x_of_g}"),                           // compressed
        format!("04{x_of_g}"),                           // truncated
        format!("04{x_of_g}{y_of_g}00"),                 // trailing byte
        format!("05{x_of_g}{y_of_g}"),                   // bad tag
        format!("04{x_of_g}{}", "0".repeat(64)),         // off the curve
        format!("04{PRIME_P}{y_of_g}"),                  // x not a field element
        format!("04{}", "0".repeat(128)),                // (0, 0)
        format!("04{x_of_g}{y_of_g}").replace('c', "g"), // not hex
        format!("04{x_of_g}{y_of_g}")[1..].to_string(),  // odd length
    ];
    for hex in &bad_hex {
        assert!(VerifyingKey::from_hex(hex).is_err(), "{hex}");
        assert!(EncryptionKey::from_hex(hex).is_err(), "{hex}");
    }
    assert!(VerifyingKey::from_hex(&format!("04{x_of_g}{y_of_g}")).is_ok());
    assert_eq!(
        VerifyingKey::from_sec1_bytes(&[0]).unwrap_err(),
        CryptoError::InvalidPublicKey
    );
    for pem in [
        "",
        "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
        GBT_PRIVATE_PEM_OPENSSL,
    ] {
        assert!(VerifyingKey::from_pem(pem).is_err());
    }
}

#[test]
fn rejects_malformed_private_keys() {
    let n_plus_1 = "fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54124";
    for hex in [
        "",
        "00",
        &"0".repeat(64),
        ORDER_N,
        n_plus_1,
        &"f".repeat(64),
        &GBT_PRIVATE[1..],
    ] {
        assert!(SigningKey::from_hex(hex).is_err(), "{hex}");
        assert!(DecryptionKey::from_hex(hex).is_err(), "{hex}");
    }
    assert!(SigningKey::from_pem(GBT_PUBLIC_PEM_OPENSSL).is_err());
    assert!(
        SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
            .is_err()
    );
}

#[test]
fn rejects_malformed_signatures() {
    let vk = VerifyingKey::from_hex(GBT_PUBLIC).unwrap();
    let r = "00f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3";
    let s = "00b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa";
    let good = format!("304602{:02x}{r}02{:02x}{s}", r.len() / 2, s.len() / 2);
    vk.verify(b"message digest", &unhex(&good)).unwrap();
    let bad = [
        String::new(),
        "30".to_string(),
        "3000".to_string(),
        "3080".to_string() + &good[4..] + "0000", // indefinite length (BER)
        "3084ffffffff".to_string(),               // huge length
        format!("{good}00"),                      // trailing byte
        good[..good.len() - 2].to_string(),       // truncated
        format!("3025020100022000{}", &s[4..]),   // r = 0
        format!("3026022100{}020101", ORDER_N),   // r = n
        format!("30470222{}{}022100{}", "0001", &r[2..], &s[2..]), // non-minimal r
        format!("304702220101{}022100{}", &r[2..], &s[2..]), // 33-byte r
        format!("30450220{}022100{}", &r[2..], &s[2..]), // negative r
        format!("3066024100{}{}022100{}", &r[2..], &r[2..], &s[2..]), // 64-byte r
    ];
    for hex in &bad {
        assert!(vk.verify(b"message digest", &unhex(hex)).is_err(), "{hex}");
    }
}

#[test]
fn rejects_malformed_sm2_ciphertexts() {
    let dk = DecryptionKey::from_hex(GBT_PRIVATE).unwrap();
    let x = "04ebfc718e8d1798620432268e77feb6415e2ede0e073c0f4f640ecd2e149a73";
    let y = "00e858f9d81e5430a57b36daab8f950a3c64e6ee6a63094d99283aff767e124df0";
    let h = "59983c18f809e262923c53aec295d30383b54e39d609d160afcb1908d0bd8766";
    let c = "21886ca989ca9c7d58087307ca93092d651efa";
    let seq = |body: String| format!("30{:02x}{body}", body.len() / 2);
    let good = seq(format!("0220{x}0221{y}0420{h}0413{c}"));
    assert!(dk.decrypt(&unhex(&good)).is_ok());
    let bad = [
        String::new(),
        "30".to_string(),
        seq(String::new()),
        format!("{good}00"),                // trailing byte
        good[..good.len() - 2].to_string(), // truncated
        seq(format!("0230{x}{}0221{y}0420{h}0413{c}", "11".repeat(16))), // 48-byte x
        seq(format!("0220{x}0221{y}041f{}0413{c}", &h[2..])), // 31-byte hash
        seq(format!("0220{x}0221{y}0421{h}000413{c}")), // 33-byte hash
        seq(format!("0220{x}0221{y}0420{h}")), // no C2
        seq(format!("0220{x}0221{y}0420{h}0400")), // empty C2
        seq(format!("0201000201000420{h}0413{c}")), // (0, 0)
        seq(format!("0220{x}0220{}0420{h}0413{c}", &y[2..])), // negative y
        seq(format!("0220{x}0221{}0420{h}0413{c}", &y[..64])), // y off curve
        seq(format!("0220{x}0221{y}0420{h}0413{c}0400")), // extra field
        "3084ffffffff".to_string(),
    ];
    for hex in &bad {
        assert!(dk.decrypt(&unhex(hex)).is_err(), "{hex}");
    }
}

#[test]
fn sm2_encryption_refuses_empty_plaintext() {
    let ek = DecryptionKey::from_hex(GBT_PRIVATE)
        .unwrap()
        .encryption_key();
    assert_eq!(ek.encrypt(b"").unwrap_err(), CryptoError::EmptyPlaintext);
}

#[test]
fn sm4_rejects_bad_lengths_and_padding() {
    assert_eq!(
        Sm4Key::from_bytes(&[0; 15]).unwrap_err(),
        CryptoError::InvalidSm4Key
    );
    assert_eq!(
        Sm4Key::from_bytes(&[0; 17]).unwrap_err(),
        CryptoError::InvalidSm4Key
    );
    assert!(Sm4Key::from_hex("0123").is_err());
    let key = Sm4Key::from_bytes(&[9; 16]).unwrap();
    for len in [0, 1, 15, 16, 31, 33, 47] {
        assert_eq!(
            key.decrypt_cbc(&vec![0; len]).unwrap_err(),
            CryptoError::Sm4DecryptFailed,
            "length {len}"
        );
    }
    // A last block whose padding byte is 0x11 (> 16) after decryption.
    let mut ct = key.encrypt_cbc_with_iv(&[0; 16], &[0x11; 16]);
    ct.truncate(32);
    assert_eq!(
        key.decrypt_cbc(&ct).unwrap_err(),
        CryptoError::Sm4DecryptFailed
    );
    let other = Sm4Key::from_bytes(&[8; 16]).unwrap();
    let ct = key.encrypt_cbc(b"{\"a\":1}").unwrap();
    assert!(
        other
            .decrypt_cbc(&ct)
            .map(|p| p != b"{\"a\":1}")
            .unwrap_or(true)
    );
}

#[test]
fn hex_decoding_is_strict() {
    let mut out = [0u8; 2];
    assert!(decode_hex_into("0aFf", &mut out, "t").is_ok());
    assert_eq!(out, [0x0a, 0xff]);
    for bad in ["0a f", "0aFg", "0aF", "0aFf0", "+0a1", "０a"] {
        assert!(decode_hex_into(bad, &mut out, "t").is_err(), "{bad}");
    }
    for c in 0u8..=255 {
        let s = format!("{}0", char::from(c));
        let ok = c.is_ascii_hexdigit();
        let mut one = [0u8; 1];
        assert_eq!(
            decode_hex_into(&s, &mut one, "t").is_ok(),
            ok && s.len() == 2,
            "{c}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Properties. SM2 cases are few: each costs milliseconds in a debug build.

#[test]
fn the_last_scalar_below_the_order_is_not_a_signing_key() {
    // d = n - 1 has no (1 + d)^-1 (GB/T 32918.1 takes d in [1, n - 2]); n - 2 signs.
    let n_minus_1 = "fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54122";
    let n_minus_2 = "fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54121";
    assert_eq!(
        SigningKey::from_hex(n_minus_1).err(),
        Some(CryptoError::InvalidPrivateKey)
    );
    let sk = SigningKey::from_hex(n_minus_2).unwrap();
    assert!(sk.verifying_key().verify(b"m", &sk.sign(b"m")).is_ok());
}

fn signing_key_from(seed: [u8; 32]) -> SigningKey {
    SigningKey::from_hex(&to_hex(&seed))
        .unwrap_or_else(|_| SigningKey::from_hex(GBT_PRIVATE).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn sign_verify_round_trip(seed in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..300)) {
        let sk = signing_key_from(seed);
        let vk = sk.verifying_key();
        let sig = sk.sign(&msg);
        prop_assert!(vk.verify(&msg, &sig).is_ok());
        let mut other = msg.clone();
        other.push(0);
        prop_assert_eq!(vk.verify(&other, &sig), Err(CryptoError::BadSignature));
    }

    /// hutong's signer (`crypto::sm2_sign`, `(1 + d)^-1` kept per key) gives the `sm2`
    /// crate's signature bit for bit, for first attempts and for retries' additional data.
    #[test]
    fn signatures_are_the_crates(seed in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..300), attempt in 1u64..u64::MAX) {
        let sk = signing_key_from(seed);
        prop_assert_eq!(Some(sk.sign(&msg)), sk.sign_with_crate(&msg, &[]));
        let data = sm2_sign::retry_data(attempt);
        let ours = sk.sign_with_data(&msg, &data);
        prop_assert!(ours.is_some());
        prop_assert_eq!(ours, sk.sign_with_crate(&msg, &data));
    }

    #[test]
    fn sm2_encrypt_decrypt_round_trip(seed in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 1..200)) {
        let dk = DecryptionKey::from_hex(&to_hex(&seed))
            .unwrap_or_else(|_| DecryptionKey::from_hex(GBT_PRIVATE).unwrap());
        let ct = dk.encryption_key().encrypt(&msg).unwrap();
        let plain = dk.decrypt(&ct).unwrap();
        prop_assert_eq!(plain.as_slice(), msg.as_slice());
    }

    #[test]
    fn tampered_or_truncated_sm2_ciphertexts_fail(msg in proptest::collection::vec(any::<u8>(), 1..64), pos in any::<usize>(), bit in 0u8..8) {
        let dk = DecryptionKey::from_hex(GBT_PRIVATE).unwrap();
        let ct = dk.encryption_key().encrypt(&msg).unwrap();
        let mut flipped = ct.clone();
        let i = pos % ct.len();
        flipped[i] ^= 1 << bit;
        prop_assert!(dk.decrypt(&flipped).is_err());
        prop_assert!(dk.decrypt(&ct[..i]).is_err());
    }

    #[test]
    fn tampered_signatures_fail(msg in proptest::collection::vec(any::<u8>(), 0..64), pos in any::<usize>(), bit in 0u8..8) {
        let sk = SigningKey::from_hex(GBT_PRIVATE).unwrap();
        let sig = sk.sign(&msg);
        let mut flipped = sig.clone();
        flipped[pos % sig.len()] ^= 1 << bit;
        prop_assert!(sk.verifying_key().verify(&msg, &flipped).is_err());
        prop_assert!(sk.verifying_key().verify(&msg, &sig[..pos % sig.len()]).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sm4_round_trip(key in any::<[u8; 16]>(), msg in proptest::collection::vec(any::<u8>(), 0..200)) {
        let key = Sm4Key::from_bytes(&key).unwrap();
        let ct = key.encrypt_cbc(&msg).unwrap();
        prop_assert_eq!(ct.len(), 16 + (msg.len() / 16 + 1) * 16);
        prop_assert_eq!(key.decrypt_cbc(&ct).unwrap(), msg);
    }

    #[test]
    fn sm4_decrypt_of_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..100)) {
        let key = Sm4Key::from_bytes(&[3; 16]).unwrap();
        let result = key.decrypt_cbc(&data);
        if data.len() < 32 || data.len() % 16 != 0 {
            prop_assert!(result.is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_are_not_keys_signatures_or_ciphertexts(data in proptest::collection::vec(any::<u8>(), 0..160)) {
        let vk = VerifyingKey::from_hex(GBT_PUBLIC).unwrap();
        prop_assert!(vk.verify(b"message digest", &data).is_err());
        let dk = DecryptionKey::from_hex(GBT_PRIVATE).unwrap();
        prop_assert!(dk.decrypt(&data).is_err());
        // A random 65-byte string starting with 04 is on the curve with negligible probability.
        prop_assert!(VerifyingKey::from_sec1_bytes(&data).is_err());
        prop_assert!(EncryptionKey::from_sec1_bytes(&data).is_err());
        let _ = Sm4Key::from_bytes(&data);
        let _ = MacKey::from_bytes(&data);
    }

    #[test]
    fn arbitrary_strings_never_panic_key_parsers(s in ".{0,200}") {
        let _ = VerifyingKey::from_hex(&s);
        let _ = VerifyingKey::from_pem(&s);
        let _ = SigningKey::from_hex(&s);
        let _ = SigningKey::from_pem(&s);
        let _ = DecryptionKey::from_pem(&s);
        let _ = EncryptionKey::from_pem(&s);
        let _ = Sm4Key::from_hex(&s);
    }

    #[test]
    fn arbitrary_der_shaped_input_never_panics(body in proptest::collection::vec(any::<u8>(), 0..120), tag in prop_oneof![Just(0x30u8), Just(0x02u8), any::<u8>()]) {
        let mut der = vec![tag, body.len().min(255) as u8];
        der.extend_from_slice(&body);
        let vk = VerifyingKey::from_hex(GBT_PUBLIC).unwrap();
        prop_assert!(vk.verify(b"m", &der).is_err());
        let dk = DecryptionKey::from_hex(GBT_PRIVATE).unwrap();
        prop_assert!(dk.decrypt(&der).is_err());
    }
}

#[test]
fn a_public_key_in_compressed_form_is_refused_from_pem_too() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let pem = SigningKey::generate()
        .unwrap()
        .verifying_key()
        .to_pem()
        .unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = b64.decode(body).unwrap();
    assert_eq!(der.len(), 91);
    assert!(VerifyingKey::from_pem(&pem).is_ok());
    // The same key, its point compressed: 02 or 03 by the parity of y, then x.
    let (x, y) = (&der[27..59], &der[59..91]);
    let mut c = vec![0x30, 0x39];
    c.extend_from_slice(&der[2..23]);
    c.extend_from_slice(&[0x03, 0x22, 0x00, 0x02 | (y[31] & 1)]);
    c.extend_from_slice(x);
    let text = b64.encode(&c);
    let (head, tail) = text.split_at(64);
    let compressed =
        format!("-----BEGIN PUBLIC KEY-----\n{head}\n{tail}\n-----END PUBLIC KEY-----\n");
    // The crate itself takes it: the refusal is hutong's.
    use ::sm2::pkcs8::DecodePublicKey as _;
    assert!(::sm2::PublicKey::from_public_key_pem(&compressed).is_ok());
    assert!(VerifyingKey::from_pem(&compressed).is_err());
    assert!(EncryptionKey::from_pem(&compressed).is_err());
}
