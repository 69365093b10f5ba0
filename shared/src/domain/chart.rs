//! Chart basics for a birth moment: the sidereal (Lahiri) Sun and Moon signs, the Moon's
//! nakshatra and pada, and the lagna (ascendant), in pure Rust.
//!
//! Sources (Meeus, "Astronomical Algorithms", 2nd ed.): the Sun from VSOP87 as truncated in
//! Appendix III (ch. 32, ch. 25 for the FK5 correction and aberration), the Moon from ch. 47
//! with its full tables 47.A and 47.B, nutation and obliquity from ch. 22 (IAU 1980 series;
//! IAU 2006 mean obliquity), sidereal time from ch. 12, ΔT from Espenak–Meeus (2006) to 2005
//! and, after it, a cubic fitted to the IERS values and the Stephenson–Morrison–Hohenkerk
//! (2016) extrapolation the Swiss Ephemeris uses (within 1.6 s up to 2100).
//!
//! The ayanamsa is the Swiss Ephemeris' `SE_SIDM_LAHIRI` (sweph.h, swisseph 2.10): 23°15'00.658"
//! at JD 2435553.5 (1956-09-22, TT) less that day's nutation (0.004658035°), so a mean value;
//! the equinox of date is precessed to that epoch and measured on its ecliptic
//! (`swi_get_ayanamsa_ex`), with IAU 1976 precession between 1956 and J2000 (the model
//! Lahiri's value is tied to, swisseph's `prec_offset`) and IAU 2006 from J2000 to the date.
//! As with swisseph's `SEFLG_SIDEREAL`, a sidereal longitude is the apparent tropical one less
//! the true ayanamsa (mean + nutation in longitude): nutation cancels. `ChartBasics::ayanamsa`
//! is that true value (`swe_get_ayanamsa_ex_ut` without `SEFLG_NONUT`).
//!
//! Checked against the Swiss Ephemeris (Moshier) by `shared/tests/chart_oracle.rs`.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

/// Above this latitude (degrees, either hemisphere) no lagna is given: near the polar circles
/// the ascendant jumps and some ecliptic degrees never rise.
pub const MAX_LAGNA_LATITUDE: f64 = 66.0;
pub const MAX_PLACE_NAME_CHARS: usize = 100;
pub const FIRST_DATE: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
pub const LAST_DATE: NaiveDate = NaiveDate::from_ymd_opt(2100, 12, 31).unwrap();

/// Why birth details were refused; `Display` starts with the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChartError {
    #[error("birth.date: {0}")]
    Date(String),
    #[error("birth.time: {0}")]
    Time(String),
    #[error("birth.place.latitude: {0}")]
    Latitude(String),
    #[error("birth.place.longitude: {0}")]
    Longitude(String),
    #[error("birth.place.time_zone: {0}")]
    TimeZone(String),
    #[error("birth.place.name: {0}")]
    Name(String),
}

impl ChartError {
    /// The field at fault, e.g. `birth.place.latitude`.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Date(_) => "birth.date",
            Self::Time(_) => "birth.time",
            Self::Latitude(_) => "birth.place.latitude",
            Self::Longitude(_) => "birth.place.longitude",
            Self::TimeZone(_) => "birth.place.time_zone",
            Self::Name(_) => "birth.place.name",
        }
    }
}

/// Where someone was born: latitude north and longitude east in degrees, and the IANA time
/// zone their birth time was read in.
#[derive(Debug, Clone, PartialEq)]
pub struct BirthPlace {
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
    pub time_zone: Tz,
}

impl BirthPlace {
    /// Checks every field: the name (trimmed) 1 to 100 characters without control characters,
    /// latitude in [-90, 90], longitude in [-180, 180], an IANA zone name (`Asia/Kolkata`).
    pub fn new(name: &str, latitude: f64, longitude: f64, time_zone: &str) -> Result<Self, ChartError> {
        // Counted as sent (the contract's `maxLength`), not as trimmed.
        let chars = name.chars().count();
        let name = name.trim();
        if name.is_empty() {
            return Err(ChartError::Name("must not be empty".into()));
        }
        if chars > MAX_PLACE_NAME_CHARS {
            return Err(ChartError::Name(format!("must be at most {MAX_PLACE_NAME_CHARS} characters")));
        }
        if name.chars().any(char::is_control) {
            return Err(ChartError::Name("must not contain control characters".into()));
        }
        let time_zone: Tz = time_zone
            .parse()
            .map_err(|_| ChartError::TimeZone(format!("{time_zone:?} is not an IANA time zone, e.g. Asia/Kolkata")))?;
        let place = Self { name: name.to_owned(), latitude, longitude, time_zone };
        place.check_coordinates()?;
        Ok(place)
    }

    fn check_coordinates(&self) -> Result<(), ChartError> {
        if !(-90.0..=90.0).contains(&self.latitude) {
            return Err(ChartError::Latitude("must be between -90 and 90 degrees".into()));
        }
        if !(-180.0..=180.0).contains(&self.longitude) {
            return Err(ChartError::Longitude("must be between -180 and 180 degrees".into()));
        }
        Ok(())
    }
}

/// The twelve sidereal signs, from 0° Mesha; each spans 30°.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rashi {
    Mesha,
    Vrishabha,
    Mithuna,
    Karka,
    Simha,
    Kanya,
    Tula,
    Vrischika,
    Dhanu,
    Makara,
    Kumbha,
    Meena,
}

impl Rashi {
    pub const ALL: [Self; 12] = [
        Self::Mesha,
        Self::Vrishabha,
        Self::Mithuna,
        Self::Karka,
        Self::Simha,
        Self::Kanya,
        Self::Tula,
        Self::Vrischika,
        Self::Dhanu,
        Self::Makara,
        Self::Kumbha,
        Self::Meena,
    ];

    /// The sign holding a sidereal longitude: `floor(lon / 30°)`.
    pub fn of(longitude: f64) -> Self {
        Self::ALL[quarter_nakshatra(longitude) / 9]
    }

    /// 0 (Mesha) to 11 (Meena).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The 27 nakshatras, from 0° Mesha; each spans 13°20'.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Nakshatra {
    Ashwini,
    Bharani,
    Krittika,
    Rohini,
    Mrigashira,
    Ardra,
    Punarvasu,
    Pushya,
    Ashlesha,
    Magha,
    PurvaPhalguni,
    UttaraPhalguni,
    Hasta,
    Chitra,
    Swati,
    Vishakha,
    Anuradha,
    Jyeshtha,
    Mula,
    PurvaAshadha,
    UttaraAshadha,
    Shravana,
    Dhanishta,
    Shatabhisha,
    PurvaBhadrapada,
    UttaraBhadrapada,
    Revati,
}

impl Nakshatra {
    pub const ALL: [Self; 27] = [
        Self::Ashwini,
        Self::Bharani,
        Self::Krittika,
        Self::Rohini,
        Self::Mrigashira,
        Self::Ardra,
        Self::Punarvasu,
        Self::Pushya,
        Self::Ashlesha,
        Self::Magha,
        Self::PurvaPhalguni,
        Self::UttaraPhalguni,
        Self::Hasta,
        Self::Chitra,
        Self::Swati,
        Self::Vishakha,
        Self::Anuradha,
        Self::Jyeshtha,
        Self::Mula,
        Self::PurvaAshadha,
        Self::UttaraAshadha,
        Self::Shravana,
        Self::Dhanishta,
        Self::Shatabhisha,
        Self::PurvaBhadrapada,
        Self::UttaraBhadrapada,
        Self::Revati,
    ];

    /// The nakshatra holding a sidereal longitude: `floor(lon / 13°20')`.
    pub fn of(longitude: f64) -> Self {
        Self::ALL[quarter_nakshatra(longitude) / 4]
    }

