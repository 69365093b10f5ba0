//! Our chart basics (`shared::domain::chart`) against the Swiss Ephemeris: pyswisseph, pinned
//! in tests/chart/requirements.txt and installed into .venv by scripts/setup.sh, through
//! tests/chart/oracle.py (Moshier ephemeris, `SIDM_LAHIRI`, `houses_ex` ascendant). Every birth
//! moment of tests/chart/moments.csv (made by tests/chart/make_moments.py) must give the same
//! UTC instant (or both refuse a skipped local time), the same Sun sign, Moon sign, nakshatra,
//! pada, lagna and unknown-time Moon-sign flag, and longitudes within the tolerances below.
//! Without Python or pyswisseph this test fails: it never passes unchecked.
//!
//! Achieved over the 273 moments (1940–2030), |ours − Swiss Ephemeris| at most: Sun 0.00017°
//! (0.61"), Moon 0.0021° (7.5"), ascendant 0.00008° (0.28"), ayanamsa 0.000005° (0.02"); the
//! tolerances below leave room (Moon 2.4×, the rest 6× or more). Every moment is at least 0.03°
//! from each boundary the test judges: 6× the Moon's tolerance, 15× the ascendant's.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use chrono::{NaiveDate, NaiveTime};
use serde_json::{Value, json};
use shared::domain::chart::{BirthPlace, ChartBasics, birth_instant, chart_basics};

const SETUP: &str = "run scripts/setup.sh (it installs pyswisseph from tests/chart/requirements.txt into .venv)";

/// |ours − Swiss Ephemeris|, degrees.
const SUN_TOLERANCE: f64 = 0.001;
const MOON_TOLERANCE: f64 = 0.005;
const ASCENDANT_TOLERANCE: f64 = 0.002;
const AYANAMSA_TOLERANCE: f64 = 0.0001;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Moment {
    category: String,
    date: NaiveDate,
    time: Option<NaiveTime>,
    lat: f64,
    lon: f64,
    tz: String,
}

fn moments() -> Vec<Moment> {
    let path = repo().join("tests/chart/moments.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("category,date,time,lat,lon,tz"));
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 6, "{line}");
            Moment {
                category: f[0].to_owned(),
                date: f[1].parse().unwrap(),
                time: (!f[2].is_empty()).then(|| f[2].parse().unwrap()),
                lat: f[3].parse().unwrap(),
                lon: f[4].parse().unwrap(),
                tz: f[5].to_owned(),
            }
        })
        .collect()
}

/// The Swiss Ephemeris' reading of each moment, one JSON object each.
fn oracle(moments: &[Moment]) -> Vec<Value> {
    let python = repo().join(".venv/bin/python");
    let script = repo().join("tests/chart/oracle.py");
    assert!(python.is_file(), "no Python at {}: {SETUP}", python.display());
    let mut child = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}): {SETUP}", python.display()));
    let mut input = String::new();
    for m in moments {
        let time = m.time.map(|t| t.format("%H:%M:%S").to_string());
        input.push_str(
            &json!({ "date": m.date.to_string(), "time": time, "lat": m.lat, "lon": m.lon, "tz": m.tz }).to_string(),
        );
        input.push('\n');
    }
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} {} failed ({}): {}\n{SETUP}",
        python.display(),
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(answers.len(), moments.len(), "one answer per moment");
    answers
}

/// Signed difference of two longitudes, degrees in [-180, 180).
fn delta(ours: f64, theirs: f64) -> f64 {
    (ours - theirs + 180.0).rem_euclid(360.0) - 180.0
}

/// The largest |Δ| seen, where, and the mean Δ (a bias).
#[derive(Default)]
struct Worst {
    degrees: f64,
    row: usize,
    sum: f64,
    count: usize,
}

impl Worst {
    fn see(&mut self, d: f64, row: usize) {
        if d.abs() > self.degrees {
            (self.degrees, self.row) = (d.abs(), row);
        }
        self.sum += d;
        self.count += 1;
    }
}

