//! The command line as a newcomer uses it.

use crate::support::{hutong, stdout};

#[test]
fn shows_a_region_by_code() {
    let out = hutong(["standard", "show", "region", "110105"]);
    assert!(out.status.success());
    assert!(
        stdout(&out).starts_with("110105 北京市朝阳区"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn shows_elements_tables_services_codes_and_countries() {
    for (args, needle) in [
        (
            vec!["standard", "show", "element", "idNo"],
            "PHIC.01.005 证件号码",
        ),
        (
            vec!["standard", "show", "element", "PHIC.04.002"],
            "codeColor",
        ),
        (vec!["standard", "show", "table", "colour"], "#39B778"),
        (
            vec!["standard", "show", "service", "verifyCode"],
            "POST /phic/v1/verifyCode",
        ),
        (vec!["standard", "show", "code", "1007"], "HTTP 429"),
        (vec!["standard", "show", "country", "CHN"], "alpha-2 CN"),
        (vec!["standard", "show", "region", "110103"], "historic"),
    ] {
        let out = hutong(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(stdout(&out).contains(needle), "{args:?}: {}", stdout(&out));
    }
}

#[test]
fn an_unknown_key_exits_one_and_an_unknown_service_is_a_usage_error() {
    let out = hutong(["standard", "show", "region", "990000"]);
    assert_eq!(out.status.code(), Some(1));
    let out = hutong(["validate", "flyToMoon", "-"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a service of GB/T 38963"));
}

#[test]
fn prints_its_version() {
    let out = hutong(["--version"]);
    assert_eq!(
        stdout(&out).trim(),
        format!("hutong {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn checks_a_standard_directory_and_reports_all_problems() {
    let dir = crate::support::temp_dir("std");
    let src = crate::support::root().join("standard");
    let copy = std::process::Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(&dir)
        .status()
        .unwrap();
    assert!(copy.success());
    let std_dir = dir.join("standard");
    let ok = hutong(["--standard", std_dir.to_str().unwrap(), "standard", "check"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let f = std_dir.join("return-codes.toml");
    let t = std::fs::read_to_string(&f)
        .unwrap()
        .replace("http = 429", "http = 999");
    std::fs::write(&f, t).unwrap();
    let f = std_dir.join("elements.toml");
    let t = std::fs::read_to_string(&f)
        .unwrap()
        .replacen("format = \"N6\"", "format = \"N0\"", 1);
    std::fs::write(&f, t).unwrap();
    let bad = hutong(["--standard", std_dir.to_str().unwrap(), "standard", "check"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("return-codes.toml: 1007: http must be")
            && err.contains("unknown format notation `N0`"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn dev_certificates_and_keys_are_not_replaced_by_accident_or_by_halves() {
    let dir = crate::support::temp_dir("certs");
    let out_dir = dir.join("certs");
    let certs = |force: bool| {
        let mut args = vec!["certs", "dev", "--out", out_dir.to_str().unwrap()];
        if force {
            args.push("--force");
        }
        hutong(args)
    };
    assert!(certs(false).status.success());
    let ca = std::fs::read(out_dir.join("ca.crt.pem")).unwrap();
    // A second run would make a new CA that no earlier client certificate chains to.
    let again = certs(false);
    assert_eq!(again.status.code(), Some(2));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("ca.crt.pem") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(out_dir.join("ca.crt.pem")).unwrap(), ca);
    assert!(certs(true).status.success());
    assert_ne!(std::fs::read(out_dir.join("ca.crt.pem")).unwrap(), ca);

    // keys gen --force replaces the pair whole, and leaves no temporary file behind.
    let key = dir.join("issuer");
    for _ in 0..2 {
        let out = hutong(["keys", "gen", "--force", "--out", key.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["certs", "issuer.key.pem", "issuer.pub.pem"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |n: &str| std::fs::metadata(dir.join(n)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("issuer.key.pem"), 0o600);
        assert_eq!(
            mode("issuer.pub.pem") & 0o044,
            0o044,
            "the public key is readable"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
