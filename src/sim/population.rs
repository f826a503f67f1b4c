//! The synthetic population of a simulated region, deterministic from a seed.
//!
//! Every person has a valid GB 11643 ID number (a real county code of the region, a birth
//! date, a sequence whose parity gives the sex, the MOD 11-2 check character), a name drawn
//! from common surnames and given-name characters, a mobile number, a colour from the
//! configured mix with a reason, nucleic-acid and vaccination records, a code id, a national
//! code id and a user token. The same seed, size, region, mix and clock give the same people.
//!
//! Persons are looked up by `(idType, idNo)`, by code id, by national code id and by user
//! token.

use std::collections::HashMap;

use crate::code::{CodeId, Colour};
use crate::national::idno::{self, IdSex};
use crate::national::time::Date;
use crate::standard::{Divisions, Level};

use super::SimError;
use super::names::{FEMALE_GIVEN, MALE_GIVEN, PHONE_PREFIXES, SHARED_GIVEN, SURNAMES};

/// The ID type every simulated person holds: 居民身份证.
pub const ID_TYPE: &str = "10";

/// Body temperature at or above which a declaration turns the code yellow, °C.
pub const FEVER_CELSIUS: f64 = 37.3;

/// A small, fast, seedable generator (SplitMix64). Not for secrets: only for making up
/// people and rolling faults reproducibly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// One element of a non-empty slice.
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// 32 lowercase hex digits.
    pub fn hex32(&mut self) -> String {
        format!("{:016x}{:016x}", self.next_u64(), self.next_u64())
    }
}

/// The share of each colour in a new population, as weights (`90:7:3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColourMix {
    /// Weight of green.
    pub green: u32,
    /// Weight of yellow.
    pub yellow: u32,
    /// Weight of red.
    pub red: u32,
}

impl Default for ColourMix {
    fn default() -> Self {
        Self {
            green: 90,
            yellow: 7,
            red: 3,
        }
    }
}

impl ColourMix {
    /// Parses `G:Y:R` weights, e.g. `90:7:3`; at least one must be positive.
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let bad = || format!("colour mix `{s}` is not GREEN:YELLOW:RED weights, e.g. 90:7:3");
        let [g, y, r] = parts.as_slice() else {
            return Err(bad());
        };
        let n = |p: &str| p.trim().parse::<u32>().map_err(|_| bad());
        let mix = Self {
            green: n(g)?,
            yellow: n(y)?,
            red: n(r)?,
        };
        if u64::from(mix.green) + u64::from(mix.yellow) + u64::from(mix.red) == 0 {
            return Err(format!("colour mix `{s}` has no positive weight"));
        }
        Ok(mix)
    }

    fn draw(&self, rng: &mut Rng) -> Colour {
        let total = u64::from(self.green) + u64::from(self.yellow) + u64::from(self.red);
        let x = rng.below(total);
        if x < u64::from(self.green) {
            Colour::Green
        } else if x < u64::from(self.green) + u64::from(self.yellow) {
            Colour::Yellow
        } else {
            Colour::Red
        }
    }
}

/// How severe a colour is: the most severe of several sources wins.
pub fn severity(c: Colour) -> u8 {
    match c {
        Colour::Green => 0,
        Colour::Unknown | Colour::Grey => 1,
        Colour::Yellow => 2,
        Colour::Red => 3,
    }
}

/// The latest nucleic-acid test.
#[derive(Debug, Clone, PartialEq)]
pub struct Nucleic {
    /// `1` negative, `2` positive, `9` no record.
    pub result: &'static str,
    /// Sampling time, Unix seconds.
    pub time: Option<i64>,
    /// Testing organisation.
    pub org: Option<String>,
}

/// Vaccination.
#[derive(Debug, Clone, PartialEq)]
pub struct Vaccine {
    /// Doses received, 0 to 4.
    pub doses: u8,
    /// Date of the latest dose.
    pub last_date: Option<Date>,
}

