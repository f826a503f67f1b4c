//! Dotted field paths (`resultData.data.level`) over JSON values: read, write, and the
//! leaves of a document, which is how the engine finds what no rule consumed.

use serde_json::{Map, Value};

/// The value at a dotted path, if every step is an object holding the next key.
pub(crate) fn get<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(root, |v, key| v.as_object()?.get(key))
}

/// Writes `value` at a dotted path, creating objects on the way. Fails with the prefix
/// that is already something other than an object.
pub(crate) fn set(root: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let mut cur = root;
    let mut walked = String::new();
    let mut keys = path.split('.').peekable();
    while let Some(key) = keys.next() {
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(key);
        let Value::Object(map) = cur else {
            return Err(walked);
        };
        if keys.peek().is_none() {
            map.insert(key.to_owned(), value);
            return Ok(());
        }
        cur = map
            .entry(key.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Ok(())
}

/// Every leaf of a document with its dotted path. Arrays and empty objects are leaves:
/// rules map them whole.
pub(crate) fn leaves(root: &Value) -> Vec<String> {
    fn walk(v: &Value, prefix: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, child) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(child, &p, out);
                }
            }
            _ if !prefix.is_empty() => out.push(prefix.to_owned()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(root, "", &mut out);
    out
}

/// Whether `path` is `covered` or lies under it (`a.b` covers `a.b.c`, not `a.bc`).
pub(crate) fn covers(covered: &str, path: &str) -> bool {
    path == covered
        || (path.len() > covered.len()
            && path.starts_with(covered)
            && path.as_bytes()[covered.len()] == b'.')
}

/// Whether a path is well formed: non-empty keys of ASCII letters, digits, `_` or `-`;
/// a key may start with `@` (an XML attribute) or be `#text` (an XML element's text).
pub(crate) fn is_valid(path: &str) -> bool {
    !path.is_empty()
        && path.split('.').all(|k| {
            let name = k.strip_prefix('@').unwrap_or(k);
            k == super::xml::TEXT_KEY
                || (!name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_writes_and_lists_leaves() {
        let mut v = json!({});
        set(&mut v, "resultData.data.level", json!("green")).unwrap();
        set(&mut v, "errCode", json!(0)).unwrap();
        assert_eq!(get(&v, "resultData.data.level"), Some(&json!("green")));
        assert_eq!(get(&v, "resultData.nope"), None);
        assert_eq!(leaves(&v), vec!["resultData.data.level", "errCode"]);
        assert_eq!(
            set(&mut v, "errCode.x", json!(1)),
            Err("errCode.x".to_owned())
        );
        assert!(covers("a.b", "a.b.c") && covers("a.b", "a.b") && !covers("a.b", "a.bc"));
        assert!(is_valid("a.b_c") && !is_valid("a..b") && !is_valid(""));
        assert!(is_valid("Envelope.@xmlns") && is_valid("a.#text"));
        assert!(!is_valid("a.@") && !is_valid("a.#b") && !is_valid("a.b@c"));
    }
}
