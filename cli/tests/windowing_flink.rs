//! Conformance with Apache Flink itself: seeded random arrival sequences windowed by wattcast's
//! engine and by Flink 1.17.2 (the job in `tests/flink`, as the original windowed each device)
//! must give the same windows, with the same contents, and the same late readings.
//!
//! Needs the test env (`make test-env` resolves Flink and compiles the job; `WATTCAST_FLINK_WINDOWS`
//! in `test-env/.env` is the command that runs it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use wattcast_core::windowing::{WatermarkStrategy, WindowConfig, WindowEngine, WindowEvent};
use wattcast_core::{DeviceId, Reading};

/// How many random arrival sequences are compared under each watermark strategy.
const CASES: u64 = 240;

/// The first case's seed; case `i` is `random_case(SEED + i)`.
const SEED: u64 = 0x57a7_ca57;

/// The strategies compared: Flink's name for the job, and wattcast's.
const STRATEGIES: [(&str, &str); 4] = [
    ("monotonous", "monotonous"),
    ("bounded:0", "bounded:0s"),
    ("bounded:5", "bounded:5s"),
    ("bounded:10", "bounded:10s"),
];

/// One reading of a case, in arrival order.
#[derive(Clone, Copy, Debug)]
struct Arrival {
    device: u32,
    second: i64,
    power: f64,
}

/// What a windowing emitted for one case: its windows (sorted) and each device's late
/// readings in the order they arrived.
#[derive(Clone, Debug, Default, PartialEq)]
struct Outcome {
    windows: Vec<String>,
    late: BTreeMap<u32, Vec<String>>,
}

fn window_row(device: u32, start: i64, end: i64, seconds: &[(i64, f64)]) -> String {
    let contents: Vec<String> = seconds.iter().map(|(t, p)| format!("{t}={p}")).collect();
    format!("W{device}[{start},{end}):{}", contents.join(" "))
}

fn late_row(second: i64, power: f64, window_start: i64) -> String {
    format!("{second}={power}(w{window_start})")
}

/// A device's readings: seconds from a random start, with random gaps (some longer than a
/// window), then jittered, with runs deferred and some seconds sent again with another power.
fn device_arrivals(rng: &mut ChaCha8Rng, device: u32) -> Vec<Arrival> {
    let start = rng.random_range(0..300);
    let length = rng.random_range(20..400);
    let gap_chance = [0.0, 0.02, 0.1][rng.random_range(0..3)];
    let mut arrivals = Vec::new();
    let mut second = start;
    while second < start + length {
        if rng.random_bool(gap_chance) {
            second += rng.random_range(1..=150);
            continue;
        }
        let power = f64::from(rng.random_range(0..40_000)) / 10.0;
        arrivals.push(Arrival {
            device,
            second,
            power,
        });
        second += 1;
    }
    let jitter = [0, 3, 12][rng.random_range(0..3)];
    if jitter > 0 {
        for i in 0..arrivals.len() {
            if rng.random_bool(0.3) {
                let j = (i + rng.random_range(1..=jitter)).min(arrivals.len() - 1);
                arrivals.swap(i, j);
            }
        }
    }
    for _ in 0..rng.random_range(0..=3) {
        if arrivals.len() < 2 {
            break;
        }
        let run = rng.random_range(1..=20.min(arrivals.len()));
        let from = rng.random_range(0..=arrivals.len() - run);
        let moved: Vec<Arrival> = arrivals.drain(from..from + run).collect();
        let to = (from + rng.random_range(0..=90)).min(arrivals.len());
        arrivals.splice(to..to, moved);
    }
    if rng.random_bool(0.5) {
        let mut i = 0;
        while i < arrivals.len() {
            if rng.random_bool(0.03) {
                let again = Arrival {
                    power: f64::from(rng.random_range(0..40_000)) / 10.0,
                    ..arrivals[i]
                };
                let at = (i + rng.random_range(0..=40)).min(arrivals.len());
                arrivals.insert(at, again);
                i += 1;
            }
            i += 1;
        }
    }
    arrivals
}

