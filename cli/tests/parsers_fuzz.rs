//! Every parser a user or a peer can feed, fed at random (proptest): sensor readings and batches
//! from MQTT, window and late messages from Pulsar, retrain requests and model announcements,
//! CSV datasets of both layouts, experiment YAML, model files and scalers. None may panic;
//! each refusal says what was wrong. Cases that once failed are kept by proptest in
//! `proptest-regressions/` and run first.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

use proptest::prelude::*;
use std::path::Path;
use wattcast_core::dataset::BadRowPolicy;
use wattcast_core::dataset::reader::read_dataset_from;
use wattcast_core::imputation::{ImputationMethod, impute};
use wattcast_core::wire::{
    LateMessage, ModelAnnouncement, RetrainRequest, WindowMessage, parse_batch, parse_sensor_payload,
};
use wattcast_model::{Forecaster, MinMaxScaler, Recipe, onnx, train};

/// A JSON value of any shape, numbers at the edges included.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_map(|x| serde_json::Number::from_f64(x)
                .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        Just(serde_json::Value::from(u64::MAX)),
        "[a-z_0-9 .-]{0,12}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A reading as a sensor sends it, with any of its fields replaced by any value or left out.
fn mutated_reading() -> impl Strategy<Value = serde_json::Value> {
    let field = |name: &'static str, valid: serde_json::Value| {
        prop_oneof![
            3 => Just(Some((name, valid))),
            1 => json_value().prop_map(move |value| Some((name, value))),
            1 => Just(None),
        ]
    };
    (
        field("sensor_id", 1.into()),
        field("sensor_energy_value", 612.5.into()),
        field("sensor_timestamp", 1_765_152_000.into()),
        field("message_creation_time", 1_765_152_000_123_i64.into()),
        field("seq", 7.into()),
    )
        .prop_map(|(a, b, c, d, e)| {
            serde_json::Value::Object(
                [a, b, c, d, e]
                    .into_iter()
                    .flatten()
                    .map(|(name, value)| (name.to_owned(), value))
                    .collect(),
            )
        })
}

/// What a refusal of a sensor message starts with: it says which kind of wrong it is.
const SENSOR_REFUSALS: [&str; 4] = [
    "malformed:",
    "invalid reading:",
    "unknown device",
    "inconsistent batch:",
];