    /// 0 (Ashwini) to 26 (Revati).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The quarter (1 to 4) of its nakshatra a sidereal longitude is in:
/// `floor((lon mod 13°20') / 3°20') + 1`.
pub fn pada(longitude: f64) -> u8 {
    (quarter_nakshatra(longitude) % 4) as u8 + 1
}

/// Which of the 108 padas (3°20' each, 9 to a sign, 4 to a nakshatra) holds `longitude`
/// (degrees, any value): sign, nakshatra and pada are all read from it, so they always agree.
fn quarter_nakshatra(longitude: f64) -> usize {
    ((norm360(longitude) * 108.0 / 360.0).floor() as usize).min(107)
}

/// Degrees in [0, 360).
fn norm360(degrees: f64) -> f64 {
    let d = degrees.rem_euclid(360.0);
    if d >= 360.0 { 0.0 } else { d }
}

/// What a profile shows of a birth chart. Longitudes are sidereal (Lahiri), degrees in
/// [0, 360); `ayanamsa` is the true (nutated) Lahiri ayanamsa at the moment used.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChartBasics {
    pub sun_sign: Rashi,
    pub moon_sign: Rashi,
    pub nakshatra: Nakshatra,
    pub pada: u8,
    /// None when the birth time is unknown or the place is beyond ±66° latitude.
    pub lagna: Option<Rashi>,
    pub sun_longitude: f64,
    pub moon_longitude: f64,
    pub ascendant_longitude: Option<f64>,
    pub ayanamsa: f64,
    /// False: the chart was cast for 12:00 local time and has no lagna.
    pub time_known: bool,
    /// With an unknown time: whether the Moon's sign at 00:00 local differs from its sign at
    /// 23:59:59 local, i.e. the Moon sign is uncertain. Always false when the time is known.
    pub moon_sign_changes_that_day: bool,
}

fn check_date(date: NaiveDate) -> Result<(), ChartError> {
    if (FIRST_DATE..=LAST_DATE).contains(&date) {
        Ok(())
    } else {
        Err(ChartError::Date(format!("must be between {FIRST_DATE} and {LAST_DATE}")))
    }
}

/// The UTC instant of a local birth date and time in `tz`.
///
/// A local time the clocks skipped (a daylight-saving gap) is an error naming `birth.time`.
/// A local time that happened twice (a daylight-saving fold) is read as the EARLIER of the
/// two instants, i.e. with the offset in force before the clocks went back.
pub fn birth_instant(date: NaiveDate, time: NaiveTime, tz: Tz) -> Result<DateTime<Utc>, ChartError> {
    check_date(date)?;
    match tz.from_local_datetime(&date.and_time(time)) {
        LocalResult::Single(at) => Ok(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Ok(a.min(b).with_timezone(&Utc)),
        LocalResult::None => Err(ChartError::Time(format!(
            "{} did not exist on {date} in {} (the clocks were moved forward)",
            time.format("%H:%M:%S"),
            tz.name()
        ))),
    }
}

/// A local time read without refusal: a time in a fold is the earlier instant, a time in a
/// gap is read with the offset in force before the gap (Python's `fold=0`).
fn lenient_instant(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    if let Some(at) = tz.from_local_datetime(&local).earliest() {
        return at.with_timezone(&Utc);
    }
    // In a gap: the last minute before it carries the old offset (gaps last hours at most;
    // the search gives up after two days, which no zone has ever skipped).
    let offset = (1..=2 * 24 * 60)
        .find_map(|minutes| tz.from_local_datetime(&(local - Duration::minutes(minutes))).latest())
        .map_or(0, |before| before.offset().fix().local_minus_utc());
    (local - Duration::seconds(offset.into())).and_utc()
}

/// The chart basics of a birth. With `time` None the chart is cast for 12:00 local time, has
/// no lagna, and says whether the Moon changed sign during that local day.
pub fn chart_basics(date: NaiveDate, time: Option<NaiveTime>, place: &BirthPlace) -> Result<ChartBasics, ChartError> {
    place.check_coordinates()?;
    check_date(date)?;
    let tz = place.time_zone;
    let instant = match time {
        Some(time) => birth_instant(date, time, tz)?,
        None => lenient_instant(date.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap()), tz),
    };
    let sky = Sky::at(instant);
    let sun_longitude = sky.sidereal(sky.sun());
    let moon_longitude = sky.sidereal(sky.moon());
    let ascendant_longitude = (time.is_some() && place.latitude.abs() <= MAX_LAGNA_LATITUDE)
        .then(|| sky.sidereal_ascendant(place.latitude, place.longitude));
    let moon_sign_changes_that_day = time.is_none() && {
        let moon_sign = |local: NaiveDateTime| {
            let sky = Sky::at(lenient_instant(local, tz));
            Rashi::of(sky.sidereal(sky.moon()))
        };
        moon_sign(date.and_time(NaiveTime::MIN))
            != moon_sign(date.and_time(NaiveTime::from_hms_opt(23, 59, 59).unwrap()))
    };
    Ok(ChartBasics {
        sun_sign: Rashi::of(sun_longitude),
        moon_sign: Rashi::of(moon_longitude),
        nakshatra: Nakshatra::of(moon_longitude),
        pada: pada(moon_longitude),
        lagna: ascendant_longitude.map(Rashi::of),
        sun_longitude,
        moon_longitude,
        ascendant_longitude,
        ayanamsa: norm360(sky.mean_ayanamsa + sky.nutation_longitude),
        time_known: time.is_some(),
        moon_sign_changes_that_day,
    })
}

// ---------------------------------------------------------------------------------------------
// The astronomy. Angles in degrees unless named `_rad`; T in Julian centuries from J2000.

const J2000: f64 = 2_451_545.0;
/// Lahiri: the epoch (TT) and the mean ayanamsa then (sweph.h, `SE_SIDM_LAHIRI`).
const LAHIRI_EPOCH: f64 = 2_435_553.5;
const LAHIRI_AT_EPOCH: f64 = 23.250_182_778 - 0.004_658_035;
const ARCSEC: f64 = 1.0 / 3600.0;

/// Julian day (UT) of an instant.
fn julian_day(at: DateTime<Utc>) -> f64 {
    2_440_587.5 + (at.timestamp() as f64 + f64::from(at.timestamp_subsec_nanos()) * 1e-9) / 86_400.0
}

/// ΔT = TT − UT in seconds, for a decimal year (Espenak–Meeus 2006 to 2005, then a cubic
/// continuous with it there and fitted to the Swiss Ephemeris' values up to 2100).
fn delta_t(year: f64) -> f64 {
    if year < 1920.0 {
        let t = year - 1900.0;
        -2.79 + t * (1.494119 + t * (-0.0598939 + t * (0.0061966 + t * -0.000197)))
    } else if year < 1941.0 {
        let t = year - 1920.0;
        21.20 + t * (0.84493 + t * (-0.076100 + t * 0.0020936))
    } else if year < 1961.0 {
        let t = year - 1950.0;
        29.07 + t * (0.407 + t * (-1.0 / 233.0 + t / 2547.0))
    } else if year < 1986.0 {
        let t = year - 1975.0;
        45.45 + t * (1.067 + t * (-1.0 / 260.0 - t / 718.0))
    } else if year < 2005.0 {
        let t = year - 2000.0;
        63.86 + t * (0.3345 + t * (-0.060374 + t * (0.0017275 + t * (0.000651814 + t * 0.00002373599))))
    } else {
        let u = year - 2005.0;
        64.7206 + u * (0.207264 + u * (-0.000246401 + u * 0.0000133033))
    }
}

/// Evaluates a polynomial, coefficients from the constant term up.
fn poly(t: f64, coefficients: &[f64]) -> f64 {
    coefficients.iter().rev().fold(0.0, |acc, c| acc * t + c)
}

/// Everything needed at one instant.
struct Sky {
    jd_ut: f64,
    /// Julian centuries (TT) from J2000.
    t: f64,
    nutation_longitude: f64,
    true_obliquity: f64,
    mean_ayanamsa: f64,
}

impl Sky {
    fn at(instant: DateTime<Utc>) -> Self {
        let jd_ut = julian_day(instant);
        let year = 2000.0 + (jd_ut - J2000) / 365.25;
        let jde = jd_ut + delta_t(year) / 86_400.0;
        let t = (jde - J2000) / 36_525.0;
        let (nutation_longitude, nutation_obliquity) = nutation(t);
        Self {
            jd_ut,
            t,
            nutation_longitude,
            true_obliquity: mean_obliquity(t) + nutation_obliquity,
            mean_ayanamsa: mean_ayanamsa(t),
        }
    }

