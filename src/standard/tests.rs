use std::path::{Path, PathBuf};

use super::*;

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("standard")
}

/// Copies the shipped standard into a fresh temporary directory.
fn copy_standard() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "hutong-std-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    for (rel, _) in source::EMBEDDED {
        let to = dir.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(shipped_dir().join(rel), to).unwrap();
    }
    dir
}

#[test]
fn shipped_standard_loads_cleanly() {
    let s = match Standard::load(&Source::Dir(shipped_dir())) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(s.services().len(), 7);
    assert!(
        s.divisions.current_len() > 3000,
        "{}",
        s.divisions.current_len()
    );
    assert!(s.countries.len() >= 249);
    assert_eq!(s.return_codes().len(), ReturnCode::ALL.len());
    // And the embedded copy is the same data.
    let e = Standard::embedded();
    assert_eq!(e.elements, s.elements);
    assert_eq!(e.divisions, s.divisions);
}

#[test]
fn embedded_list_matches_the_files_on_disk() {
    let mut on_disk = Vec::new();
    let mut stack = vec![shipped_dir()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(shipped_dir())
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                // Documentation and the generated OpenAPI document are not loaded.
                if !rel.ends_with(".md") && rel != "openapi.yaml" {
                    on_disk.push(rel);
                }
            }
        }
    }
    on_disk.sort();
    let mut embedded: Vec<String> = source::EMBEDDED
        .iter()
        .map(|(p, _)| (*p).to_owned())
        .collect();
    embedded.sort();
    assert_eq!(on_disk, embedded);
}

#[test]
fn finds_regions_by_code_with_full_names() {
    let s = Standard::embedded();
    assert_eq!(
        s.divisions.full_name("110105").as_deref(),
        Some("北京市朝阳区")
    );
    assert_eq!(
        s.divisions.full_name("330106").as_deref(),
        Some("浙江省杭州市西湖区")
    );
    assert_eq!(s.divisions.full_name("320000").as_deref(), Some("江苏省"));
    assert!(s.divisions.is_known("110103"), "崇文区 is historic");
    assert!(!s.divisions.is_current("110103"));
    assert!(!s.divisions.is_known("990000"));
    assert_eq!(
        s.countries.get("CHN").map(|c| c.numeric.as_str()),
        Some("156")
    );
}

#[test]
fn return_codes_carry_status_and_side() {
    let s = Standard::embedded();
    let rate = s.return_code(ReturnCode::RateLimited);
    assert_eq!(
        (rate.http, rate.side, rate.retry),
        (429, Side::Client, true)
    );
    let up = s.return_code(ReturnCode::UpstreamTimeout);
    assert_eq!((up.http, up.side), (504, Side::Upstream));
    for (info, code) in s.return_codes().iter().zip(ReturnCode::ALL) {
        assert_eq!(info.code, code);
    }
}

#[test]
fn reports_every_problem_at_once() {
    let dir = copy_standard();
    let edit = |rel: &str, from: &str, to: &str| {
        let p = dir.join(rel);
        let s = std::fs::read_to_string(&p).unwrap();
        assert!(s.contains(from), "{rel} lacks {from}");
        std::fs::write(&p, s.replacen(from, to, 1)).unwrap();
    };
    edit("elements.toml", "format = \"AN..32\"", "format = \"Q9\"");
    edit("return-codes.toml", "code = \"1007\"", "code = \"1077\"");
    edit(
        "schemas/verifyCode.request.json",
        "\"additionalProperties\": false",
        "\"additionalProperties\": true",
    );
    edit(
        "services.toml",
        "name = \"declareTrip\"",
        "name = \"declareTravel\"",
    );
    std::fs::write(dir.join("tables/gb2659.tsv"), "alpha2\talpha3\n").unwrap();
    // Eleven bytes, not eleven characters: reported, not a panic on a char boundary.
    edit(
        "elements.toml",
        "id = \"PHIC.01.001\"",
        "id = \"PHIC.0é123\"",
    );
    let err = Standard::load(&Source::Dir(dir.clone())).unwrap_err();
    let text = err.to_string();
    for needle in [
        "elements.toml: PHIC.01.005: unknown format notation `Q9`",
        "return-codes.toml: 1077",
        "return-codes.toml: 1007: return code is missing",
        "schemas/verifyCode.request.json",
        "declareTravel",
        "services.toml: declareTrip: service is missing",
        "tables/gb2659.tsv",
        "PHIC.0é123: id must be PHIC.gg.nnn",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn rejects_unknown_fields_and_schema_keywords() {
    let dir = copy_standard();
    let p = dir.join("tables/tables.toml");
    let s = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        s.replacen("[[table]]", "[[table]]\ncolour_space = \"sRGB\"", 1),
    )
    .unwrap();
    let p = dir.join("schemas/declareTrip.request.json");
    let s = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        s.replacen(
            "\"type\": \"object\"",
            "\"type\": \"object\", \"patternProperties\": {}",
            1,
        ),
    )
    .unwrap();
    let err = Standard::load(&Source::Dir(dir.clone()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("colour_space"), "{err}");
    assert!(
        err.contains("keyword `patternProperties` is not supported"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn refuses_an_oversized_file() {
    let dir = copy_standard();
    let f = std::fs::File::create(dir.join("tables/gb2260.tsv")).unwrap();
    f.set_len(MAX_FILE_BYTES + 1).unwrap();
    let err = Standard::load(&Source::Dir(dir.clone()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("over the limit"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
