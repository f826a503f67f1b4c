//! hutong's GB 11643 ID-number check against an independent implementation:
//! python-stdnum's `stdnum.cn.ric`, on generated numbers, valid and corrupted.
//!
//! One difference is deliberate and is the only one allowed: stdnum also rejects an address
//! code that was not yet (or no longer) assigned in the birth year (`place-year`). hutong
//! accepts a code of any revision, because a number first issued after a re-coding carries
//! the new code whatever the birth year. The other allowed difference is a short, named
//! list of codes that hutong's sources have (the `gb2260` crate's MCA revisions of
//! 2002-2016, and 2021 codes of Hangzhou) and stdnum's table lacks. Every disagreement must
//! be of one of these two kinds.

use std::io::Write;
use std::process::{Command, Stdio};

use hutong::national::idno;
use hutong::national::time::Date;
use hutong::standard::Standard;

use crate::support::python_with;

/// Classifies each line of stdin with stdnum: `ok`, or the reason it is invalid.
const CLASSIFY: &str = r#"
import sys
from stdnum.cn import ric
from stdnum.exceptions import InvalidLength, InvalidFormat, InvalidChecksum, InvalidComponent
for line in sys.stdin:
    n = line.strip()
    try:
        ric.validate(n)
        print("ok")
    except InvalidLength:
        print("length")
    except InvalidFormat:
        print("format")
    except InvalidChecksum:
        print("checksum")
    except InvalidComponent:
        try:
            ric.get_birth_date(n)
        except Exception:
            print("date")
            continue
        from stdnum import numdb
        found = {k: v for _, p in numdb.get('cn/loc').info(n[:6]) for k, v in p.items()}
        print("place-year" if 'county' in found else "place-unknown")
    except Exception:
        # stdnum raises KeyError for a code it knows only as a province prefix.
        print("place-unknown")
"#;

/// Codes in hutong's tables, from the MCA revisions, that stdnum's `cn/loc` table lacks.
const KNOWN_ONLY_TO_HUTONG: [&str; 14] = [
    "139002", "330113", "330114", "370903", "460321", "460322", "460323", "469034", "469035",
    "469036", "469037", "469038", "469039", "620201",
];

/// splitmix64: a fixed, dependency-free generator so every run checks the same numbers.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn generate(count: usize) -> Vec<String> {
    let s = Standard::embedded();
    let mut codes: Vec<u32> = s.divisions.iter().map(|(c, _)| c).collect();
    codes.extend(s.divisions.iter_historic().map(|(c, _)| c));
    let mut rng = Rng(38_963);
    let first = Date::new(1900, 1, 1).unwrap().days_since_epoch();
    let last = Date::new(2025, 12, 31).unwrap().days_since_epoch();
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let prefix = if rng.below(10) == 0 {
            format!("{:06}", 110_000 + rng.below(800_000))
        } else {
            format!("{:06}", codes[rng.below(codes.len() as u64) as usize])
        };
        let date = match rng.below(12) {
            0 => format!("{:04}1301", 1950 + rng.below(60)),
            1 => format!("{:04}0230", 1950 + rng.below(60)),
            2 => format!("{:04}0100", 1950 + rng.below(60)),
            _ => {
                let d = Date::from_days(first + rng.below((last - first) as u64) as i64);
                format!("{:04}{:02}{:02}", d.year, d.month, d.day)
            }
        };
        let body = format!("{prefix}{date}{:03}", rng.below(1000));
        let mut n = body.clone().into_bytes();
        n.push(idno::check_char(body.as_bytes()));
        match rng.below(10) {
            0 => {
                let i = rng.below(18) as usize;
                n[i] = b'0' + ((n[i].wrapping_sub(b'0') as u64 + 1 + rng.below(9)) % 10) as u8;
            }
            1 => {
                let i = rng.below(17) as usize;
                n.swap(i, i + 1);
            }
            2 => n[17] = b"0123456789X"[rng.below(11) as usize],
            3 if rng.below(4) == 0 => {
                n.pop();
            }
            _ => {}
        }
        out.push(String::from_utf8(n).unwrap());
    }
    out
}

#[test]
fn agrees_with_python_stdnum_on_generated_numbers() {
    let py = python_with("stdnum.cn.ric", "python-stdnum");
    let numbers = generate(20_000);
    let mut child = Command::new(py)
        .args(["-c", CLASSIFY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = numbers.join("\n") + "\n";
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    let verdicts: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(verdicts.len(), numbers.len());

    let s = Standard::embedded();
    let today = Date::new(2026, 11, 23).unwrap();
    let (mut agree, mut valid, mut place_year, mut only_ours) = (0usize, 0usize, 0usize, 0usize);
    let mut disagreements = Vec::new();
    for (n, theirs) in numbers.iter().zip(&verdicts) {
        let ours = idno::check(n, &s.divisions, today).is_ok();
        let theirs_ok = theirs == "ok";
        valid += usize::from(ours);
        if ours == theirs_ok {
            agree += 1;
        } else if ours && theirs == "place-year" {
            place_year += 1;
        } else if ours && theirs == "place-unknown" && KNOWN_ONLY_TO_HUTONG.contains(&&n[..6]) {
            only_ours += 1;
        } else {
            disagreements.push(format!("{n}: hutong {ours}, stdnum {theirs}"));
        }
    }
    println!(
        "stdnum agreement on {} numbers: {agree} agree; {place_year} differ by stdnum's birth-year rule, {only_ours} by codes only hutong's sources list; {valid} valid for hutong",
        numbers.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    assert!(agree >= 10_000, "only {agree} agreements");
    assert!(
        valid >= 3_000 && numbers.len() - valid >= 3_000,
        "the sample must hold both kinds: {valid} valid"
    );
}