/// The latest health declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct Declaration {
    /// Temperature, °C.
    pub temperature: Option<f64>,
    /// Symptom codes, `^`-joined.
    pub symptoms: String,
    /// `1` stayed in a high-risk area, `2` not.
    pub high_risk_stay: String,
    /// `1`, `2` or `3`.
    pub contact_history: String,
    /// Declared at, Unix seconds.
    pub declare_time: i64,
}

/// One simulated person. Personal fields: never log them.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// GB 11643 ID number (ID type [`ID_TYPE`]).
    pub id_no: String,
    /// Name.
    pub name: String,
    /// Sex, as the ID number records it.
    pub sex: IdSex,
    /// Birth date.
    pub birth: Date,
    /// Mobile number.
    pub phone: String,
    /// County of household registration (the ID number's address code).
    pub household_region: String,
    /// The colour the region's own rules gave (close contact, positive test…).
    pub assigned: Colour,
    /// Why the assigned colour.
    pub assigned_reason: String,
    /// The latest declaration asks for at least yellow.
    pub health_flag: bool,
    /// A declared trip asks for at least yellow.
    pub trip_flag: bool,
    /// The colour now: the most severe of the above.
    pub colour: Colour,
    /// Why the colour now.
    pub color_reason: String,
    /// When the colour was last set, Unix seconds.
    pub update_time: i64,
    /// Latest nucleic-acid test.
    pub nucleic: Nucleic,
    /// Vaccination.
    pub vaccine: Vaccine,
    /// Latest health declaration.
    pub declaration: Option<Declaration>,
    /// The region's code id.
    pub code_id: CodeId,
    /// The national platform's code id.
    pub national_code_id: CodeId,
    /// The issuer-scoped user id that apps hold.
    pub user_token: String,
    /// 通勤人员标识: registered to commute across the region's boundary (Beijing's
    /// rules). About one person in ten, by the ID number's 16th digit (no random draw, so
    /// the rest of the population is the same with or without it).
    pub commuter: bool,
}

impl Person {
    /// Re-evaluates the colour from the assigned colour and the declaration flags; when it
    /// changes, the update time moves to `now`. Returns whether it changed.
    pub fn reevaluate(&mut self, now: i64) -> bool {
        let (mut colour, mut reason) = (self.assigned, self.assigned_reason.clone());
        if self.health_flag && severity(Colour::Yellow) > severity(colour) {
            colour = Colour::Yellow;
            reason = "健康申报异常".to_owned();
        }
        if self.trip_flag && severity(Colour::Yellow) > severity(colour) {
            colour = Colour::Yellow;
            reason = "14天内有中高风险地区旅居史".to_owned();
        }
        let changed = colour != self.colour;
        if changed {
            self.colour = colour;
            self.update_time = now;
        }
        self.color_reason = reason;
        changed
    }
}

/// The people of one simulated region, with their indexes.
#[derive(Debug, Default)]
pub struct Population {
    persons: Vec<Person>,
    by_id: HashMap<String, usize>,
    by_code: HashMap<String, usize>,
    by_national_code: HashMap<String, usize>,
    by_token: HashMap<String, usize>,
}

/// Largest population the simulator makes.
pub const MAX_POPULATION: usize = 5_000_000;

impl Population {
    /// Makes `size` people of `region` (a current GB/T 2260 code; its counties give the
    /// address codes), colours drawn from `mix`, times relative to `now` (Unix seconds).
    pub fn generate(
        seed: u64,
        size: usize,
        region: &str,
        mix: ColourMix,
        divisions: &Divisions,
        now: i64,
    ) -> Result<Self, SimError> {
        if size > MAX_POPULATION {
            return Err(SimError::Config(vec![format!(
                "population {size} is over the limit of {MAX_POPULATION}"
            )]));
        }
        let counties = counties_of(region, divisions)?;
        let mut rng = Rng::new(seed);
        let today = Date::beijing_today(now);
        let mut population = Self::default();
        while population.persons.len() < size {
            let county = rng.pick(&counties).clone();
            let sex = if rng.below(2) == 0 {
                IdSex::Male
            } else {
                IdSex::Female
            };
            let age_days = 365 + rng.below(89 * 365) as i64;
            let birth = Date::from_days(today.days_since_epoch() - age_days);
            let id_no = id_number(&county, birth, sex, &mut rng);
            if population.by_id.contains_key(&id_no) {
                continue;
            }
            let person = person(id_no, county, birth, sex, mix, divisions, now, &mut rng);
            population.insert(person);
        }
        Ok(population)
    }

