//! Masking of personal fields for every output to anyone but the holder (DESIGN.md §8,
//! profile §2.4): name `张*`, ID `11**************01`, phone `186****5247`.
//!
//! Masking counts characters, not bytes, so Chinese names mask correctly, and it never
//! reveals more than the rule allows, even for values shorter than the kept parts.

use crate::standard::PersonalClass;

/// Masks a value of the given personal class.
pub fn mask(class: PersonalClass, value: &str) -> String {
    match class {
        PersonalClass::Name => keep(value, 1, 0),
        PersonalClass::Id => {
            // 2 + 2 of an ID number of 9 characters and more (`11**************01`); a
            // shorter document number keeps 1 + 1 (from 5 characters) or its first alone,
            // so that more than half is hidden.
            let n = value.chars().count();
            if n >= 9 {
                keep(value, 2, 2)
            } else if n >= 5 {
                keep(value, 1, 1)
            } else {
                keep(value, 1, 0)
            }
        }
        PersonalClass::Phone => {
            // 3 + 4 for a mobile number (11 digits and more: `186****5247`); a shorter one
            // (an 8-digit landline) keeps 2 + 2, so that at least half is hidden; below 8,
            // nothing is shown.
            let n = value.chars().count();
            if n >= 11 {
                let head: String = value.chars().take(3).collect();
                let tail: String = value.chars().skip(n - 4).collect();
                format!("{head}****{tail}")
            } else if n >= 8 {
                keep(value, 2, 2)
            } else {
                "*".repeat(n.max(1))
            }
        }
    }
}

/// Keeps `head` leading and `tail` trailing characters and stars the rest. When the value
/// is too short to hide anything that way, it is starred whole but for the first character
/// (a name of one character becomes `*`).
fn keep(value: &str, head: usize, tail: usize) -> String {
    // By byte offsets into `value`, with one allocation (a vector of its characters, then
    // the pieces, took five a masked value).
    let n = value.chars().count();
    let (shown, stars) = if n <= head + tail {
        let shown = usize::from(n > 1);
        (shown, n - shown)
    } else {
        (head, n - head - tail)
    };
    let at = |chars: usize| {
        value
            .char_indices()
            .nth(chars)
            .map_or(value.len(), |(i, _)| i)
    };
    let (start, end) = (at(shown), at(shown + stars));
    let mut out = String::with_capacity(start + stars + (value.len() - end));
    out.push_str(&value[..start]);
    out.extend(std::iter::repeat_n('*', stars));
    out.push_str(&value[end..]);
    out
}

