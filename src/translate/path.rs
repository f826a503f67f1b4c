//! Dotted field paths (`resultData.data.level`) over JSON values: read, write, and the
//! leaves of a document, which is how the engine finds what no rule consumed.

use serde_json::{Map, Value};

/// The value at a dotted path, if every step is an object holding the next key.
pub(crate) fn get<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(root, |v, key| v.as_object()?.get(key))
}

/// [`get`], stepping into the first element of an array met on the way: an XML element
/// repeated (two `<yqReports>`) is an array, where one of it is an object. Also whether an
/// array met had more than one element, so that the rest went unread.
pub(crate) fn get_first<'a>(root: &'a Value, path: &str) -> Option<(&'a Value, bool)> {
    let mut more = false;
    let mut cur = root;
    for key in path.split('.') {
        if let Value::Array(items) = cur {
            more |= items.len() > 1;
            cur = items.first()?;
        }
        cur = cur.as_object()?.get(key)?;
    }
    Some((cur, more))
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

/// Most leaves [`leaves`] lists: a regional message has tens of fields.
pub(crate) const MAX_LEAVES: usize = 4_096;

/// Longest dotted path [`leaves`] lists, bytes.
pub(crate) const MAX_PATH_BYTES: usize = 1_024;

/// Every leaf of a document with its dotted path. Arrays and empty objects are leaves:
/// rules map them whole.
///
/// Each path is written out whole, so a long key above many leaves would be copied into
/// every one of them (a megabyte key over a hundred thousand fields is a hundred
/// gigabytes): a document with more than [`MAX_LEAVES`] leaves, or a path longer than
/// [`MAX_PATH_BYTES`], is refused, as no regional message has either.
pub(crate) fn leaves(root: &Value) -> Result<Vec<String>, super::TranslateError> {
    fn walk(v: &Value, prefix: &str, out: &mut Vec<String>) -> Result<(), &'static str> {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, child) in m {
                    if prefix.len() + 3 + k.len() > MAX_PATH_BYTES {
                        return Err("field paths of at most 1024 bytes");
                    }
                    // A key no dotted path can name (empty, or holding a dot) is one leaf,
                    // in brackets, with all under it: no rule reads it, so it is reported
                    // as lost, where a path spelt like a rule's would have passed as read.
                    let unnamable = k.is_empty() || k.contains('.');
                    let key = if unnamable {
                        format!("[{k}]")
                    } else {
                        k.clone()
                    };
                    let p = if prefix.is_empty() {
                        key
                    } else {
                        format!("{prefix}.{key}")
                    };
                    if unnamable {
                        walk(&Value::Null, &p, out)?;
                    } else {
                        walk(child, &p, out)?;
                    }
                }
            }
            _ if !prefix.is_empty() => {
                if out.len() == MAX_LEAVES {
                    return Err("at most 4096 fields");
                }
                out.push(prefix.to_owned());
            }
            _ => {}
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, "", &mut out).map_err(|expected| super::TranslateError::Shape {
        path: "the message".to_owned(),
        expected,
    })?;
    Ok(out)
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
        assert_eq!(
            leaves(&v).unwrap(),
            vec!["resultData.data.level", "errCode"]
        );

        assert_eq!(
            set(&mut v, "errCode.x", json!(1)),
            Err("errCode.x".to_owned())
        );
        assert!(covers("a.b", "a.b.c") && covers("a.b", "a.b") && !covers("a.b", "a.bc"));
        assert!(is_valid("a.b_c") && !is_valid("a..b") && !is_valid(""));
        assert!(is_valid("Envelope.@xmlns") && is_valid("a.#text"));
        assert!(!is_valid("a.@") && !is_valid("a.#b") && !is_valid("a.b@c"));
    }

    #[test]
    fn leaves_refuse_a_document_that_would_copy_a_long_key_into_many_paths() {
        // A key of a megabyte over a hundred thousand fields made each path a copy of it.
        let many = |n: usize| {
            (0..n)
                .map(|i| (format!("f{i}"), Value::from(0)))
                .collect::<Map<String, Value>>()
        };
        let mut wide = Map::new();
        wide.insert("k".repeat(2_000), Value::Object(many(3)));
        assert!(
            leaves(&Value::Object(wide)).is_err(),
            "a path past 1024 bytes"
        );
        assert_eq!(
            leaves(&Value::Object(many(MAX_LEAVES))).unwrap().len(),
            MAX_LEAVES
        );
        assert!(leaves(&Value::Object(many(MAX_LEAVES + 1))).is_err());
        let mut long_ok = Map::new();
        long_ok.insert("k".repeat(1_000), Value::Object(many(2)));
        assert_eq!(leaves(&Value::Object(long_ok)).unwrap().len(), 2);
    }

    #[test]
    fn a_key_no_path_can_name_is_a_leaf_no_rule_covers() {
        // `res.name` as one key was listed as the path `res.name`, which a rule for the
        // nested field covers, so its value passed as read; an empty key was no leaf.
        let v = json!({"res": {"level": 1}, "res.name": "x", "": {"a": 1}});
        let got = leaves(&v).unwrap();
        assert!(got.contains(&"[res.name]".to_owned()), "{got:?}");
        assert!(got.contains(&"[]".to_owned()), "{got:?}");
        assert!(!covers("res.name", "[res.name]"));
        assert_eq!(got.len(), 3, "{got:?}");
    }
}
