//! `hutong audit …`: verify the audit chain of a data directory, and print a holder's
//! receipt. Both open the database file directly, so the gateway must not be running on
//! that directory (redb locks the file; the command then fails with exit status 2).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use zeroize::Zeroizing;

use crate::audit::{AuditLog, AuditRecord, ChainMark, RedbAuditLog, VerifyReport, pseudonym};
use crate::crypto::{MIN_MAC_KEY_LEN, MacKey, to_hex};
use crate::national::time::DateTime;
use crate::store::Store;

/// `hutong audit …`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCmd {
    /// Check the audit chain: every record's SM3 hash, every link, no gaps, and the head
    /// marker. Exits 0 when intact, 1 when tampered, listing every problem with its seq.
    ///
    /// Example: hutong audit verify --data-dir /var/lib/hutong --anchor 1207:5e1f…
    Verify {
        /// The gateway's data directory.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// A head printed by an earlier run (SEQ:HASH, kept outside the file): the record
        /// at SEQ must still be there with that hash. Catches a tail cut off together with
        /// the head marker moved back, which the file alone cannot show.
        #[arg(long, value_name = "SEQ:HASH", value_parser = parse_anchor)]
        anchor: Option<ChainMark>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a holder's receipt: every audit record about them. The ID number only
    /// computes the holder's pseudonym; it is neither printed nor stored.
    ///
    /// Example: hutong audit receipt --data-dir /var/lib/hutong --secret-file pseudonym.hex
    /// --id-type 10 --id-no - (then type the number on standard input)
    Receipt {
        /// The gateway's data directory.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// The pseudonym secret: a file holding at least 16 bytes as hex.
        #[arg(long, value_name = "FILE")]
        secret_file: PathBuf,
        /// The ID type (code table `idType`; 10 is the resident ID card).
        #[arg(long, default_value = "10")]
        id_type: String,
        /// The ID number, or - to read it from standard input (which keeps it out of the
        /// shell history and the process list).
        #[arg(long, value_name = "ID|-")]
        id_no: String,
        /// Print the records as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(cmd: &AuditCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCmd::Verify {
            data_dir,
            anchor,
            json,
        } => verify(data_dir, *anchor, *json),
        AuditCmd::Receipt {
            data_dir,
            secret_file,
            id_type,
            id_no,
            json,
        } => receipt(data_dir, secret_file, id_type, id_no, *json),
    }
}

pub(super) fn open_log(data_dir: &Path) -> anyhow::Result<(Store, RedbAuditLog)> {
    let store = Store::open_existing(data_dir)?;
    let log = RedbAuditLog::new(store.clone());
    // Records a gateway answered for under `sync = "interval"` and had not yet committed
    // when it stopped are in the journal: read them into the store first.
    let r = match crate::audit::journal::recover(
        &log,
        &data_dir.join(crate::audit::journal::JOURNAL_FILE),
    ) {
        Ok(r) => r,
        // A head marker that does not decode: the journal cannot be chained onto it, so it
        // is left as it is, and `verify` reports the marker.
        Err(e @ crate::store::StoreError::Corrupt { .. }) => {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr().lock(),
                "audit journal: not replayed ({e}); it is left as it is"
            );
            crate::audit::journal::Recovery::default()
        }
        Err(e) => return Err(e.into()),
    };
    if r.replayed > 0 || r.discarded_bytes > 0 {
        use std::io::Write as _;
        let journal = data_dir.join(crate::audit::journal::JOURNAL_FILE);
        let _ = writeln!(
            std::io::stderr().lock(),
            "audit journal: {} record(s) replayed into the store, {} byte(s) of torn tail taken \
             out (kept in {})",
            r.replayed,
            r.discarded_bytes,
            crate::audit::journal::discarded_path(&journal).display()
        );
    }
    Ok((store, log))
}

/// `SEQ:HASH`, as `verify` prints a head (`seq 12 hash 5e1f…`): 64 hex digits.
fn parse_anchor(s: &str) -> Result<ChainMark, String> {
    let (seq, hash) = s
        .split_once(':')
        .ok_or_else(|| "expected SEQ:HASH".to_owned())?;
    let seq = seq
        .parse::<u64>()
        .map_err(|_| format!("{seq:?} is not a sequence number"))?;
    let mut h = [0u8; 32];
    crate::crypto::decode_hex_into(hash, &mut h, "anchor hash")
        .map_err(|_| "HASH must be 64 hex digits (SM3)".to_owned())?;
    Ok(ChainMark { seq, hash: h })
}