#[test]
fn the_swiss_ephemeris_casts_the_same_charts() {
    let moments = moments();
    let started = Instant::now();
    let answers = oracle(&moments);
    let oracle_time = started.elapsed();

    let started = Instant::now();
    let ours: Vec<_> = moments
        .iter()
        .map(|m| {
            let place = BirthPlace::new("oracle", m.lat, m.lon, &m.tz).unwrap();
            chart_basics(m.date, m.time, &place)
        })
        .collect();
    let our_time = started.elapsed();

    let mut failures = Vec::new();
    let mut counts = BTreeMap::<&str, usize>::new();
    let (mut sun, mut moon, mut asc, mut aya) =
        (Worst::default(), Worst::default(), Worst::default(), Worst::default());
    for (i, ((m, theirs), ours)) in moments.iter().zip(&answers).zip(&ours).enumerate() {
        *counts.entry(m.category.as_str()).or_default() += 1;
        let row = format!("row {} ({} {} {:?} {} {} {})", i + 2, m.category, m.date, m.time, m.lat, m.lon, m.tz);
        let mut fail = |what: String| failures.push(format!("{row}: {what}"));
        if theirs["error"] == "birth.time" {
            match ours {
                Err(e) if e.field() == "birth.time" => {}
                other => fail(format!("the Swiss Ephemeris side refused a skipped time, we gave {other:?}")),
            }
            continue;
        }
        let ours: &ChartBasics = match ours {
            Ok(chart) => chart,
            Err(e) => {
                fail(format!("we refused: {e}"));
                continue;
            }
        };
        let noon = NaiveTime::from_hms_opt(12, 0, 0).unwrap();
        let tz = m.tz.parse().unwrap();
        let instant = birth_instant(m.date, m.time.unwrap_or(noon), tz).unwrap();
        if instant.format("%Y-%m-%dT%H:%M:%SZ").to_string() != theirs["utc"] {
            fail(format!("instant {instant} vs {}", theirs["utc"]));
        }
        let f = |key: &str| theirs[key].as_f64().unwrap();
        for (name, worst, d, tolerance) in [
            ("sun", &mut sun, delta(ours.sun_longitude, f("sun")), SUN_TOLERANCE),
            ("moon", &mut moon, delta(ours.moon_longitude, f("moon")), MOON_TOLERANCE),
            ("ayanamsa", &mut aya, delta(ours.ayanamsa, f("ayanamsa")), AYANAMSA_TOLERANCE),
        ] {
            worst.see(d, i + 2);
            if d.abs() > tolerance {
                fail(format!("{name} off by {d:.6}° (tolerance {tolerance}°)"));
            }
        }
        match (ours.ascendant_longitude, theirs["asc"].as_f64()) {
            (Some(a), Some(b)) => {
                let d = delta(a, b);
                asc.see(d, i + 2);
                if d.abs() > ASCENDANT_TOLERANCE {
                    fail(format!("ascendant off by {d:.6}° (tolerance {ASCENDANT_TOLERANCE}°)"));
                }
            }
            (None, None) => {}
            (a, b) => fail(format!("ascendant {a:?} vs {b:?}")),
        }
        let index = |key: &str| theirs[key].as_u64().map(|n| n as usize);
        let judged = [
            ("sun sign", Some(ours.sun_sign.index()), index("sun_sign")),
            ("moon sign", Some(ours.moon_sign.index()), index("moon_sign")),
            ("nakshatra", Some(ours.nakshatra.index()), index("nakshatra")),
            ("pada", Some(usize::from(ours.pada)), index("pada")),
            ("lagna", ours.lagna.map(|l| l.index()), index("lagna")),
        ];
        for (name, a, b) in judged {
            if a != b {
                fail(format!("{name} {a:?} vs {b:?}"));
            }
        }
        if ours.time_known != m.time.is_some() {
            fail(format!("time_known {}", ours.time_known));
        }
        if theirs["moon_sign_changes_that_day"] != ours.moon_sign_changes_that_day {
            fail(format!(
                "moon_sign_changes_that_day {} vs {}",
                ours.moon_sign_changes_that_day, theirs["moon_sign_changes_that_day"]
            ));
        }
    }

    println!("{} moments: {counts:?}", moments.len());
    for (name, worst, tolerance) in [
        ("sun", &sun, SUN_TOLERANCE),
        ("moon", &moon, MOON_TOLERANCE),
        ("ascendant", &asc, ASCENDANT_TOLERANCE),
        ("ayanamsa", &aya, AYANAMSA_TOLERANCE),
    ] {
        println!(
            "max |Δ{name}| = {:.6}° ({:.2}\") at row {}, mean Δ {:+.2}\" (tolerance {tolerance}°)",
            worst.degrees,
            worst.degrees * 3600.0,
            worst.row,
            worst.sum / worst.count.max(1) as f64 * 3600.0
        );
    }
    println!("oracle (Python, Swiss Ephemeris) {oracle_time:.2?}; ours {our_time:.2?}");
    let rows: std::collections::BTreeSet<&str> = failures.iter().filter_map(|f| f.split(" (").next()).collect();
    assert!(failures.is_empty(), "{} of {} moments disagree:\n{}", rows.len(), moments.len(), failures.join("\n"));
}