    /// Sidereal longitude of a tropical longitude referred to the mean equinox of date.
    fn sidereal(&self, mean_of_date: f64) -> f64 {
        norm360(mean_of_date - self.mean_ayanamsa)
    }

    /// The Sun's longitude (mean equinox of date, with aberration; apparent less nutation).
    fn sun(&self) -> f64 {
        let (l_rad, _b_rad, r) = earth_heliocentric(self.t / 10.0);
        let geometric = l_rad.to_degrees() + 180.0;
        // FK5 (Meeus 25.9, β ≈ 0) and aberration (25.10).
        geometric - 0.09033 * ARCSEC - 20.4898 * ARCSEC / r
    }

    /// The Moon's longitude (mean equinox of date; apparent less nutation). Meeus' mean
    /// longitude L' (218°18'59.21" at J2000, about 0.7" short of ELP-2000/82's geometric one)
    /// already allows for light-time: adding it again moved the mean difference from the Swiss
    /// Ephemeris from -0.35" to -1.06".
    fn moon(&self) -> f64 {
        moon_position(self.t).0
    }

    /// Sidereal ascendant: the tropical one (local apparent sidereal time, true obliquity,
    /// geographic latitude) less the true ayanamsa.
    fn sidereal_ascendant(&self, latitude: f64, longitude: f64) -> f64 {
        let eps = self.true_obliquity.to_radians();
        let ramc = (mean_sidereal_time(self.jd_ut) + self.nutation_longitude * eps.cos() + longitude).to_radians();
        let phi = latitude.to_radians();
        let tropical = ramc.cos().atan2(-(ramc.sin() * eps.cos() + phi.tan() * eps.sin())).to_degrees();
        norm360(tropical - self.nutation_longitude - self.mean_ayanamsa)
    }
}

/// Greenwich mean sidereal time in degrees (Meeus 12.4), from the Julian day in UT.
fn mean_sidereal_time(jd_ut: f64) -> f64 {
    let t = (jd_ut - J2000) / 36_525.0;
    norm360(280.460_618_37 + 360.985_647_366_29 * (jd_ut - J2000) + t * t * (0.000_387_933 - t / 38_710_000.0))
}

/// Mean obliquity of the ecliptic, IAU 2006.
fn mean_obliquity(t: f64) -> f64 {
    poly(t, &[84_381.406, -46.836_769, -0.000_183_1, 0.002_003_40, -0.000_000_576, -0.000_000_043_4]) * ARCSEC
}

/// Nutation in longitude and in obliquity (Meeus ch. 22, IAU 1980, table 22.A).
fn nutation(t: f64) -> (f64, f64) {
    let d = poly(t, &[297.850_36, 445_267.111_480, -0.001_914_2, 1.0 / 189_474.0]).to_radians();
    let m = poly(t, &[357.527_72, 35_999.050_340, -0.000_160_3, -1.0 / 300_000.0]).to_radians();
    let mm = poly(t, &[134.962_98, 477_198.867_398, 0.008_697_2, 1.0 / 56_250.0]).to_radians();
    let f = poly(t, &[93.271_91, 483_202.017_538, -0.003_682_5, 1.0 / 327_270.0]).to_radians();
    let om = poly(t, &[125.044_52, -1_934.136_261, 0.002_070_8, 1.0 / 450_000.0]).to_radians();
    let (mut dpsi, mut deps) = (0.0, 0.0);
    for &(cd, cm, cmm, cf, com, s0, s1, c0, c1) in NUTATION.iter().rev() {
        let arg = f64::from(cd) * d + f64::from(cm) * m + f64::from(cmm) * mm + f64::from(cf) * f + f64::from(com) * om;
        dpsi += (s0 + s1 * t) * arg.sin();
        deps += (c0 + c1 * t) * arg.cos();
    }
    (dpsi * 0.0001 * ARCSEC, deps * 0.0001 * ARCSEC)
}

/// 3×3 rotation matrices applied to column vectors.
type Matrix = [[f64; 3]; 3];

fn apply(m: &Matrix, v: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2])
}

fn transpose(m: &Matrix) -> Matrix {
    [0, 1, 2].map(|i| [m[0][i], m[1][i], m[2][i]])
}

/// Equatorial precession from J2000 to a date, by the angles ζ, z, θ (arcseconds):
/// R3(−z)·R2(θ)·R3(−ζ).
fn precession(zeta: f64, z: f64, theta: f64) -> Matrix {
    let (sz, cz) = (zeta * ARCSEC).to_radians().sin_cos();
    let (sa, ca) = (z * ARCSEC).to_radians().sin_cos();
    let (st, ct) = (theta * ARCSEC).to_radians().sin_cos();
    [
        [cz * ca * ct - sz * sa, -sz * ca * ct - cz * sa, -ca * st],
        [cz * sa * ct + sz * ca, -sz * sa * ct + cz * ca, -sa * st],
        [cz * st, -sz * st, ct],
    ]
}

/// IAU 2006 (Capitaine et al. 2003) precession from J2000.
fn precession_iau2006(t: f64) -> Matrix {
    precession(
        poly(t, &[2.650_545, 2_306.083_227, 0.298_849_9, 0.018_018_28, -0.000_005_971, -0.000_000_317_3]),
        poly(t, &[-2.650_545, 2_306.077_181, 1.092_734_8, 0.018_268_37, -0.000_028_596, -0.000_000_290_4]),
        poly(t, &[0.0, 2_004.191_903, -0.429_493_4, -0.041_822_64, -0.000_007_089, -0.000_000_127_4]),
    )
}

/// IAU 1976 (Lieske) precession from J2000 (Meeus 21.2 with T = 0).
fn precession_iau1976(t: f64) -> Matrix {
    precession(
        poly(t, &[0.0, 2_306.218_1, 0.301_88, 0.017_998]),
        poly(t, &[0.0, 2_306.218_1, 1.094_68, 0.018_203]),
        poly(t, &[0.0, 2_004.310_9, -0.426_65, -0.041_833]),
    )
}

/// The mean Lahiri ayanamsa: the equinox of date, precessed to the Lahiri epoch, measured
/// back from that epoch's equinox on that epoch's ecliptic, plus the value at the epoch.
fn mean_ayanamsa(t: f64) -> f64 {
    let t0 = (LAHIRI_EPOCH - J2000) / 36_525.0;
    let at_j2000 = apply(&transpose(&precession_iau2006(t)), [1.0, 0.0, 0.0]);
    let [x, y, z] = apply(&precession_iau1976(t0), at_j2000);
    let (se, ce) = mean_obliquity(t0).to_radians().sin_cos();
    let longitude = (y * ce + z * se).atan2(x).to_degrees();
    LAHIRI_AT_EPOCH - longitude
}

/// The Earth's heliocentric longitude and latitude (radians, dynamical ecliptic and equinox
/// of date) and distance (AU): VSOP87 as truncated in Meeus, Appendix III. `tau` in Julian
/// millennia (TT) from J2000.
fn earth_heliocentric(tau: f64) -> (f64, f64, f64) {
    let series = |tables: &[&[[f64; 3]]]| {
        let sums: Vec<f64> =
            tables.iter().map(|table| table.iter().map(|[a, b, c]| a * (b + c * tau).cos()).sum()).collect();
        poly(tau, &sums) * 1e-8
    };
    (series(&[&L0, &L1, &L2, &L3, &L4, &L5]), series(&[&B0, &B1]), series(&[&R0, &R1, &R2, &R3, &R4]))
}

