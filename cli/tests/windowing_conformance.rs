//! Conformance table: arrival sequences and the windows Apache Flink emits for them.
//!
//! Each expectation follows from Flink's definitions, with event time `t` in seconds (Flink
//! sees `t * 1000` ms): `BoundedOutOfOrdernessWatermarks` gives watermark = max ms − bound − 1
//! (`forMonotonousTimestamps()` is bound 0); `TumblingEventTimeWindows.of(size)` puts `t` in
//! `[floor(t/size)*size, +size)`; `EventTimeTrigger` fires when watermark ≥ end − 1 ms;
//! `WindowOperator.isWindowLate` drops (here: reports) readings whose window's end − 1 ms ≤
//! watermark; a finished bounded source emits the maximum watermark. Readings print as `t`
//! (power = t) or `t=power`; windows as `W<device>[start,end):readings`; late readings as
//! `L<device>@t(w<start>)`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

use std::time::Duration;
use wattcast_core::windowing::{WatermarkStrategy, WindowConfig, WindowEngine, WindowEvent};
use wattcast_core::{DeviceId, Reading};

/// One step of a case.
#[derive(Clone, Copy)]
enum Step {
    /// Device 1 sends a reading at `t` (power = t); it arrives one second after the previous step.
    R(i64),
    /// Device `d` sends a reading at `t`.
    D(u32, i64),
    /// Device 1 sends a reading at `t` with the given power (to tell duplicates apart).
    P(i64, f64),
    /// A reading of device `d` at `t` arriving at processing time `ms`.
    At(u32, i64, i64),
    /// Processing time reaches `ms`: idle devices are flushed.
    Idle(i64),
}
use Step::*;