/// Masks again, by the profile's rules, every `nameMasked` and `idNoMasked` in a region's
/// answer, at any depth (`person.nameMasked`, an answer's list of people). A region's own
/// masking may keep more than the profile allows, or none at all (the schema checks only
/// a length); masking a masked value changes nothing. A value that is not text is left
/// for validation.
pub fn remask_answer(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let class = match k.as_str() {
                    "nameMasked" => Some(PersonalClass::Name),
                    "idNoMasked" => Some(PersonalClass::Id),
                    _ => None,
                };
                match (class, x) {
                    (Some(c), serde_json::Value::String(s)) => {
                        let masked = mask(c, s);
                        if masked != *s {
                            *s = masked;
                        }
                    }
                    (_, x) => remask_answer(x),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(remask_answer),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regions_answer_is_masked_again_at_any_depth() {
        let mut v = serde_json::json!({
            "nameMasked": "张三丰",
            "idNoMasked": "110105194912310029",
            "person": {"nameMasked": "李*", "idNoMasked": 12},
            "regions": [{"nameMasked": "王小明"}],
            "name": "unchanged: not a masked field",
        });
        remask_answer(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "nameMasked": "张**",
                "idNoMasked": "11**************29",
                "person": {"nameMasked": "李*", "idNoMasked": 12},
                "regions": [{"nameMasked": "王**"}],
                "name": "unchanged: not a masked field",
            })
        );
    }

    #[test]
    fn masks_as_the_profile_shows() {
        assert_eq!(mask(PersonalClass::Name, "张三"), "张*");
        assert_eq!(mask(PersonalClass::Name, "欧阳娜娜"), "欧***");
        assert_eq!(
            mask(PersonalClass::Id, "11010519491231002X"),
            "11**************2X"
        );
        assert_eq!(mask(PersonalClass::Phone, "18612345247"), "186****5247");
    }

    #[test]
    fn never_shows_a_short_value_whole() {
        assert_eq!(mask(PersonalClass::Name, "张"), "*");
        assert_eq!(mask(PersonalClass::Id, "1234"), "1***");
        // A short document number: more than half hidden.
        assert_eq!(mask(PersonalClass::Id, "AB123"), "A***3");
        assert_eq!(mask(PersonalClass::Id, "A123456"), "A*****6");
        assert_eq!(mask(PersonalClass::Id, "E1234567"), "E******7");
        assert_eq!(mask(PersonalClass::Id, "E12345678"), "E1*****78");
        for id in ["AB123", "A123456", "1234", "E1234567", "E12345678"] {
            let m = mask(PersonalClass::Id, id);
            assert_eq!(mask(PersonalClass::Id, &m), m, "idempotent");
            let shown = m.chars().filter(|&c| c != '*').count();
            assert!(2 * shown < id.chars().count(), "{id} → {m}");
        }
        assert_eq!(mask(PersonalClass::Phone, "12345"), "*****");
        assert_eq!(mask(PersonalClass::Name, ""), "");
    }

    #[test]
    fn masking_a_masked_value_changes_nothing_and_a_lax_one_is_tightened() {
        for (class, masked) in [
            (PersonalClass::Name, "张*"),
            (PersonalClass::Name, "欧***"),
            (PersonalClass::Id, "11**************2X"),
            (PersonalClass::Phone, "186****5247"),
        ] {
            assert_eq!(mask(class, masked), masked);
        }
        // A region that kept too much (the whole given name; six digits of the ID).
        assert_eq!(mask(PersonalClass::Name, "张三丰"), "张**");
        assert_eq!(
            mask(PersonalClass::Id, "110105********002X"),
            "11**************2X"
        );
    }

    /// `keep` as it was written first, over a vector of characters: the reference.
    fn keep_by_chars(value: &str, head: usize, tail: usize) -> String {
        let chars: Vec<char> = value.chars().collect();
        let n = chars.len();
        if n == 0 {
            return String::new();
        }
        if n <= head + tail {
            let shown = usize::from(n > 1);
            return chars[..shown].iter().collect::<String>() + &"*".repeat(n - shown);
        }
        let mut out: String = chars[..head].iter().collect();
        out.push_str(&"*".repeat(n - head - tail));
        out.extend(&chars[n - tail..]);
        out
    }

    #[test]
    fn keep_by_offsets_is_keep_by_characters() {
        let values = [
            "",
            "a",
            "张",
            "ab",
            "张三",
            "欧阳娜娜",
            "11010519491231002X",
            "65123456",
            "13800138000",
            "a张b三c",
            "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
            "x\u{301}y",
        ];
        for v in values {
            for head in 0..5 {
                for tail in 0..5 {
                    assert_eq!(
                        keep(v, head, tail),
                        keep_by_chars(v, head, tail),
                        "{v:?} {head} {tail}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_short_phone_number_keeps_no_more_than_half() {
        // An 8-digit landline: 3 + 4 would have hidden one digit behind four stars.
        assert_eq!(mask(PersonalClass::Phone, "65123456"), "65****56");
        for n in 8..=10 {
            let v = "9".repeat(n);
            let shown = mask(PersonalClass::Phone, &v)
                .chars()
                .filter(|c| *c == '9')
                .count();
            assert!(shown * 2 <= n, "{n} digits: {shown} shown");
        }
    }
}