/// The Moon's geocentric longitude and latitude (degrees; mean equinox of date, geometric)
/// and distance (km): Meeus ch. 47, tables 47.A and 47.B in full.
fn moon_position(t: f64) -> (f64, f64, f64) {
    let lp = poly(t, &[218.316_447_7, 481_267.881_234_21, -0.001_578_6, 1.0 / 538_841.0, -1.0 / 65_194_000.0]);
    let d = poly(t, &[297.850_192_1, 445_267.111_403_4, -0.001_881_9, 1.0 / 545_868.0, -1.0 / 113_065_000.0]);
    let m = poly(t, &[357.529_109_2, 35_999.050_290_9, -0.000_153_6, 1.0 / 24_490_000.0]);
    let mm = poly(t, &[134.963_396_4, 477_198.867_505_5, 0.008_741_4, 1.0 / 69_699.0, -1.0 / 14_712_000.0]);
    let f = poly(t, &[93.272_095_0, 483_202.017_523_3, -0.003_653_9, -1.0 / 3_526_000.0, 1.0 / 863_310_000.0]);
    let a1 = 119.75 + 131.849 * t;
    let a2 = 53.09 + 479_264.290 * t;
    let a3 = 313.45 + 481_266.484 * t;
    let e = poly(t, &[1.0, -0.002_516, -0.000_007_4]);
    let [lp_r, d, m, mm, f, a1, a2, a3] = [lp, d, m, mm, f, a1, a2, a3].map(f64::to_radians);
    let argument = |cd: i8, cm: i8, cmm: i8, cf: i8| {
        let arg = f64::from(cd) * d + f64::from(cm) * m + f64::from(cmm) * mm + f64::from(cf) * f;
        // Terms with the Sun's anomaly M shrink with the Earth's eccentricity: E^|M|.
        (arg, e.powi(i32::from(cm.abs())))
    };
    let mut sum_l = 3958.0 * a1.sin() + 1962.0 * (lp_r - f).sin() + 318.0 * a2.sin();
    let mut sum_r = 0.0;
    for &(cd, cm, cmm, cf, l, r) in MOON_LR {
        let (arg, ecc) = argument(cd, cm, cmm, cf);
        sum_l += f64::from(l) * ecc * arg.sin();
        sum_r += f64::from(r) * ecc * arg.cos();
    }
    let mut sum_b = -2235.0 * lp_r.sin()
        + 382.0 * a3.sin()
        + 175.0 * (a1 - f).sin()
        + 175.0 * (a1 + f).sin()
        + 127.0 * (lp_r - mm).sin()
        - 115.0 * (lp_r + mm).sin();
    for &(cd, cm, cmm, cf, b) in MOON_B {
        let (arg, ecc) = argument(cd, cm, cmm, cf);
        sum_b += f64::from(b) * ecc * arg.sin();
    }
    (lp + sum_l * 1e-6, sum_b * 1e-6, 385_000.56 + sum_r * 1e-3)
}

// ---------------------------------------------------------------------------------------------
// Tables.

/// Multiples of D, M, M', F, Ω, then s0, s1, c0, c1.
type NutationTerm = (i8, i8, i8, i8, i8, f64, f64, f64, f64);

/// Meeus table 22.A: multiples of D, M, M', F, Ω; Δψ = (s0 + s1·T) sin, Δε = (c0 + c1·T) cos,
/// in 0.0001".
#[rustfmt::skip]
const NUTATION: [NutationTerm; 63] = [
    (0, 0, 0, 0, 1, -171996.0, -174.2, 92025.0, 8.9),
    (-2, 0, 0, 2, 2, -13187.0, -1.6, 5736.0, -3.1),
    (0, 0, 0, 2, 2, -2274.0, -0.2, 977.0, -0.5),
    (0, 0, 0, 0, 2, 2062.0, 0.2, -895.0, 0.5),
    (0, 1, 0, 0, 0, 1426.0, -3.4, 54.0, -0.1),
    (0, 0, 1, 0, 0, 712.0, 0.1, -7.0, 0.0),
    (-2, 1, 0, 2, 2, -517.0, 1.2, 224.0, -0.6),
    (0, 0, 0, 2, 1, -386.0, -0.4, 200.0, 0.0),
    (0, 0, 1, 2, 2, -301.0, 0.0, 129.0, -0.1),
    (-2, -1, 0, 2, 2, 217.0, -0.5, -95.0, 0.3),
    (-2, 0, 1, 0, 0, -158.0, 0.0, 0.0, 0.0),
    (-2, 0, 0, 2, 1, 129.0, 0.1, -70.0, 0.0),
    (0, 0, -1, 2, 2, 123.0, 0.0, -53.0, 0.0),
    (2, 0, 0, 0, 0, 63.0, 0.0, 0.0, 0.0),
    (0, 0, 1, 0, 1, 63.0, 0.1, -33.0, 0.0),
    (2, 0, -1, 2, 2, -59.0, 0.0, 26.0, 0.0),
    (0, 0, -1, 0, 1, -58.0, -0.1, 32.0, 0.0),
    (0, 0, 1, 2, 1, -51.0, 0.0, 27.0, 0.0),
    (-2, 0, 2, 0, 0, 48.0, 0.0, 0.0, 0.0),
    (0, 0, -2, 2, 1, 46.0, 0.0, -24.0, 0.0),
    (2, 0, 0, 2, 2, -38.0, 0.0, 16.0, 0.0),
    (0, 0, 2, 2, 2, -31.0, 0.0, 13.0, 0.0),
    (0, 0, 2, 0, 0, 29.0, 0.0, 0.0, 0.0),
    (-2, 0, 1, 2, 2, 29.0, 0.0, -12.0, 0.0),
    (0, 0, 0, 2, 0, 26.0, 0.0, 0.0, 0.0),
    (-2, 0, 0, 2, 0, -22.0, 0.0, 0.0, 0.0),
    (0, 0, -1, 2, 1, 21.0, 0.0, -10.0, 0.0),
    (0, 2, 0, 0, 0, 17.0, -0.1, 0.0, 0.0),
    (2, 0, -1, 0, 1, 16.0, 0.0, -8.0, 0.0),
    (-2, 2, 0, 2, 2, -16.0, 0.1, 7.0, 0.0),
    (0, 1, 0, 0, 1, -15.0, 0.0, 9.0, 0.0),
    (-2, 0, 1, 0, 1, -13.0, 0.0, 7.0, 0.0),
    (0, -1, 0, 0, 1, -12.0, 0.0, 6.0, 0.0),
    (0, 0, 2, -2, 0, 11.0, 0.0, 0.0, 0.0),
    (2, 0, -1, 2, 1, -10.0, 0.0, 5.0, 0.0),
    (2, 0, 1, 2, 2, -8.0, 0.0, 3.0, 0.0),
    (0, 1, 0, 2, 2, 7.0, 0.0, -3.0, 0.0),
    (-2, 1, 1, 0, 0, -7.0, 0.0, 0.0, 0.0),
    (0, -1, 0, 2, 2, -7.0, 0.0, 3.0, 0.0),
    (2, 0, 0, 2, 1, -7.0, 0.0, 3.0, 0.0),
    (2, 0, 1, 0, 0, 6.0, 0.0, 0.0, 0.0),
    (-2, 0, 2, 2, 2, 6.0, 0.0, -3.0, 0.0),
    (-2, 0, 1, 2, 1, 6.0, 0.0, -3.0, 0.0),
    (2, 0, -2, 0, 1, -6.0, 0.0, 3.0, 0.0),
    (2, 0, 0, 0, 1, -6.0, 0.0, 3.0, 0.0),
    (0, -1, 1, 0, 0, 5.0, 0.0, 0.0, 0.0),
    (-2, -1, 0, 2, 1, -5.0, 0.0, 3.0, 0.0),
    (-2, 0, 0, 0, 1, -5.0, 0.0, 3.0, 0.0),
    (0, 0, 2, 2, 1, -5.0, 0.0, 3.0, 0.0),
    (-2, 0, 2, 0, 1, 4.0, 0.0, 0.0, 0.0),
    (-2, 1, 0, 2, 1, 4.0, 0.0, 0.0, 0.0),
    (0, 0, 1, -2, 0, 4.0, 0.0, 0.0, 0.0),
    (-1, 0, 1, 0, 0, -4.0, 0.0, 0.0, 0.0),
    (-2, 1, 0, 0, 0, -4.0, 0.0, 0.0, 0.0),
    (1, 0, 0, 0, 0, -4.0, 0.0, 0.0, 0.0),
    (0, 0, 1, 2, 0, 3.0, 0.0, 0.0, 0.0),
    (0, 0, -2, 2, 2, -3.0, 0.0, 0.0, 0.0),
    (-1, -1, 1, 0, 0, -3.0, 0.0, 0.0, 0.0),
    (0, 1, 1, 0, 0, -3.0, 0.0, 0.0, 0.0),
    (0, -1, 1, 2, 2, -3.0, 0.0, 0.0, 0.0),
    (2, -1, -1, 2, 2, -3.0, 0.0, 0.0, 0.0),
    (0, 0, 3, 2, 2, -3.0, 0.0, 0.0, 0.0),
    (2, -1, 0, 2, 2, -3.0, 0.0, 0.0, 0.0),
];