struct Case {
    name: &'static str,
    watermark: &'static str,
    size_s: u64,
    idle_s: Option<u64>,
    steps: &'static [Step],
    expect: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "monotonous, in order: each window fires on the first reading of the next",
        watermark: "monotonous",
        size_s: 60,
        idle_s: None,
        steps: &[R(0), R(1), R(59), R(60), R(61), R(119), R(120)],
        expect: &["W1[0,60):0,1,59", "W1[60,120):60,61,119", "W1[120,180):120"],
    },
    Case {
        name: "monotonous, shuffled inside a minute: nothing late, readings sorted",
        watermark: "monotonous",
        size_s: 60,
        idle_s: None,
        steps: &[R(5), R(3), R(41), R(1), R(60)],
        expect: &["W1[0,60):1,3,5,41", "W1[60,120):60"],
    },
    Case {
        name: "monotonous: a reading for a fired window is late",
        watermark: "monotonous",
        size_s: 60,
        idle_s: None,
        steps: &[R(0), R(1), R(60), R(2)],
        expect: &["W1[0,60):0,1", "L1@2(w0)", "W1[60,120):60"],
    },
    Case {
        name: "bounded 0s is monotonous",
        watermark: "bounded:0s",
        size_s: 60,
        idle_s: None,
        steps: &[R(0), R(1), R(60), R(2)],
        expect: &["W1[0,60):0,1", "L1@2(w0)", "W1[60,120):60"],
    },
    Case {
        name: "bounded 5s: window [0,60) waits for event time 65",
        watermark: "bounded:5s",
        size_s: 60,
        idle_s: None,
        steps: &[R(0), R(64), R(2), R(65), R(3)],
        expect: &["W1[0,60):0,2", "L1@3(w0)", "W1[60,120):64,65"],
    },
    Case {
        name: "bounded 10s: window [0,60) waits for event time 70",
        watermark: "bounded:10s",
        size_s: 60,
        idle_s: None,
        steps: &[R(0), R(69), R(5), R(70), R(6)],
        expect: &["W1[0,60):0,5", "L1@6(w0)", "W1[60,120):69,70"],
    },
    Case {
        name: "bounded 5s: ten seconds behind is still late",
        watermark: "bounded:5s",
        size_s: 60,
        idle_s: None,
        steps: &[R(0), R(70), R(5)],
        expect: &["W1[0,60):0", "L1@5(w0)", "W1[60,120):70"],
    },
    Case {
        name: "monotonous: a jump skips empty windows; readings for them are late",
        watermark: "monotonous",
        size_s: 60,
        idle_s: None,
        steps: &[R(0), R(200), R(130), R(199)],
        expect: &["W1[0,60):0", "L1@130(w120)", "W1[180,240):199,200"],
    },
    Case {
        name: "bounded 5s: a first reading far ahead makes older windows late before they open",
        watermark: "bounded:5s",
        size_s: 60,
        idle_s: None,
        steps: &[R(100), R(10)],
        expect: &["L1@10(w0)", "W1[60,120):100"],
    },
    Case {
        name: "bounded 5s: the watermark never goes back",
        watermark: "bounded:5s",
        size_s: 60,
        idle_s: None,
        steps: &[R(100), R(90), R(125), R(119)],
        expect: &["W1[60,120):90,100", "L1@119(w60)", "W1[120,180):125"],
    },
    Case {
        name: "duplicates inside a window count once, last wins",
        watermark: "monotonous",
        size_s: 60,
        idle_s: None,
        steps: &[P(0, 1.0), P(0, 2.0), R(1), R(60)],
        expect: &["W1[0,60):0=2,1", "W1[60,120):60"],
    },
    Case {
        name: "a duplicate of a fired window's reading is late",
        watermark: "monotonous",
        size_s: 60,
        idle_s: None,
        steps: &[R(0), R(60), R(0)],
        expect: &["W1[0,60):0", "L1@0(w0)", "W1[60,120):60"],
    },
    Case {
        name: "watermarks are per device (at the end, open windows fire in device order)",
        watermark: "monotonous",
        size_s: 60,
        idle_s: None,
        steps: &[D(1, 0), D(2, 0), D(1, 60), D(2, 1)],
        expect: &["W1[0,60):0", "W1[60,120):60", "W2[0,60):0,1"],
    },
    Case {
        name: "ten-second windows",
        watermark: "monotonous",
        size_s: 10,
        idle_s: None,
        steps: &[R(0), R(9), R(10), R(25)],
        expect: &["W1[0,10):0,9", "W1[10,20):10", "W1[20,30):25"],
    },
    Case {
        name: "idle 30s: a silent device's windows fire and later readings for them are late",
        watermark: "bounded:5s",
        size_s: 60,
        idle_s: Some(30),
        steps: &[
            At(1, 0, 0),
            At(1, 1, 1_000),
            Idle(30_999),
            Idle(31_000),
            At(1, 2, 32_000),
            At(1, 60, 33_000),
        ],
        expect: &["W1[0,60):0,1", "L1@2(w0)", "W1[60,120):60"],
    },
    Case {
        name: "idle flush fires only the idle devices",
        watermark: "monotonous",
        size_s: 60,
        idle_s: Some(30),
        steps: &[
            At(1, 0, 0),
            At(2, 0, 10_000),
            At(2, 1, 25_000),
            Idle(30_000),
            Idle(55_000),
        ],
        expect: &["W1[0,60):0", "W2[0,60):0,1"],
    },
    Case {
        name: "without an idle timeout nothing fires before the end",
        watermark: "monotonous",
        size_s: 60,
        idle_s: None,
        steps: &[At(1, 0, 0), Idle(3_600_000)],
        expect: &["W1[0,60):0"],
    },
];

fn describe(event: &WindowEvent) -> String {
    let reading = |r: &Reading| {
        if r.power_w == r.event_time as f64 {
            r.event_time.to_string()
        } else {
            format!("{}={}", r.event_time, r.power_w)
        }
    };
    match event {
        WindowEvent::Emitted(w) => format!(
            "W{}[{},{}):{}",
            w.device,
            w.start,
            w.end,
            w.readings.iter().map(reading).collect::<Vec<_>>().join(",")
        ),
        WindowEvent::Late(late) => format!(
            "L{}@{}(w{})",
            late.reading.device, late.reading.event_time, late.window_start
        ),
    }
}