    fn insert(&mut self, p: Person) {
        let i = self.persons.len();
        self.by_id.insert(p.id_no.clone(), i);
        self.by_code.insert(p.code_id.as_str().to_owned(), i);
        self.by_national_code
            .insert(p.national_code_id.as_str().to_owned(), i);
        self.by_token.insert(p.user_token.clone(), i);
        self.persons.push(p);
    }

    /// Number of people.
    pub fn len(&self) -> usize {
        self.persons.len()
    }

    /// Whether there is nobody.
    pub fn is_empty(&self) -> bool {
        self.persons.is_empty()
    }

    /// The person at an index.
    pub fn get(&self, i: usize) -> Option<&Person> {
        self.persons.get(i)
    }

    /// The person at an index, to update.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Person> {
        self.persons.get_mut(i)
    }

    /// Everybody, in generation order.
    pub fn iter(&self) -> impl Iterator<Item = &Person> {
        self.persons.iter()
    }

    /// The index of the holder of an ID document.
    pub fn find_id(&self, id_type: &str, id_no: &str) -> Option<usize> {
        (id_type == ID_TYPE)
            .then(|| self.by_id.get(id_no).copied())
            .flatten()
    }

    /// The index of the holder of a code id.
    pub fn find_code(&self, code_id: &str) -> Option<usize> {
        self.by_code.get(code_id).copied()
    }

    /// The index of the holder of a national code id.
    pub fn find_national_code(&self, national_code_id: &str) -> Option<usize> {
        self.by_national_code.get(national_code_id).copied()
    }

    /// The index of the holder of a user token.
    pub fn find_token(&self, user_token: &str) -> Option<usize> {
        self.by_token.get(user_token).copied()
    }
}

/// The county-level codes at or under `region`; the region itself if it has none.
fn counties_of(region: &str, divisions: &Divisions) -> Result<Vec<String>, SimError> {
    let code = Divisions::parse_code(region)
        .filter(|_| divisions.is_current(region))
        .ok_or_else(|| {
            SimError::Config(vec![format!(
                "region `{region}` is not a current GB/T 2260 division"
            )])
        })?;
    let within = |c: u32| match Level::of(code) {
        Level::Province => c / 10_000 == code / 10_000,
        Level::Prefecture => c / 100 == code / 100,
        Level::County => c == code,
    };
    let mut out: Vec<String> = divisions
        .iter()
        .filter(|(c, name)| within(*c) && Level::of(*c) == Level::County && *name != "市辖区")
        .map(|(c, _)| format!("{c:06}"))
        .collect();
    if out.is_empty() {
        out.push(format!("{code:06}"));
    }
    Ok(out)
}

fn id_number(county: &str, birth: Date, sex: IdSex, rng: &mut Rng) -> String {
    let mut seq = rng.below(500) * 2 + u64::from(sex == IdSex::Male);
    if seq == 0 {
        seq = 2;
    }
    let mut id = format!(
        "{county}{:04}{:02}{:02}{seq:03}",
        birth.year, birth.month, birth.day
    );
    let check = idno::check_char(id.as_bytes());
    id.push(char::from(check));
    id
}