/// Meeus table 47.A: multiples of D, M, M', F; Σl (sine, 1e-6°), Σr (cosine, 1e-3 km).
#[rustfmt::skip]
const MOON_LR: &[(i8, i8, i8, i8, i32, i32)] = &[
    (0, 0, 1, 0, 6288774, -20905355), (2, 0, -1, 0, 1274027, -3699111), (2, 0, 0, 0, 658314, -2955968),
    (0, 0, 2, 0, 213618, -569925), (0, 1, 0, 0, -185116, 48888), (0, 0, 0, 2, -114332, -3149),
    (2, 0, -2, 0, 58793, 246158), (2, -1, -1, 0, 57066, -152138), (2, 0, 1, 0, 53322, -170733),
    (2, -1, 0, 0, 45758, -204586), (0, 1, -1, 0, -40923, -129620), (1, 0, 0, 0, -34720, 108743),
    (0, 1, 1, 0, -30383, 104755), (2, 0, 0, -2, 15327, 10321), (0, 0, 1, 2, -12528, 0),
    (0, 0, 1, -2, 10980, 79661), (4, 0, -1, 0, 10675, -34782), (0, 0, 3, 0, 10034, -23210),
    (4, 0, -2, 0, 8548, -21636), (2, 1, -1, 0, -7888, 24208), (2, 1, 0, 0, -6766, 30824),
    (1, 0, -1, 0, -5163, -8379), (1, 1, 0, 0, 4987, -16675), (2, -1, 1, 0, 4036, -12831),
    (2, 0, 2, 0, 3994, -10445), (4, 0, 0, 0, 3861, -11650), (2, 0, -3, 0, 3665, 14403),
    (0, 1, -2, 0, -2689, -7003), (2, 0, -1, 2, -2602, 0), (2, -1, -2, 0, 2390, 10056),
    (1, 0, 1, 0, -2348, 6322), (2, -2, 0, 0, 2236, -9884), (0, 1, 2, 0, -2120, 5751),
    (0, 2, 0, 0, -2069, 0), (2, -2, -1, 0, 2048, -4950), (2, 0, 1, -2, -1773, 4130),
    (2, 0, 0, 2, -1595, 0), (4, -1, -1, 0, 1215, -3958), (0, 0, 2, 2, -1110, 0),
    (3, 0, -1, 0, -892, 3258), (2, 1, 1, 0, -810, 2616), (4, -1, -2, 0, 759, -1897),
    (0, 2, -1, 0, -713, -2117), (2, 2, -1, 0, -700, 2354), (2, 1, -2, 0, 691, 0),
    (2, -1, 0, -2, 596, 0), (4, 0, 1, 0, 549, -1423), (0, 0, 4, 0, 537, -1117),
    (4, -1, 0, 0, 520, -1571), (1, 0, -2, 0, -487, -1739), (2, 1, 0, -2, -399, 0),
    (0, 0, 2, -2, -381, -4421), (1, 1, 1, 0, 351, 0), (3, 0, -2, 0, -340, 0),
    (4, 0, -3, 0, 330, 0), (2, -1, 2, 0, 327, 0), (0, 2, 1, 0, -323, 1165),
    (1, 1, -1, 0, 299, 0), (2, 0, 3, 0, 294, 0), (2, 0, -1, -2, 0, 8752),
];

/// Meeus table 47.B: multiples of D, M, M', F; Σb (sine, 1e-6°).
#[rustfmt::skip]
const MOON_B: &[(i8, i8, i8, i8, i32)] = &[
    (0, 0, 0, 1, 5128122), (0, 0, 1, 1, 280602), (0, 0, 1, -1, 277693), (2, 0, 0, -1, 173237),
    (2, 0, -1, 1, 55413), (2, 0, -1, -1, 46271), (2, 0, 0, 1, 32573), (0, 0, 2, 1, 17198),
    (2, 0, 1, -1, 9266), (0, 0, 2, -1, 8822), (2, -1, 0, -1, 8216), (2, 0, -2, -1, 4324),
    (2, 0, 1, 1, 4200), (2, 1, 0, -1, -3359), (2, -1, -1, 1, 2463), (2, -1, 0, 1, 2211),
    (2, -1, -1, -1, 2065), (0, 1, -1, -1, -1870), (4, 0, -1, -1, 1828), (0, 1, 0, 1, -1794),
    (0, 0, 0, 3, -1749), (0, 1, -1, 1, -1565), (1, 0, 0, 1, -1491), (0, 1, 1, 1, -1475),
    (0, 1, 1, -1, -1410), (0, 1, 0, -1, -1344), (1, 0, 0, -1, -1335), (0, 0, 3, 1, 1107),
    (4, 0, 0, -1, 1021), (4, 0, -1, 1, 833), (0, 0, 1, -3, 777), (4, 0, -2, 1, 671),
    (2, 0, 0, -3, 607), (2, 0, 2, -1, 596), (2, -1, 1, -1, 491), (2, 0, -2, 1, -451),
    (0, 0, 3, -1, 439), (2, 0, 2, 1, 422), (2, 0, -3, -1, 421), (2, 1, -1, 1, -366),
    (2, 1, 0, 1, -351), (4, 0, 0, 1, 331), (2, -1, 1, 1, 315), (2, -2, 0, -1, 302),
    (0, 0, 1, 3, -283), (2, 1, 1, -1, -229), (1, 1, 0, -1, 223), (1, 1, 0, 1, 223),
    (0, 1, -2, -1, -220), (2, 1, -1, -1, -220), (1, 0, 1, 1, -185), (2, -1, -2, -1, 181),
    (0, 1, 2, 1, -177), (4, 0, -2, -1, 176), (4, -1, -1, -1, 166), (1, 0, 1, -1, -164),
    (4, 0, 1, -1, 132), (1, 0, -1, -1, -119), (4, -1, 0, -1, 115), (2, -2, 0, 1, 107),
];

