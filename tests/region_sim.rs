//! `hutong sim --region jiangsu` as a process: the listening line and the sample people on
//! standard output, a real form posted over a socket and its JSON answer mapped back to the
//! national model for the right person, an injected error rate, and configuration errors.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Stdio};

use hutong::mask::mask;
use hutong::standard::{Direction, PersonalClass, ServiceName, Standard};
use hutong::translate::{self, Dialect};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use crate::support::{hutong, root, spawn_listening};

/// One `sample` line: index, colour, name, ID number, code content.
#[derive(Debug)]
struct Sample {
    colour: String,
    name: String,
    id_no: String,
    code_content: String,
}

/// A `hutong sim --region …` process, stopped with SIGTERM on drop.
struct RegionSim {
    child: Child,
    stdout: BufReader<ChildStdout>,
    port: u16,
    samples: Vec<Sample>,
}

impl RegionSim {
    fn start(extra: &[&str], samples: usize) -> Self {
        let (child, mut stdout, port) = spawn_listening(
            Command::new(env!("CARGO_BIN_EXE_hutong"))
                .args(["sim", "--region", "jiangsu", "--regions-dir"])
                .arg(root().join("config/regions"))
                .args(["--population", "30", "--colours", "1:1:1"])
                .args(extra)
                .stderr(Stdio::null()),
        );
        let samples = (0..samples)
            .map(|_| {
                let mut line = String::new();
                stdout.read_line(&mut line).unwrap();
                let f: Vec<&str> = line.trim_end().split('\t').collect();
                assert_eq!(f.len(), 6, "sample line: {line:?}");
                assert_eq!(f[0], "sample");
                Sample {
                    colour: f[2].to_owned(),
                    name: f[3].to_owned(),
                    id_no: f[4].to_owned(),
                    code_content: f[5].to_owned(),
                }
            })
            .collect();
        Self {
            child,
            stdout,
            port,
            samples,
        }
    }

    /// Posts a form to `path`; the status and the JSON answer.
    fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> (u16, Value) {
        let body = fields
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, NON_ALPHANUMERIC),
                    utf8_percent_encode(v, NON_ALPHANUMERIC)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: sim\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let status = head
            .strip_prefix("HTTP/1.1 ")
            .and_then(|h| h.get(..3))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("status line: {head}"));
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        (status, json)
    }

    /// Stops it with SIGTERM; it exits 0 and prints nothing more.
    fn stop(mut self) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "a graceful stop exits 0: {status}");
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "", "nothing after the samples");
    }
}

fn jiangsu() -> Dialect {
    Dialect::load_dir(&root().join("config/regions"), &Standard::embedded())
        .unwrap()
        .into_iter()
        .find(|d| d.id == "jiangsu")
        .unwrap()
}

fn verify_form(content: &str) -> Vec<(&str, &str)> {
    vec![
        ("url", content),
        ("source", "A3200010001"),
        ("verifierDept", "南京站"),
        ("position", "江苏省,南京市,玄武区,中山路1号"),
        ("token", "t0k3n"),
    ]
}

#[test]
fn sim_region_jiangsu_answers_a_real_form_for_the_right_person() {
    let sim = RegionSim::start(&[], 3);
    let d = jiangsu();
    let colours: Vec<&str> = sim.samples.iter().map(|s| s.colour.as_str()).collect();
    assert_eq!(colours, ["00", "01", "10"], "one sample per colour");
    for s in &sim.samples {
        assert!(
            s.code_content
                .starts_with("https://skm.js.example.cn/healthAct/index.html?qrCode="),
            "Jiangsu's own code format: {}",
            s.code_content
        );
        let (status, answer) = sim.post_form("/skm/verify", &verify_form(&s.code_content));
        assert_eq!(status, 200);
        assert_eq!(answer["resCode"], json!(0), "{answer}");
        assert_eq!(
            answer["res"]["name"],
            json!(s.name),
            "the back-end's full name"
        );
        assert_eq!(answer["res"]["idcardNo"], json!(s.id_no));

        let national =
            translate::to_national(&d, ServiceName::VerifyCode, Direction::Response, &answer)
                .unwrap()
                .body;
        assert_eq!(national["code"], json!("0"));
        let biz = &national["bizContent"];
        assert_eq!(biz["codeColor"], json!(s.colour));
        let verdict = match s.colour.as_str() {
            "00" => "PASS",
            "01" => "WARN",
            _ => "DENY",
        };
        assert_eq!(biz["verifyResult"], json!(verdict));
        assert_eq!(biz["nameMasked"], json!(mask(PersonalClass::Name, &s.name)));
        assert_eq!(biz["idNoMasked"], json!(mask(PersonalClass::Id, &s.id_no)));
        assert!(biz["updateTime"].as_str().is_some_and(|t| t.len() == 19));
    }
    // A code of another region is not Jiangsu's: resCode 112, national 3001.
    let foreign = "https://healthcode.zj.example.cn/healthAct/index.html?qrCode=V2a1b2";
    let (_, answer) = sim.post_form("/skm/verify", &verify_form(foreign));
    assert_eq!(answer, json!({"resCode": 112}));
    sim.stop();
}

#[test]
fn sim_region_with_error_rate_one_answers_every_call_with_a_failure() {
    let sim = RegionSim::start(&["--error-rate", "1"], 3);
    let (status, answer) = sim.post_form("/skm/verify", &verify_form(&sim.samples[0].code_content));
    assert_eq!(status, 200);
    assert_eq!(answer, json!({"resCode": 1}));
    let national = translate::to_national(
        &jiangsu(),
        ServiceName::VerifyCode,
        Direction::Response,
        &answer,
    )
    .unwrap()
    .body;
    assert_eq!(national["code"], json!("9999"));
    sim.stop();
}

#[test]
fn sim_region_reports_every_configuration_problem_at_once() {
    let out = hutong([
        "sim",
        "--region",
        "zhejiang",
        "--regions-dir",
        root().join("config/regions").to_str().unwrap(),
        "--keys-out",
        "/tmp/x",
        "--error-rate",
        "2",
        "--colours",
        "1:2",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "--keys-out is for the national simulator",
        "error rate 2",
        "colour mix `1:2`",
        "dialect `zhejiang` signs its requests",
    ] {
        assert!(err.contains(needle), "`{needle}` missing from:\n{err}");
    }

    let out = hutong([
        "sim",
        "--region",
        "atlantis",
        "--regions-dir",
        "/nonexistent",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no dialect `atlantis`"), "{err}");

    let out = hutong(["sim"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--national"), "{err}");
}
