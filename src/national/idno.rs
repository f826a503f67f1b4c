//! Citizen ID numbers of GB 11643-1999 (居民身份证号码), ID type `10`.
//!
//! Eighteen characters: a 6-digit address code (a GB/T 2260 division of the revision in
//! force when the number was issued, so historic codes count), an 8-digit birth date, a
//! 3-digit sequence (odd for men, even for women) and an ISO 7064 MOD 11-2 check character
//! (`0`-`9` or upper-case `X`).

use crate::standard::Divisions;

use super::time::Date;

/// ISO 7064 MOD 11-2 weights of the first 17 digits.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character by remainder.
const CHECK: [u8; 11] = *b"10X98765432";
/// Births before this year are not plausible for a living holder.
pub const EARLIEST_BIRTH_YEAR: i32 = 1900;

/// What is wrong with an ID number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    /// Not 18 characters.
    #[error("must be 18 characters, got {0}")]
    Length(usize),
    /// The first 17 are not all digits, or the last is not a digit or `X`.
    #[error("must be 17 digits followed by a digit or X")]
    Characters,
    /// The check character is a lower-case `x`.
    #[error("the check character must be an upper-case X")]
    LowercaseX,
    /// Characters 7-14 are not a calendar date.
    #[error("characters 7-14 are not a real date")]
    BirthDate,
    /// The birth date is before 1900 or after the validation clock's date.
    #[error("birth date {0} is out of range")]
    BirthOutOfRange(Date),
    /// The address code is in no revision of GB/T 2260.
    #[error("address code {0} is in no revision of GB/T 2260")]
    Region(String),
    /// The check character does not match.
    #[error("check character is {found}, expected {expected}")]
    CheckDigit {
        /// The one in the number.
        found: char,
        /// The one the digits give.
        expected: char,
    },
}

impl IdNumberError {
    /// What is wrong, without any part of the number (its birth date, its address code,
    /// its check character): for messages that may be read by someone other than the
    /// number's holder, or kept.
    pub const fn without_values(&self) -> &'static str {
        match self {
            Self::Length(_) => "it is not 18 characters",
            Self::Characters => "it is not 17 digits followed by a digit or X",
            Self::LowercaseX => "its check character must be an upper-case X",
            Self::BirthDate => "characters 7-14 are not a real date",
            Self::BirthOutOfRange(_) => "its birth date is out of range",
            Self::Region(_) => "its address code is in no revision of GB/T 2260",
            Self::CheckDigit { .. } => "its check character does not match",
        }
    }
}

/// The sex an ID number records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSex {
    /// Odd sequence: GB/T 2261.1 code `1`.
    Male,
    /// Even sequence: code `2`.
    Female,
}

impl IdSex {
    /// The GB/T 2261.1 code.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Male => "1",
            Self::Female => "2",
        }
    }
}

/// What a valid ID number says of its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdInfo {
    /// The address code.
    pub region: String,
    /// The birth date.
    pub birth: Date,
    /// The sex.
    pub sex: IdSex,
}

/// The check character for the first 17 digits.
pub fn check_char(first17: &[u8]) -> u8 {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d.wrapping_sub(b'0')) * w)
        .sum();
    CHECK[(sum % 11) as usize]
}

/// Checks an ID number completely. `today` bounds the birth date.
///
/// # Errors
/// The first problem found, in the order length, characters, date, region, check digit.
pub fn check(id: &str, divisions: &Divisions, today: Date) -> Result<IdInfo, IdNumberError> {
    let b = id.as_bytes();
    if b.len() != 18 {
        return Err(IdNumberError::Length(id.chars().count()));
    }
    if !b[..17].iter().all(u8::is_ascii_digit) {
        return Err(IdNumberError::Characters);
    }
    match b[17] {
        b'0'..=b'9' | b'X' => {}
        b'x' => return Err(IdNumberError::LowercaseX),
        _ => return Err(IdNumberError::Characters),
    }
    let birth = Date::parse_compact(&b[6..14]).ok_or(IdNumberError::BirthDate)?;
    if birth.year < EARLIEST_BIRTH_YEAR || birth > today {
        return Err(IdNumberError::BirthOutOfRange(birth));
    }
    let region = &id[..6];
    if !divisions.is_known(region) {
        return Err(IdNumberError::Region(region.to_owned()));
    }
    let expected = check_char(&b[..17]);
    if b[17] != expected {
        return Err(IdNumberError::CheckDigit {
            found: char::from(b[17]),
            expected: char::from(expected),
        });
    }
    let sex = if (b[16] - b'0') % 2 == 1 {
        IdSex::Male
    } else {
        IdSex::Female
    };
    Ok(IdInfo {
        region: region.to_owned(),
        birth,
        sex,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standard::Standard;

    fn today() -> Date {
        Date::new(2026, 11, 23).unwrap()
    }

    #[test]
    fn accepts_the_gb11643_example() {
        // The worked example of GB 11643-1999: 11010519491231002X.
        let s = Standard::embedded();
        let info = check("11010519491231002X", &s.divisions, today()).unwrap();
        assert_eq!(info.birth.to_string(), "1949-12-31");
        assert_eq!(info.sex, IdSex::Female);
    }

    #[test]
    fn names_each_defect() {
        let s = Standard::embedded();
        let d = &s.divisions;
        assert_eq!(
            check("1101051949123100", d, today()),
            Err(IdNumberError::Length(16))
        );
        assert_eq!(
            check("11010519491231002x", d, today()),
            Err(IdNumberError::LowercaseX)
        );
        assert_eq!(
            check("1101051949123A002X", d, today()),
            Err(IdNumberError::Characters)
        );
        assert_eq!(
            check("11010519490231002X", d, today()),
            Err(IdNumberError::BirthDate)
        );
        assert!(matches!(
            check("11010518991231002X", d, today()),
            Err(IdNumberError::BirthOutOfRange(_))
        ));
        assert!(matches!(
            check("11010520991231002X", d, today()),
            Err(IdNumberError::BirthOutOfRange(_))
        ));
        assert_eq!(
            check("99010519491231002X", d, today()),
            Err(IdNumberError::Region("990105".into()))
        );
        assert_eq!(
            check("110105194912310021", d, today()),
            Err(IdNumberError::CheckDigit {
                found: '1',
                expected: 'X'
            })
        );
    }
}