fn verify(data_dir: &Path, anchor: Option<ChainMark>, json: bool) -> anyhow::Result<ExitCode> {
    let (store, log) = open_log(data_dir)?;
    let mut report = log.verify()?;
    // An anchor that does not hold, or cannot be checked, is not a pass.
    if let Some(problem) = anchor.map(|a| log.check_anchor(a)).transpose()?.flatten() {
        report.ok = false;
        report.problems.push(problem);
    }
    if json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        say_raw!("{}", verify_text(&store, &report));
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn verify_text(store: &Store, r: &VerifyReport) -> String {
    let mut o = format!(
        "audit log {}: {} record(s)",
        store.path().display(),
        r.records
    );
    if r.checkpoint.seq > 0 {
        // The checkpoint's hash, like the head's, is worth anchoring outside the file: with
        // both, a chain shortened or cut by hand is caught even if the markers were moved.
        let _ = write!(
            o,
            " after the purge checkpoint at seq {} hash {}",
            r.checkpoint.seq,
            to_hex(&r.checkpoint.hash)
        );
    }
    match &r.head {
        Some(h) => {
            let _ = writeln!(o, "; head seq {} hash {}", h.seq, to_hex(&h.hash));
        }
        None => o.push_str("; empty\n"),
    }
    if r.ok {
        o.push_str("intact\n");
    } else {
        let _ = writeln!(o, "TAMPERED: {} problem(s)", r.problems.len());
        for p in &r.problems {
            let _ = writeln!(o, "  {p}");
        }
    }
    o
}

fn receipt(
    data_dir: &Path,
    secret_file: &Path,
    id_type: &str,
    id_no: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let secret = read_secret(secret_file)?;
    let id_no = if id_no == "-" {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the ID number from standard input")?;
        line
    } else {
        Zeroizing::new(id_no.to_owned())
    };
    if id_no.trim().is_empty() {
        bail!("the ID number is empty");
    }
    // A mistyped resident ID number would find no record and look like "nobody asked".
    if id_type == crate::national::validate::ID_TYPE_RESIDENT_CARD {
        let std = crate::standard::Standard::embedded();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let today = crate::national::time::Date::beijing_today(now);
        // As the pseudonym takes it: an `x` is an `X`.
        let upper = Zeroizing::new(id_no.trim().to_ascii_uppercase());
        if let Err(e) = crate::national::idno::check(&upper, &std.divisions, today) {
            // Said without the number's parts (a birth date, the right check character).
            bail!(
                "the ID number is not a valid resident ID number (GB 11643: {}); nothing was looked up",
                e.without_values()
            );
        }
    }
    let subject = pseudonym(&secret, id_type, &id_no);
    drop(id_no);
    let (_, log) = open_log(data_dir)?;
    let records = log.receipt(&subject)?;
    if json {
        let doc = serde_json::json!({ "pseudonym": subject.to_hex(), "records": records });
        say!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        say_raw!("{}", receipt_text(&subject.to_hex(), &records));
    }
    Ok(ExitCode::SUCCESS)
}

/// The pseudonym secret: hex of at least [`MIN_MAC_KEY_LEN`] bytes, surrounding whitespace
/// ignored.
fn read_secret(path: &Path) -> anyhow::Result<MacKey> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    let hex = text.trim();
    if hex.len() % 2 != 0 || hex.len() / 2 < MIN_MAC_KEY_LEN {
        bail!(
            "{}: the pseudonym secret must be hex of at least {MIN_MAC_KEY_LEN} bytes",
            path.display()
        );
    }
    let mut bytes = Zeroizing::new(vec![0u8; hex.len() / 2]);
    crate::crypto::decode_hex_into(hex, &mut bytes, "pseudonym secret")
        .with_context(|| format!("{}", path.display()))?;
    Ok(MacKey::from_bytes(&bytes)?)
}

fn receipt_text(pseudonym: &str, records: &[AuditRecord]) -> String {
    let mut o = format!(
        "receipt for pseudonym {pseudonym}: {} record(s)\n",
        records.len()
    );
    if records.is_empty() {
        return o;
    }
    let header = [
        "seq", "time", "actor", "action", "purpose", "result", "request", "loss",
    ];
    let rows: Vec<[String; 8]> = records
        .iter()
        .map(|r| {
            let secs = i64::try_from(r.time_ms / 1000).unwrap_or(i64::MAX);
            [
                r.seq.to_string(),
                DateTime::from_unix(secs).to_string(),
                r.actor.clone(),
                r.action.clone(),
                r.purpose.clone(),
                r.result.clone(),
                r.request_id.clone(),
                if r.loss.is_empty() {
                    "-".to_owned()
                } else {
                    r.loss.join(",")
                },
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (cell, w) in cells.zip(widths) {
            let _ = write!(l, "{cell:<w$}  ");
        }
        let _ = writeln!(o, "{}", l.trim_end());
    };
    line(&mut header.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    o
}