fn run(case: &Case) -> Vec<String> {
    let watermark: WatermarkStrategy = case.watermark.parse().unwrap();
    let config = WindowConfig::new(
        Duration::from_secs(case.size_s),
        watermark,
        case.idle_s.map(Duration::from_secs),
    )
    .unwrap();
    let mut engine = WindowEngine::new(config);
    let mut out = Vec::new();
    let mut now_ms = 0;
    for step in case.steps {
        let (device, t, power, at) = match *step {
            R(t) => (1, t, t as f64, None),
            D(d, t) => (d, t, t as f64, None),
            P(t, p) => (1, t, p, None),
            At(d, t, ms) => (d, t, t as f64, Some(ms)),
            Idle(ms) => {
                now_ms = ms;
                engine.flush_idle(now_ms, &mut out);
                continue;
            }
        };
        now_ms = at.unwrap_or(now_ms + 1000);
        engine.push(Reading::new(DeviceId(device), t, power), now_ms, &mut out);
    }
    engine.finish(&mut out);
    out.iter().map(describe).collect()
}

#[test]
fn the_engine_emits_what_flink_emits() {
    let mut failures = Vec::new();
    for case in CASES {
        let got = run(case);
        if got != case.expect {
            failures.push(format!(
                "{}:\n  expected {:?}\n  got      {:?}",
                case.name, case.expect, got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn monotonous_and_bounded_zero_agree_on_every_case() {
    for case in CASES.iter().filter(|case| case.watermark == "monotonous") {
        let bounded_zero = Case {
            watermark: "bounded:0s",
            ..*case
        };
        assert_eq!(run(case), run(&bounded_zero), "{}", case.name);
    }
}

#[test]
fn after_finish_everything_is_late() {
    let mut engine = WindowEngine::new(WindowConfig::one_minute(WatermarkStrategy::Monotonous));
    let mut out = Vec::new();
    engine.push(Reading::new(DeviceId(1), 0, 1.0), 0, &mut out);
    engine.finish(&mut out);
    engine.push(Reading::new(DeviceId(1), 1_000_000, 1.0), 0, &mut out);
    assert!(matches!(out.last(), Some(WindowEvent::Late(_))));
}

#[test]
fn open_windows_stay_bounded_by_the_watermark() {
    // With bound D < size, each device holds at most D/size + 1 (rounded up) open windows.
    for bound in [0, 5, 10, 59] {
        let config = WindowConfig::one_minute(format!("bounded:{bound}s").parse().unwrap());
        let mut engine = WindowEngine::new(config);
        let mut out = Vec::new();
        let devices = 50;
        for t in 0..1_000 {
            for device in 0..devices {
                // Each device runs up to `bound` seconds behind its own highest event time.
                let jitter = (t * 7 + device as i64 * 13) % (bound + 1);
                engine.push(
                    Reading::new(DeviceId(device), (t - jitter).max(0), 1.0),
                    t,
                    &mut out,
                );
            }
            assert!(
                engine.open_windows() <= devices as usize * 2,
                "bound {bound}: {}",
                engine.open_windows()
            );
        }
    }
}

#[test]
fn invalid_configurations_are_refused() {
    let monotonous = WatermarkStrategy::Monotonous;
    assert!(WindowConfig::new(Duration::from_millis(1500), monotonous, None).is_err());
    assert!(WindowConfig::new(Duration::ZERO, monotonous, None).is_err());
    assert!(WindowConfig::new(Duration::from_secs(60), monotonous, Some(Duration::ZERO)).is_err());
    assert!(WindowConfig::new(Duration::from_secs(60), monotonous, Some(Duration::from_secs(60))).is_ok());
}

#[test]
fn finishing_one_device_fires_only_its_windows() {
    let mut engine = WindowEngine::new(WindowConfig::one_minute(WatermarkStrategy::Monotonous));
    let mut out = Vec::new();
    engine.push(Reading::new(DeviceId(1), 0, 0.0), 0, &mut out);
    engine.push(Reading::new(DeviceId(2), 0, 0.0), 0, &mut out);
    engine.finish_device(DeviceId(1), &mut out);
    assert_eq!(out.iter().map(describe).collect::<Vec<_>>(), ["W1[0,60):0"]);
    engine.push(Reading::new(DeviceId(1), 5, 5.0), 0, &mut out);
    assert!(matches!(out.last(), Some(WindowEvent::Late(_))));
    assert_eq!(engine.open_windows(), 1);
}