fn refusal_is_named(reason: &str) -> bool {
    SENSOR_REFUSALS.iter().any(|prefix| reason.starts_with(prefix))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_from_mqtt_are_refused_with_a_reason(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Err(refused) = parse_sensor_payload(&bytes, 10) {
            prop_assert!(refusal_is_named(&refused.to_string()), "{refused}");
        }
        if let Err(refused) = parse_batch(&bytes, 10) {
            prop_assert!(refusal_is_named(&refused.to_string()), "{refused}");
        }
    }

    #[test]
    fn a_mutated_reading_is_accepted_only_when_valid(value in mutated_reading()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        match parse_sensor_payload(&bytes, 10) {
            Ok(wattcast_core::wire::SensorPayload::Reading(reading, _)) => {
                prop_assert!(reading.validate().is_ok());
                prop_assert!((1..=10).contains(&reading.device.0));
            }
            Ok(wattcast_core::wire::SensorPayload::EndOfStream(_)) => prop_assert!(false, "not a marker"),
            Err(refused) => {
                let reason = refused.to_string();
                prop_assert!(refusal_is_named(&reason), "{reason}");
                // A malformed field is named (serde says which), or the value that is wrong.
                prop_assert!(
                    ["sensor_id", "sensor_energy_value", "sensor_timestamp", "message_creation_time", "seq", "unknown device"]
                        .iter()
                        .any(|field| reason.contains(field))
                        || reason.contains("invalid type")
                        || reason.contains("invalid value"),
                    "{reason} names no field"
                );
            }
        }
    }

    #[test]
    fn peer_messages_from_pulsar_never_panic(value in json_value(), bytes in prop::collection::vec(any::<u8>(), 0..120)) {
        let json = serde_json::to_vec(&value).unwrap();
        for payload in [&json[..], &bytes[..]] {
            if let Ok(message) = serde_json::from_slice::<WindowMessage>(payload) {
                // The coordinator fills every window it accepts; a window it cannot fill is an
                // error, not a panic.
                let _ = impute(&message.window, ImputationMethod::Mean);
                let _ = impute(&message.window, ImputationMethod::Linear);
            }
            let _ = serde_json::from_slice::<LateMessage>(payload);
            let _ = serde_json::from_slice::<RetrainRequest>(payload);
            let _ = serde_json::from_slice::<ModelAnnouncement>(payload);
            let _ = serde_json::from_slice::<MinMaxScaler>(payload);
        }
    }

    #[test]
    fn windows_of_any_shape_are_filled_or_refused(
        start in -10_000i64..10_000,
        width in -5i64..200,
        expected in 0u32..300,
        seconds in prop::collection::vec((-50i64..300, 0.0f64..5_000.0), 0..80),
    ) {
        let window = wattcast_core::Window {
            device: wattcast_core::DeviceId(1),
            start,
            end: start + width,
            readings: seconds
                .into_iter()
                .map(|(offset, watts)| wattcast_core::Reading::new(wattcast_core::DeviceId(1), start + offset, watts))
                .collect(),
            expected,
            late: 0,
        };
        for method in [ImputationMethod::Mean, ImputationMethod::Linear, ImputationMethod::Previous] {
            if let Ok(filled) = impute(&window, method) {
                prop_assert!(filled.iter().all(|point| point.power_w.is_finite()));
            }
        }
    }

    #[test]
    fn csv_rows_of_any_content_are_read_or_refused_by_line(
        header in prop_oneof![
            Just("sensor_timestamp,sensor_id,sensor_energy_value"),
            Just("id,aprt_power,timestamp"),
            Just("device,watts"),
        ],
        rows in prop::collection::vec(
            prop::collection::vec(prop_oneof![
                "[0-9]{1,4}",
                "-?[0-9]{1,5}\\.[0-9]{1,3}",
                "17651[0-9]{5}",
                "(NaN|inf|-1|abc|2025-12-08 00:00:03|2025-12-08 00:00:03\\+00|)",
            ], 0..5),
            1..12,
        ),
    ) {
        let text = std::iter::once(header.to_owned())
            .chain(rows.iter().map(|fields| fields.join(",")))
            .collect::<Vec<_>>()
            .join("\n");
        let path = Path::new("fuzz.csv");
        for policy in [BadRowPolicy::FailFast, BadRowPolicy::Skip] {
            if let Err(error) = read_dataset_from(text.as_bytes(), path, policy) {
                let message = error.to_string();
                prop_assert!(message.contains("fuzz.csv"), "{message} does not name the file");
            }
        }
    }

    #[test]
    fn experiment_yaml_of_any_content_is_read_or_refused_naming_the_file(
        key in prop_oneof![
            Just("devices: { count: 2 }"),
            Just("replay: { speedup: 300 }"),
            Just("windowing: { size: 1m }"),
            Just("architecture: Streaming"),
        ],
        replacement in prop_oneof![
            "[a-zA-Z0-9:{}, .-]{0,20}",
            Just("devices: { count: -1 }".to_owned()),
            Just("replay: { speedup: .nan }".to_owned()),
            Just("windowing: { size: 0s }".to_owned()),
            Just("architecture: Neither".to_owned()),
        ],
    ) {
        let smoke = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/experiments/smoke.yaml"),
        )
        .unwrap();
        let yaml = smoke.replacen(key, &replacement, 1);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("experiment.yaml");
        std::fs::write(&file, yaml).unwrap();
        if let Err(error) = wattcast_core::experiment::read_experiment(&file) {
            let message = format!("{error:#}");
            prop_assert!(message.contains("experiment.yaml"), "{message} does not name the file");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn model_files_truncated_or_random_are_refused(cut in 0usize..4_000, noise in prop::collection::vec(any::<u8>(), 0..64)) {
        let model = onnx_model();
        let scaler = MinMaxScaler { min: 100.0, max: 900.0 };
        let truncated = &model[..cut.min(model.len().saturating_sub(1))];
        prop_assert!(Forecaster::load(truncated, scaler, 60).is_err(), "a truncated model loads");
        let mut noisy = model.clone();
        noisy.extend(&noise);
        let _ = Forecaster::load(&noisy, scaler, 60);
        prop_assert!(Forecaster::load(&noise, scaler, 60).is_err());
    }

    #[test]
    fn scalers_out_of_order_or_not_finite_are_refused(min in any::<f64>(), max in any::<f64>()) {
        let scaler = MinMaxScaler { min, max };
        let loaded = Forecaster::load(&onnx_model(), scaler, 60);
        prop_assert_eq!(loaded.is_ok(), min.is_finite() && max.is_finite() && min <= max);
        if let Err(error) = loaded {
            prop_assert!(error.to_string().contains("scaler"), "{error}");
        }
    }
}

/// A real model the trainer would make (a few epochs), exported once.
fn onnx_model() -> Vec<u8> {
    static MODEL: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    MODEL
        .get_or_init(|| {
            let series: Vec<f64> = (0..240).map(|i| 700.0 + 100.0 * (i as f64 / 7.0).sin()).collect();
            let recipe = Recipe {
                epochs: 2,
                ..Recipe::default()
            };
            onnx::export(&train(&series, &recipe).expect("trains").weights, 60)
        })
        .clone()
}