// VSOP87 for the Earth, truncated (Meeus Appendix III): A, B, C of A·cos(B + C·τ). Phases of
// 3.14 and 3.142 are the published values, not π.
#[rustfmt::skip]
const L0: [[f64; 3]; 64] = [
    [175347046.0, 0.0, 0.0], [3341656.0, 4.6692568, 6283.07585], [34894.0, 4.6261, 12566.1517],
    [3497.0, 2.7441, 5753.3849], [3418.0, 2.8289, 3.5231], [3136.0, 3.6277, 77713.7715],
    [2676.0, 4.4181, 7860.4194], [2343.0, 6.1352, 3930.2097], [1324.0, 0.7425, 11506.7698],
    [1273.0, 2.0371, 529.691], [1199.0, 1.1096, 1577.3435], [990.0, 5.233, 5884.927],
    [902.0, 2.045, 26.298], [857.0, 3.508, 398.149], [780.0, 1.179, 5223.694],
    [753.0, 2.533, 5507.553], [505.0, 4.583, 18849.228], [492.0, 4.205, 775.523],
    [357.0, 2.92, 0.067], [317.0, 5.849, 11790.629], [284.0, 1.899, 796.298],
    [271.0, 0.315, 10977.079], [243.0, 0.345, 5486.778], [206.0, 4.806, 2544.314],
    [205.0, 1.869, 5573.143], [202.0, 2.458, 6069.777], [156.0, 0.833, 213.299],
    [132.0, 3.411, 2942.463], [126.0, 1.083, 20.775], [115.0, 0.645, 0.98],
    [103.0, 0.636, 4694.003], [102.0, 0.976, 15720.839], [102.0, 4.267, 7.114],
    [99.0, 6.21, 2146.17], [98.0, 0.68, 155.42], [86.0, 5.98, 161000.69],
    [85.0, 1.3, 6275.96], [85.0, 3.67, 71430.7], [80.0, 1.81, 17260.15],
    [79.0, 3.04, 12036.46], [75.0, 1.76, 5088.63], [74.0, 3.5, 3154.69],
    [74.0, 4.68, 801.82], [70.0, 0.83, 9437.76], [62.0, 3.98, 8827.39],
    [61.0, 1.82, 7084.9], [57.0, 2.78, 6286.6], [56.0, 4.39, 14143.5],
    [56.0, 3.47, 6279.55], [52.0, 0.19, 12139.55], [52.0, 1.33, 1748.02],
    [51.0, 0.28, 5856.48], [49.0, 0.49, 1194.45], [41.0, 5.37, 8429.24],
    [41.0, 2.4, 19651.05], [39.0, 6.17, 10447.39], [37.0, 6.04, 10213.29],
    [37.0, 2.57, 1059.38], [36.0, 1.71, 2352.87], [36.0, 1.78, 6812.77],
    [33.0, 0.59, 17789.85], [30.0, 0.44, 83996.85], [30.0, 2.74, 1349.87],
    [25.0, 3.16, 4690.48],
];
#[rustfmt::skip]
const L1: [[f64; 3]; 34] = [
    [628331966747.0, 0.0, 0.0], [206059.0, 2.678235, 6283.07585], [4303.0, 2.6351, 12566.1517],
    [425.0, 1.59, 3.523], [119.0, 5.796, 26.298], [109.0, 2.966, 1577.344],
    [93.0, 2.59, 18849.23], [72.0, 1.14, 529.69], [68.0, 1.87, 398.15],
    [67.0, 4.41, 5507.55], [59.0, 2.89, 5223.69], [56.0, 2.17, 155.42],
    [45.0, 0.4, 796.3], [36.0, 0.47, 775.52], [29.0, 2.65, 7.11],
    [21.0, 5.34, 0.98], [19.0, 1.85, 5486.78], [19.0, 4.97, 213.3],
    [17.0, 2.99, 6275.96], [16.0, 0.03, 2544.31], [16.0, 1.43, 2146.17],
    [15.0, 1.21, 10977.08], [12.0, 2.83, 1748.02], [12.0, 3.26, 5088.63],
    [12.0, 5.27, 1194.45], [12.0, 2.08, 4694.0], [11.0, 0.77, 553.57],
    [10.0, 1.3, 6286.6], [10.0, 4.24, 1349.87], [9.0, 2.7, 242.73],
    [9.0, 5.64, 951.72], [8.0, 5.3, 2352.87], [6.0, 2.65, 9437.76],
    [6.0, 4.67, 4690.48],
];
#[rustfmt::skip]
const L2: [[f64; 3]; 20] = [
    [52919.0, 0.0, 0.0], [8720.0, 1.0721, 6283.0758], [309.0, 0.867, 12566.152],
    [27.0, 0.05, 3.52], [16.0, 5.19, 26.3], [16.0, 3.68, 155.42],
    [10.0, 0.76, 18849.23], [9.0, 2.06, 77713.77], [7.0, 0.83, 775.52],
    [5.0, 4.66, 1577.34], [4.0, 1.03, 7.11], [4.0, 3.44, 5573.14],
    [3.0, 5.14, 796.3], [3.0, 6.05, 5507.55], [3.0, 1.19, 242.73],
    [3.0, 6.12, 529.69], [3.0, 0.31, 398.15], [3.0, 2.28, 553.57],
    [2.0, 4.38, 5223.69], [2.0, 3.75, 0.98],
];
#[rustfmt::skip]
const L3: [[f64; 3]; 7] = [
    [289.0, 5.844, 6283.076], [35.0, 0.0, 0.0], [17.0, 5.49, 12566.15],
    [3.0, 5.2, 155.42], [1.0, 4.72, 3.52], [1.0, 5.3, 18849.23], [1.0, 5.97, 242.73],
];
#[allow(clippy::approx_constant)]
const L4: [[f64; 3]; 3] = [[114.0, 3.142, 0.0], [8.0, 4.13, 6283.08], [1.0, 3.84, 12566.15]];
#[allow(clippy::approx_constant)]
const L5: [[f64; 3]; 1] = [[1.0, 3.14, 0.0]];
#[rustfmt::skip]
const B0: [[f64; 3]; 5] = [
    [280.0, 3.199, 84334.662], [102.0, 5.422, 5507.553], [80.0, 3.88, 5223.69],
    [44.0, 3.7, 2352.87], [32.0, 4.0, 1577.34],
];
const B1: [[f64; 3]; 2] = [[9.0, 3.9, 5507.55], [6.0, 1.73, 5223.69]];
#[rustfmt::skip]
const R0: [[f64; 3]; 40] = [
    [100013989.0, 0.0, 0.0], [1670700.0, 3.0984635, 6283.07585], [13956.0, 3.05525, 12566.1517],
    [3084.0, 5.1985, 77713.7715], [1628.0, 1.1739, 5753.3849], [1576.0, 2.8469, 7860.4194],
    [925.0, 5.453, 11506.77], [542.0, 4.564, 3930.21], [472.0, 3.661, 5884.927],
    [346.0, 0.964, 5507.553], [329.0, 5.9, 5223.694], [307.0, 0.299, 5573.143],
    [243.0, 4.273, 11790.629], [212.0, 5.847, 1577.344], [186.0, 5.022, 10977.079],
    [175.0, 3.012, 18849.228], [110.0, 5.055, 5486.778], [98.0, 0.89, 6069.78],
    [86.0, 5.69, 15720.84], [86.0, 1.27, 161000.69], [65.0, 0.27, 17260.15],
    [63.0, 0.92, 529.69], [57.0, 2.01, 83996.85], [56.0, 5.24, 71430.7],
    [49.0, 3.25, 2544.31], [47.0, 2.58, 775.52], [45.0, 5.54, 9437.76],
    [43.0, 6.01, 6275.96], [39.0, 5.36, 4694.0], [38.0, 2.39, 8827.39],
    [37.0, 0.83, 19651.05], [37.0, 4.9, 12139.55], [36.0, 1.67, 12036.46],
    [35.0, 1.84, 2942.46], [33.0, 0.24, 7084.9], [32.0, 0.18, 5088.63],
    [32.0, 1.78, 398.15], [28.0, 1.21, 6286.6], [28.0, 1.9, 6279.55],
    [26.0, 4.59, 10447.39],
];
#[rustfmt::skip]
#[allow(clippy::approx_constant)]
const R1: [[f64; 3]; 10] = [
    [103019.0, 1.10749, 6283.07585], [1721.0, 1.0644, 12566.1517], [702.0, 3.142, 0.0],
    [32.0, 1.02, 18849.23], [31.0, 2.84, 5507.55], [25.0, 1.32, 5223.69],
    [18.0, 1.42, 1577.34], [10.0, 5.91, 10977.08], [9.0, 1.42, 6275.96], [9.0, 0.27, 5486.78],
];
#[rustfmt::skip]
#[allow(clippy::approx_constant)]
const R2: [[f64; 3]; 6] = [
    [4359.0, 5.7846, 6283.0758], [124.0, 5.579, 12566.152], [12.0, 3.14, 0.0],
    [9.0, 3.63, 77713.77], [6.0, 1.87, 5573.14], [3.0, 5.47, 18849.23],
];
const R3: [[f64; 3]; 2] = [[145.0, 4.273, 6283.076], [7.0, 3.92, 12566.15]];
const R4: [[f64; 3]; 1] = [[4.0, 2.56, 6283.08]];

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }
    fn time(h: u32, m: u32, s: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, s).unwrap()
    }
    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }
    fn close(got: f64, want: f64, within: f64) {
        let delta = (got - want + 180.0).rem_euclid(360.0) - 180.0;
        assert!(delta.abs() <= within, "got {got}, want {want} within {within} (off by {delta})");
    }
    fn delhi() -> BirthPlace {
        BirthPlace::new("New Delhi", 28.6, 77.2, "Asia/Kolkata").unwrap()
    }

    #[test]
    fn signs_nakshatras_and_padas_split_at_their_boundaries() {
        assert_eq!(Rashi::of(0.0), Rashi::Mesha);
        assert_eq!(Rashi::of(29.999), Rashi::Mesha);
        assert_eq!(Rashi::of(30.0), Rashi::Vrishabha);
        assert_eq!(Rashi::of(359.99), Rashi::Meena);
        assert_eq!(Rashi::of(360.0), Rashi::Mesha);
        assert_eq!(Rashi::of(-0.001), Rashi::Meena);
        assert_eq!(Nakshatra::of(13.333), Nakshatra::Ashwini);
        assert_eq!(Nakshatra::of(40.0 / 3.0), Nakshatra::Bharani);
        assert_eq!(Nakshatra::of(359.99), Nakshatra::Revati);
        assert_eq!((pada(0.0), pada(3.333), pada(10.0 / 3.0), pada(13.333), pada(359.99)), (1, 1, 2, 4, 4));
        assert_eq!(pada(40.0 / 3.0), 1);
        for (i, rashi) in Rashi::ALL.iter().enumerate() {
            assert_eq!(rashi.index(), i);
            assert_eq!(Rashi::of(i as f64 * 30.0 + 15.0), *rashi);
        }
        for (i, nakshatra) in Nakshatra::ALL.iter().enumerate() {
            assert_eq!(nakshatra.index(), i);
            assert_eq!(Nakshatra::of((i as f64 + 0.5) * 360.0 / 27.0), *nakshatra);
        }
        assert_eq!(serde_json::to_value(Rashi::Vrischika).unwrap(), "vrischika");
        assert_eq!(serde_json::to_value(Nakshatra::PurvaBhadrapada).unwrap(), "purva_bhadrapada");
    }

    #[test]
    fn bad_places_name_their_field() {
        let field = |r: Result<BirthPlace, ChartError>| r.unwrap_err().field();
        assert_eq!(field(BirthPlace::new("X", 90.5, 0.0, "Asia/Kolkata")), "birth.place.latitude");
        assert_eq!(field(BirthPlace::new("X", f64::NAN, 0.0, "Asia/Kolkata")), "birth.place.latitude");
        assert_eq!(field(BirthPlace::new("X", 10.0, -180.5, "Asia/Kolkata")), "birth.place.longitude");
        assert_eq!(field(BirthPlace::new("X", 10.0, f64::INFINITY, "Asia/Kolkata")), "birth.place.longitude");
        assert_eq!(field(BirthPlace::new("X", 10.0, 10.0, "Mars/Olympus")), "birth.place.time_zone");
        assert_eq!(field(BirthPlace::new("X", 10.0, 10.0, "")), "birth.place.time_zone");
        assert_eq!(field(BirthPlace::new("  ", 10.0, 10.0, "Asia/Kolkata")), "birth.place.name");
        assert_eq!(field(BirthPlace::new("Pu\nne", 10.0, 10.0, "Asia/Kolkata")), "birth.place.name");
        assert_eq!(field(BirthPlace::new("Pu\u{7}ne", 10.0, 10.0, "Asia/Kolkata")), "birth.place.name");
        assert_eq!(field(BirthPlace::new(&"a".repeat(101), 10.0, 10.0, "Asia/Kolkata")), "birth.place.name");
        let err = BirthPlace::new("X", 91.0, 0.0, "Asia/Kolkata").unwrap_err();
        assert!(err.to_string().starts_with("birth.place.latitude: "), "{err}");

        let place = BirthPlace::new("  Pune ", -90.0, 180.0, "Asia/Kolkata").unwrap();
        assert_eq!((place.name.as_str(), place.time_zone), ("Pune", chrono_tz::Asia::Kolkata));
        assert!(BirthPlace::new(&"ए".repeat(100), 90.0, -180.0, "UTC").is_ok());
        let forged = BirthPlace { latitude: 100.0, ..delhi() };
        assert_eq!(chart_basics(date(2000, 1, 1), None, &forged).unwrap_err().field(), "birth.place.latitude");
    }

    #[test]
    fn dates_outside_1900_to_2100_name_the_date() {
        for bad in [date(1899, 12, 31), date(2101, 1, 1)] {
            let err = chart_basics(bad, Some(time(12, 0, 0)), &delhi()).unwrap_err();
            assert_eq!(err.field(), "birth.date");
            assert!(err.to_string().starts_with("birth.date: "));
            assert_eq!(birth_instant(bad, time(12, 0, 0), chrono_tz::UTC).unwrap_err().field(), "birth.date");
        }
        assert!(chart_basics(date(1900, 1, 1), Some(time(0, 0, 0)), &delhi()).is_ok());
        assert!(chart_basics(date(2100, 12, 31), None, &delhi()).is_ok());
    }

    #[test]
    fn a_skipped_local_time_is_refused_and_a_repeated_one_is_the_earlier() {
        let ny = chrono_tz::America::New_York;
        let err = birth_instant(date(2021, 3, 14), time(2, 30, 0), ny).unwrap_err();
        assert_eq!(err.field(), "birth.time");
        assert!(err.to_string().starts_with("birth.time: "), "{err}");
        let place = BirthPlace::new("New York", 40.71, -74.01, "America/New_York").unwrap();
        assert_eq!(chart_basics(date(2021, 3, 14), Some(time(2, 30, 0)), &place).unwrap_err().field(), "birth.time");
        assert_eq!(birth_instant(date(2021, 3, 14), time(1, 59, 59), ny).unwrap(), utc(2021, 3, 14, 6, 59, 59));
        assert_eq!(birth_instant(date(2021, 3, 14), time(3, 0, 0), ny).unwrap(), utc(2021, 3, 14, 7, 0, 0));
        // 01:30 happened at 05:30Z (EDT) and again at 06:30Z (EST): the earlier.
        assert_eq!(birth_instant(date(2021, 11, 7), time(1, 30, 0), ny).unwrap(), utc(2021, 11, 7, 5, 30, 0));
        // The unknown-time path never refuses: a skipped noon or midnight takes the old offset.
        let sao_paulo = chrono_tz::America::Sao_Paulo;
        assert!(birth_instant(date(2018, 11, 4), time(0, 0, 0), sao_paulo).is_err());
        assert_eq!(lenient_instant(date(2018, 11, 4).and_time(NaiveTime::MIN), sao_paulo), utc(2018, 11, 4, 3, 0, 0));
        assert_eq!(lenient_instant(date(2021, 3, 14).and_time(time(2, 30, 0)), ny), utc(2021, 3, 14, 7, 30, 0));
        assert_eq!(lenient_instant(date(2021, 11, 7).and_time(time(1, 30, 0)), ny), utc(2021, 11, 7, 5, 30, 0));
    }

    #[test]
    fn kolkata_war_time_is_honoured() {
        let kolkata = chrono_tz::Asia::Kolkata;
        // +06:30 from 1942-09-01 to 1945-10-15, +05:30 before and after.
        assert_eq!(birth_instant(date(1943, 6, 1), time(12, 0, 0), kolkata).unwrap(), utc(1943, 6, 1, 5, 30, 0));
        assert_eq!(birth_instant(date(1947, 8, 15), time(0, 0, 0), kolkata).unwrap(), utc(1947, 8, 14, 18, 30, 0));
        assert!(birth_instant(date(1942, 9, 1), time(0, 30, 0), kolkata).is_err());
        // 23:30 on 1945-10-14 came twice; the earlier is still war time.
        assert_eq!(birth_instant(date(1945, 10, 14), time(23, 30, 0), kolkata).unwrap(), utc(1945, 10, 14, 17, 0, 0));
    }

    /// Meeus examples 47.a (Moon), 25.b (Sun), 22.a (nutation), 12.a (sidereal time).
    #[test]
    fn the_theories_reproduce_meeus_examples() {
        let t = |jde: f64| (jde - J2000) / 36_525.0;
        let (lon, lat, dist) = moon_position(t(2_448_724.5));
        close(lon, 133.162_655, 0.000_01);
        close(lat, -3.229_126, 0.000_01);
        assert!((dist - 368_409.7).abs() < 0.1, "{dist}");

        let sky = Sky::at(utc(1992, 10, 13, 0, 0, 0) - Duration::milliseconds((delta_t(1992.78) * 1000.0) as i64));
        let (l, b, r) = earth_heliocentric(t(2_448_908.5) / 10.0);
        close(l.to_degrees(), -43.634_847_96_f64.to_degrees(), 0.000_3);
        assert!(b.abs() < 0.000_01 && (r - 0.997_607_75).abs() < 0.000_001, "{b} {r}");
        close(sky.sun() + sky.nutation_longitude, 199.906_060, 0.000_3);

        let (dpsi, deps) = nutation(t(2_446_895.5));
        close(dpsi * 3600.0, -3.788, 0.001);
        close(deps * 3600.0, 9.443, 0.001);
        close(mean_obliquity(t(2_446_895.5)), 23.0 + 26.0 / 60.0 + 27.407 / 3600.0, 0.1 / 3600.0);
        close(mean_sidereal_time(2_446_895.5), (13.0 + 10.0 / 60.0 + 46.3668 / 3600.0) * 15.0, 0.0001 / 240.0);
        assert_eq!((MOON_LR.len(), MOON_B.len(), NUTATION.len()), (60, 60, 63));
    }

    /// Lahiri's defining value, 23°15'00.658" (true) on 1956-09-22, as the Swiss Ephemeris 2.10
    /// has it once its precession model is reconciled (`swe_get_ayanamsa_ex`, TT), and the mean
    /// value it gives in 1900, 2000 and 2100.
    #[test]
    fn lahiri_ayanamsa_is_the_swiss_ephemeris_one() {
        let t = |jde: f64| (jde - J2000) / 36_525.0;
        let epoch = t(LAHIRI_EPOCH);
        close(mean_ayanamsa(epoch) + nutation(epoch).0, 23.0 + 15.0 / 60.0 + 0.658 / 3600.0, 0.2 / 3600.0);
        close(mean_ayanamsa(epoch) + nutation(epoch).0, 23.250_221_199, 0.02 / 3600.0);
        close(mean_ayanamsa(t(2_415_020.5)), 22.460_530_593, 0.02 / 3600.0);
        close(mean_ayanamsa(t(2_451_545.0)), 23.857_092_325, 0.02 / 3600.0);
        close(mean_ayanamsa(t(2_488_069.5)), 25.254_268_232, 0.02 / 3600.0);
    }

    /// ΔT within 2 s of the Swiss Ephemeris 2.10 (`swe_deltat_ex`) over the accepted dates:
    /// 2 s move the Moon 0.0003°.
    #[test]
    fn delta_t_follows_the_swiss_ephemeris() {
        let swiss = [(1900.0, -2.05), (1920.0, 21.59), (1950.0, 28.93), (1980.0, 50.54), (2000.0, 63.83)];
        let future = [(2005.0, 64.69), (2020.0, 69.36), (2030.0, 69.28), (2050.0, 74.58), (2100.0, 93.18)];
        for (year, seconds) in swiss.into_iter().chain(future) {
            assert!((delta_t(year) - seconds).abs() < 2.0, "{year}: {} vs {seconds}", delta_t(year));
        }
        assert!((delta_t(2005.0) - delta_t(2_004.999_999)).abs() < 0.001);
    }

    /// Values from the Swiss Ephemeris 2.10 (Moshier, SE_SIDM_LAHIRI, Placidus ascmc[0]).
    #[test]
    fn known_charts() {
        let chart = chart_basics(date(2000, 1, 1), Some(time(17, 30, 0)), &delhi()).unwrap();
        close(chart.sun_longitude, 256.515_697, 0.003);
        close(chart.moon_longitude, 199.470_553, 0.01);
        close(chart.ayanamsa, 23.853_222, 0.001);
        close(chart.ascendant_longitude.unwrap(), 76.323_200, 0.01);
        assert_eq!(
            (chart.sun_sign, chart.moon_sign, chart.nakshatra, chart.pada, chart.lagna),
            (Rashi::Dhanu, Rashi::Tula, Nakshatra::Swati, 4, Some(Rashi::Mithuna))
        );
        assert!(chart.time_known && !chart.moon_sign_changes_that_day);

        // Kolkata in war time (+06:30): 12:00 local is 05:30 UTC.
        let kolkata = BirthPlace::new("Kolkata", 22.5726, 88.3639, "Asia/Kolkata").unwrap();
        let chart = chart_basics(date(1943, 6, 1), Some(time(12, 0, 0)), &kolkata).unwrap();
        close(chart.sun_longitude, 46.794_824, 0.003);
        close(chart.moon_longitude, 26.901_192, 0.01);
        close(chart.ayanamsa, 23.063_327, 0.001);
        close(chart.ascendant_longitude.unwrap(), 129.146_506, 0.01);
        assert_eq!(
            (chart.sun_sign, chart.moon_sign, chart.nakshatra, chart.pada, chart.lagna),
            (Rashi::Vrishabha, Rashi::Mesha, Nakshatra::Krittika, 1, Some(Rashi::Simha))
        );
    }

    #[test]
    fn an_unknown_time_is_noon_without_lagna_and_flags_a_moon_sign_change() {
        let kolkata = BirthPlace::new("Kolkata", 22.5726, 88.3639, "Asia/Kolkata").unwrap();
        // The Moon went from 202.7° to 214.6° (Tula to Vrischika) on 2000-01-02 IST.
        let chart = chart_basics(date(2000, 1, 2), None, &kolkata).unwrap();
        assert!(!chart.time_known && chart.moon_sign_changes_that_day);
        assert_eq!((chart.lagna, chart.ascendant_longitude), (None, None));
        let noon = chart_basics(date(2000, 1, 2), Some(time(12, 0, 0)), &kolkata).unwrap();
        assert_eq!((chart.sun_longitude, chart.moon_longitude), (noon.sun_longitude, noon.moon_longitude));
        // From 190.7° to 202.7° on 2000-01-01: Tula all day.
        let chart = chart_basics(date(2000, 1, 1), None, &kolkata).unwrap();
        assert!(!chart.moon_sign_changes_that_day && chart.moon_sign == Rashi::Tula);

        let json = serde_json::to_value(&chart).unwrap();
        assert_eq!(json["moon_sign"], "tula");
        assert_eq!(json["lagna"], serde_json::Value::Null);
        assert_eq!(json["time_known"], false);
    }

    #[test]
    fn no_lagna_beyond_66_degrees() {
        let tromso = BirthPlace::new("Tromsø", 69.65, 18.96, "Europe/Oslo").unwrap();
        let chart = chart_basics(date(1990, 6, 1), Some(time(12, 0, 0)), &tromso).unwrap();
        assert_eq!((chart.lagna, chart.ascendant_longitude), (None, None));
        let south = BirthPlace::new("Ushuaia", -54.8, -68.3, "America/Argentina/Ushuaia").unwrap();
        assert!(chart_basics(date(1990, 6, 1), Some(time(12, 0, 0)), &south).unwrap().lagna.is_some());
    }

    #[test]
    fn longitudes_stay_in_0_to_360() {
        let place = BirthPlace::new("Apia", -13.8, -171.8, "Pacific/Apia").unwrap();
        for day in 0..400 {
            let d = date(1950, 1, 1) + Duration::days(day * 37);
            let chart = chart_basics(d, Some(time(6, 0, 0)), &place).unwrap();
            for lon in [chart.sun_longitude, chart.moon_longitude, chart.ascendant_longitude.unwrap()] {
                assert!((0.0..360.0).contains(&lon), "{lon}");
            }
        }
    }
}