/// One case: one to four devices' arrivals interleaved in random bursts.
fn random_case(seed: u64) -> Vec<Arrival> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let devices = rng.random_range(1..=4);
    let mut queues: Vec<std::collections::VecDeque<Arrival>> = (1..=devices)
        .map(|device| device_arrivals(&mut rng, device).into())
        .collect();
    let burst = [1, 5, 60][rng.random_range(0..3)];
    let mut case = Vec::new();
    loop {
        let waiting: Vec<usize> = (0..queues.len()).filter(|&i| !queues[i].is_empty()).collect();
        if waiting.is_empty() {
            return case;
        }
        let queue = &mut queues[waiting[rng.random_range(0..waiting.len())]];
        for _ in 0..rng.random_range(1..=burst) {
            match queue.pop_front() {
                Some(arrival) => case.push(arrival),
                None => break,
            }
        }
    }
}

/// wattcast's engine over one case: all its devices in one engine, in arrival order, then finished.
fn engine_outcome(case: &[Arrival], watermark: WatermarkStrategy) -> Outcome {
    let config = WindowConfig::new(Duration::from_secs(60), watermark, None).expect("60 s windows");
    let mut engine = WindowEngine::new(config);
    let mut events = Vec::new();
    for (index, arrival) in case.iter().enumerate() {
        let reading = Reading::new(DeviceId(arrival.device), arrival.second, arrival.power);
        engine.push(reading, index as i64 * 1000, &mut events);
    }
    engine.finish(&mut events);
    let mut outcome = Outcome::default();
    for event in events {
        match event {
            WindowEvent::Emitted(window) => {
                let seconds: Vec<(i64, f64)> = window
                    .readings
                    .iter()
                    .map(|r| (r.event_time, r.power_w))
                    .collect();
                outcome
                    .windows
                    .push(window_row(window.device.0, window.start, window.end, &seconds));
            }
            WindowEvent::Late(late) => outcome
                .late
                .entry(late.reading.device.0)
                .or_default()
                .push(late_row(
                    late.reading.event_time,
                    late.reading.power_w,
                    late.window_start,
                )),
        }
    }
    outcome.windows.sort();
    outcome
}

/// The command that runs the Flink job: the environment, else `test-env/.env`.
fn flink_command() -> PathBuf {
    const NAME: &str = "WATTCAST_FLINK_WINDOWS";
    let from_file = || {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let file = wattcast_io::services::find_test_env_file(&repo)?;
        dotenvy::from_path_iter(file)
            .ok()?
            .filter_map(Result::ok)
            .find(|(key, _)| key == NAME)
            .map(|(_, value)| value)
    };
    let command = std::env::var(NAME).ok().or_else(from_file).unwrap_or_else(|| {
        panic!("{NAME} is not set and not in test-env/.env; start the test services with `make test-env` (it resolves Apache Flink and compiles tests/flink)")
    });
    let command = PathBuf::from(command);
    assert!(
        command.exists(),
        "{NAME}={} does not exist; run `make test-env` again",
        command.display()
    );
    command
}

/// Flink over every case, under every strategy: (strategy, case) → outcome.
fn flink_outcomes(cases: &[Vec<Arrival>]) -> BTreeMap<(String, usize), Outcome> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let input = dir.path().join("readings.csv");
    let output = dir.path().join("windows.csv");
    let mut csv = String::from("case,device,second,power\n");
    for (index, case) in cases.iter().enumerate() {
        for arrival in case {
            csv.push_str(&format!(
                "{index},{},{},{}\n",
                arrival.device, arrival.second, arrival.power
            ));
        }
    }
    std::fs::write(&input, csv).expect("writing the readings");
    let run = Command::new(flink_command())
        .arg(&input)
        .arg(&output)
        .args(STRATEGIES.map(|(flink, _)| flink))
        .output()
        .expect("running the Flink job");
    assert!(
        run.status.success(),
        "the Flink job failed ({}):\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&output).expect("reading Flink's output");
    let mut outcomes: BTreeMap<(String, usize), Outcome> = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        let field = |i: usize| -> &str {
            fields
                .get(i)
                .unwrap_or_else(|| panic!("Flink output line {}: no field {i}: {line}", number + 1))
        };
        let int = |i: usize| -> i64 {
            field(i)
                .parse()
                .unwrap_or_else(|e| panic!("Flink output line {}, field {i}: {e}: {line}", number + 1))
        };
        let case = usize::try_from(int(2)).expect("case index");
        let device = u32::try_from(int(3)).expect("device");
        let outcome = outcomes.entry((field(1).to_owned(), case)).or_default();
        match field(0) {
            "window" => {
                let seconds: Vec<(i64, f64)> = field(7)
                    .split(' ')
                    .map(|pair| {
                        let (t, p) = pair.split_once('=').expect("t=p");
                        (t.parse().expect("second"), p.parse().expect("power"))
                    })
                    .collect();
                assert_eq!(
                    seconds.len() as i64,
                    int(6),
                    "line {}: distinct count",
                    number + 1
                );
                outcome.windows.push(window_row(device, int(4), int(5), &seconds));
            }
            "late" => {
                let power: f64 = field(5).parse().expect("power");
                outcome
                    .late
                    .entry(device)
                    .or_default()
                    .push(late_row(int(4), power, int(6)));
            }
            other => panic!("Flink output line {}: unknown row kind {other}", number + 1),
        }
    }
    for outcome in outcomes.values_mut() {
        outcome.windows.sort();
    }
    outcomes
}