#[allow(clippy::too_many_arguments)]
fn person(
    id_no: String,
    county: String,
    birth: Date,
    sex: IdSex,
    mix: ColourMix,
    divisions: &Divisions,
    now: i64,
    rng: &mut Rng,
) -> Person {
    let name = name(sex, rng);
    let phone = format!("{}{:08}", rng.pick(PHONE_PREFIXES), rng.below(100_000_000));
    let assigned = mix.draw(rng);
    let positive = assigned == Colour::Red && rng.below(3) == 0;
    let assigned_reason = match assigned {
        Colour::Green | Colour::Unknown => "未见异常",
        Colour::Grey => "其他状态",
        Colour::Yellow => rng.pick(&[
            "14天内有中高风险地区旅居史",
            "未按要求完成核酸检测",
            "居家健康监测中",
        ]),
        Colour::Red if positive => "核酸检测阳性",
        Colour::Red => rng.pick(&["密切接触者", "集中隔离医学观察中"]),
    }
    .to_owned();
    let update_time = now - rng.below(7 * 86_400) as i64;
    let nucleic = if positive || rng.below(100) < 85 {
        let city = city_name(&county, divisions);
        let org = match rng.below(5) {
            0 => format!("{city}第一人民医院"),
            1 => format!("{city}疾病预防控制中心"),
            2 => format!("{city}中医院"),
            3 => "金域医学检验中心".to_owned(),
            _ => "迪安诊断检验所".to_owned(),
        };
        Nucleic {
            result: if positive { "2" } else { "1" },
            time: Some(now - 3600 - rng.below(71 * 3600) as i64),
            org: Some(org),
        }
    } else {
        Nucleic {
            result: "9",
            time: None,
            org: None,
        }
    };
    let doses = match rng.below(100) {
        0..5 => 0,
        5..10 => 1,
        10..30 => 2,
        30..90 => 3,
        _ => 4,
    };
    let today = Date::beijing_today(now);
    let last = Date::from_days(today.days_since_epoch() - 30 - rng.below(700) as i64);
    let vaccine = Vaccine {
        doses,
        last_date: (doses > 0 && last > birth).then_some(last),
    };
    let code_id = CodeId::parse(&rng.hex32());
    let national_code_id = CodeId::parse(&rng.hex32());
    let user_token = format!("ut{}", rng.hex32());
    // `hex32` always gives 32 lowercase hex digits, which `CodeId::parse` accepts.
    #[allow(clippy::expect_used)]
    let (code_id, national_code_id) = (
        code_id.expect("32 hex digits"),
        national_code_id.expect("32 hex digits"),
    );
    let commuter = id_no.as_bytes().get(15) == Some(&b'3');
    Person {
        commuter,
        id_no,
        name,
        sex,
        birth,
        phone,
        household_region: county,
        assigned,
        assigned_reason: assigned_reason.clone(),
        health_flag: false,
        trip_flag: false,
        colour: assigned,
        color_reason: assigned_reason,
        update_time,
        nucleic,
        vaccine,
        declaration: None,
        code_id,
        national_code_id,
        user_token,
    }
}

/// The city a county belongs to, for organisation names: the prefecture, or the province
/// for municipalities whose prefecture level is a placeholder.
fn city_name(county: &str, divisions: &Divisions) -> String {
    let Some(c) = Divisions::parse_code(county) else {
        return String::new();
    };
    let prefecture = format!("{:06}", c / 100 * 100);
    let province = format!("{:06}", c / 10_000 * 10_000);
    match divisions.name(&prefecture) {
        Some(n) if !matches!(n, "市辖区" | "县") && !n.contains("直辖") => n.to_owned(),
        _ => divisions.name(&province).unwrap_or_default().to_owned(),
    }
}

fn name(sex: IdSex, rng: &mut Rng) -> String {
    let total: u64 = SURNAMES.iter().map(|(_, w)| u64::from(*w)).sum();
    let mut x = rng.below(total);
    let mut surname = SURNAMES[0].0;
    for (s, w) in SURNAMES {
        if x < u64::from(*w) {
            surname = s;
            break;
        }
        x -= u64::from(*w);
    }
    let pool = match sex {
        IdSex::Male => MALE_GIVEN,
        IdSex::Female => FEMALE_GIVEN,
    };
    let mut given = String::new();
    let first_from_shared = rng.below(5) == 0;
    let first: &str = if first_from_shared {
        rng.pick::<&str>(SHARED_GIVEN)
    } else {
        rng.pick::<&str>(pool)
    };
    given.push_str(first);
    if rng.below(10) < 7 {
        given.push_str(rng.pick::<&str>(pool));
    }
    format!("{surname}{given}")
}
