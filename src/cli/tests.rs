//! The commands' shared input helpers.

use super::{parse_at, read_head, read_input};

#[test]
fn a_yyyymmdd_clock_is_refused_not_read_as_1970() {
    let e = parse_at("20261123").unwrap_err();
    assert!(e.contains("2026-11-23"), "{e}");
    assert_eq!(parse_at("020261123"), Ok(20_261_123));
    assert_eq!(parse_at("1795393805"), Ok(1_795_393_805));
    assert_eq!(
        parse_at("2026-11-23"),
        Ok(parse_at("2026-11-23 00:00:00").unwrap())
    );
    assert!(parse_at("2026/11/23").is_err());
}

#[test]
fn an_input_over_its_limit_is_refused_and_a_head_is_cut() {
    let dir = std::env::temp_dir().join(format!("hutong-cli-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("body.json");
    std::fs::write(&f, b"0123456789").unwrap();
    let path = f.to_str().unwrap();
    assert_eq!(read_input(path, 10).unwrap().len(), 10);
    let e = read_input(path, 9).unwrap_err().to_string();
    assert!(e.contains("over the limit of 9 bytes"), "{e}");
    // The head: one byte past the limit, for the command to report.
    assert_eq!(read_head(path, 4).unwrap(), b"01234");
    assert!(read_input(&dir.join("none").to_string_lossy(), 9).is_err());
    let _ = std::fs::remove_dir_all(dir);
}