/// Where two outcomes differ: windows only one side emitted, and each device's first late
/// reading that differs.
fn differences(flink: &Outcome, ours: &Outcome) -> String {
    let mut lines = Vec::new();
    for window in flink.windows.iter().filter(|w| !ours.windows.contains(w)).take(3) {
        lines.push(format!("  only Flink emitted    {window}"));
    }
    for window in ours.windows.iter().filter(|w| !flink.windows.contains(w)).take(3) {
        lines.push(format!("  only wattcast emitted {window}"));
    }
    let devices: std::collections::BTreeSet<&u32> = flink.late.keys().chain(ours.late.keys()).collect();
    for device in devices {
        let (theirs, mine) = (flink.late.get(device), ours.late.get(device));
        let (theirs, mine) = (
            theirs.map_or(&[][..], Vec::as_slice),
            mine.map_or(&[][..], Vec::as_slice),
        );
        if let Some(at) = (0..theirs.len().max(mine.len())).find(|&i| theirs.get(i) != mine.get(i)) {
            lines.push(format!(
                "  device {device}: late reading {at} is {:?} in Flink, {:?} in wattcast ({} and {} late in all)",
                theirs.get(at),
                mine.get(at),
                theirs.len(),
                mine.len()
            ));
        }
    }
    lines.join("\n")
}

#[test]
fn the_engine_windows_random_arrivals_as_apache_flink_does() {
    let cases: Vec<Vec<Arrival>> = (0..CASES).map(|index| random_case(SEED + index)).collect();
    let flink = flink_outcomes(&cases);
    let mut failures = Vec::new();
    let (mut windows, mut late) = (0, 0);
    for (flink_name, ours) in STRATEGIES {
        let watermark: WatermarkStrategy = ours.parse().expect("a watermark strategy");
        for (index, case) in cases.iter().enumerate() {
            let expected = flink
                .get(&(flink_name.to_owned(), index))
                .cloned()
                .unwrap_or_default();
            let got = engine_outcome(case, watermark);
            windows += expected.windows.len();
            late += expected.late.values().map(Vec::len).sum::<usize>();
            if got != expected && failures.len() < 3 {
                failures.push(format!(
                    "case {index} (seed {:#x}, {} readings), {flink_name}:\n{}",
                    SEED + index as u64,
                    case.len(),
                    differences(&expected, &got)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "wattcast and Flink differ:\n{}",
        failures.join("\n")
    );
    // The cases exercise what they claim to: many windows, and late readings under every strategy.
    assert!(windows > 4 * CASES as usize, "only {windows} windows");
    for (flink_name, _) in STRATEGIES {
        let cases_with_late = flink
            .iter()
            .filter(|((strategy, _), outcome)| strategy == flink_name && !outcome.late.is_empty())
            .count();
        assert!(
            cases_with_late > 20,
            "{flink_name}: only {cases_with_late} cases have late readings"
        );
    }
    eprintln!(
        "{CASES} cases × {} strategies: {windows} windows and {late} late readings agree",
        STRATEGIES.len()
    );
}
