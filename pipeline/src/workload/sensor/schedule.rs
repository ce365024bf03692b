//! A sensor's replay schedule: every publication in time order, made when it is next rather than
//! held in a list, so that a sensor's memory is its data and not a copy of it per publication.

use super::SensorMode;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;
use wattcast_core::reading::{DeviceId, Reading};
use wattcast_core::topics::ExperimentNames;
use wattcast_core::window::Window;
use wattcast_core::wire::{EndOfStream, Sequence, SequencedReading, WindowMessage};

/// Every device's publications, due in the order a stable sort by due time would put them: by
/// due time, then by device (in the sensor's order), then in the device's own order.
pub(super) struct Schedule {
    devices: Vec<DeviceSchedule>,
    total: u64,
}

/// One device's publications: its data (one message per reading, or one batch per minute), then
/// its end-of-stream marker, due with its last data.
struct DeviceSchedule {
    device: DeviceId,
    topic: String,
    start: Duration,
    speedup: f64,
    /// File order (Streaming), or sorted by event time with one reading per second (Batching).
    readings: Vec<Sample>,
    /// Batching: each minute's first reading in `readings` and its due time (empty when Streaming).
    minutes: Vec<(usize, Duration)>,
    mode: SensorMode,
}

/// One device's readings as a sensor holds them for its replay: 16 bytes each (see [`Sample`]),
/// in the order it sends them — arrival (file) order when Streaming; by event time, the first of
/// each second, when Batching.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceReplay {
    device: DeviceId,
    samples: Vec<Sample>,
}

impl DeviceReplay {
    /// `device`'s `readings` (arrival order), prepared for `mode`; the readings are freed.
    pub fn new(mode: SensorMode, device: DeviceId, mut readings: Vec<Reading>) -> Self {
        if mode == SensorMode::Batching {
            readings.sort_by_key(|reading| reading.event_time);
            readings.dedup_by_key(|reading| reading.event_time);
        }
        // Held for the whole replay: compact, and no spare capacity from how the data was built.
        let samples: Vec<Sample> = readings.iter().map(Sample::of).collect();
        Self { device, samples }
    }

    /// The device.
    pub fn device(&self) -> DeviceId {
        self.device
    }
}

/// A reading as a device's schedule holds it for the whole replay: its device is the schedule's
/// and its publish stamp is set when it is sent, so only these two are kept — 16 bytes, where a
/// [`Reading`] takes 40.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    event_time: i64,
    power_w: f64,
}

impl Sample {
    fn of(reading: &Reading) -> Self {
        Self {
            event_time: reading.event_time,
            power_w: reading.power_w,
        }
    }

    fn reading(self, device: DeviceId, published_ms: i64) -> Reading {
        Reading {
            device,
            event_time: self.event_time,
            power_w: self.power_w,
            published_ms: Some(published_ms),
        }
    }
}

/// One publication: when, whose (the device's index in the sensor), and which of the device's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Step {
    /// Replay time it is due at.
    pub due: Duration,
    device: usize,
    step: usize,
}

/// A position in a [`Schedule`]: the next publication and how many came before it.
pub(super) struct Cursor<'a> {
    schedule: &'a Schedule,
    heap: BinaryHeap<Reverse<Step>>,
    index: u64,
}

impl Schedule {
    /// The schedule of `devices` (each device's readings in arrival order). Streaming: row k of
    /// a device is due at `start(device) + k / speedup` seconds, where a device's start is its
    /// ramp-up delay plus its phase within the second (device i of n at i/n s). Batching: a
    /// device's minute is due when the minute has been replayed, holding every reading of that
    /// minute (sorted, the first of each second), whatever its arrival order.
    pub fn new(
        mode: SensorMode,
        names: &ExperimentNames,
        devices: Vec<DeviceReplay>,
        speedup: f64,
        ramp_up: Option<Duration>,
    ) -> Self {
        let count = devices.len().max(1) as f64;
        let devices: Vec<DeviceSchedule> = devices
            .into_iter()
            .enumerate()
            .map(
                |(
                    index,
                    DeviceReplay {
                        device,
                        samples: readings,
                    },
                )| {
                    // Devices are not synchronised: each sends at its own phase within the second.
                    let phase = Duration::from_secs_f64(index as f64 / count / speedup);
                    let start = ramp_up.unwrap_or_default().mul_f64(index as f64).div_f64(speedup) + phase;
                    let topic = match mode {
                        SensorMode::Streaming => names.mqtt_readings(device),
                        SensorMode::Batching => names.mqtt_batches(device),
                    };
                    let minutes = match mode {
                        SensorMode::Streaming => Vec::new(),
                        SensorMode::Batching => minutes_of(&readings, start, speedup),
                    };
                    DeviceSchedule {
                        device,
                        topic,
                        start,
                        speedup,
                        readings,
                        minutes,
                        mode,
                    }
                },
            )
            .collect();
        let total = devices.iter().map(|device| device.data_steps() as u64 + 1).sum();
        Self { devices, total }
    }

    /// How many publications the replay makes.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Readings sent, per device, once the replay is done.
    pub fn readings_sent(&self) -> BTreeMap<DeviceId, u64> {
        self.devices
            .iter()
            .map(|device| (device.device, device.readings.len() as u64))
            .collect()
    }

    /// How many publications are due before `at`.
    pub fn count_before(&self, at: Duration) -> u64 {
        self.devices
            .iter()
            .map(|device| device.steps_before(at) as u64)
            .sum()
    }

    /// The position before publication `index` (the end, past the last).
    pub fn cursor_at(&self, index: u64) -> Cursor<'_> {
        if index >= self.total {
            return Cursor {
                schedule: self,
                heap: BinaryHeap::new(),
                index: self.total,
            };
        }
        // The latest time with at most `index` publications before it is the due time of
        // publication `index`; from there, only the publications due at that same time remain.
        let (mut low, mut high) = (0_u128, self.last_due().as_nanos() + 1);
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            if self.count_before(nanos(middle)) <= index {
                low = middle;
            } else {
                high = middle;
            }
        }
        let mut cursor = self.cursor_at_time(nanos(low));
        while cursor.index < index {
            cursor.advance();
        }
        cursor
    }

    /// The position before the first publication due at `at` or later.
    fn cursor_at_time(&self, at: Duration) -> Cursor<'_> {
        let mut index = 0;
        let mut heap = BinaryHeap::with_capacity(self.devices.len());
        for (device, schedule) in self.devices.iter().enumerate() {
            let step = schedule.steps_before(at);
            index += step as u64;
            if step <= schedule.data_steps() {
                heap.push(Reverse(Step {
                    due: schedule.due(step),
                    device,
                    step,
                }));
            }
        }
        Cursor {
            schedule: self,
            heap,
            index,
        }
    }

    fn last_due(&self) -> Duration {
        self.devices
            .iter()
            .map(|device| device.due(device.data_steps()))
            .max()
            .unwrap_or_default()
    }

    /// The MQTT topic of a publication.
    pub fn topic(&self, step: Step) -> &str {
        &self.devices[step.device].topic
    }

    /// A publication's JSON, stamped with `published_ms`; an end-of-stream marker carries the
    /// device's readings.
    pub fn payload(&self, step: Step, published_ms: i64) -> Result<Vec<u8>, serde_json::Error> {
        let device = &self.devices[step.device];
        if step.step == device.data_steps() {
            return serde_json::to_vec(&EndOfStream {
                sensor_id: device.device,
                end_of_stream: true,
                readings_sent: device.readings.len() as u64,
                message_creation_time: published_ms,
            });
        }
        match device.mode {
            SensorMode::Streaming => {
                let reading = device.readings[step.step].reading(device.device, published_ms);
                serde_json::to_vec(&SequencedReading {
                    reading: &reading,
                    seq: Sequence(step.step as u64),
                })
            }
            SensorMode::Batching => serde_json::to_vec(&WindowMessage {
                window: device.batch(step.step, published_ms),
                emitted_ms: published_ms,
            }),
        }
    }
}

impl DeviceSchedule {
    /// Data publications (the marker is the one after them).
    fn data_steps(&self) -> usize {
        match self.mode {
            SensorMode::Streaming => self.readings.len(),
            SensorMode::Batching => self.minutes.len(),
        }
    }

    /// When publication `step` is due; the marker with the last data (or at the start).
    fn due(&self, step: usize) -> Duration {
        let data = if step < self.data_steps() {
            step
        } else {
            match self.data_steps().checked_sub(1) {
                Some(last) => last,
                None => return self.start,
            }
        };
        match self.mode {
            SensorMode::Streaming => self.start + Duration::from_secs_f64(data as f64 / self.speedup),
            SensorMode::Batching => self.minutes[data].1,
        }
    }

    /// How many of its publications are due before `at` (their due times never decrease).
    fn steps_before(&self, at: Duration) -> usize {
        let (mut low, mut high) = (0, self.data_steps() + 1);
        while low < high {
            let middle = low + (high - low) / 2;
            if self.due(middle) < at {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low
    }

    /// Batch `minute`, stamped with `published_ms`.
    fn batch(&self, minute: usize, published_ms: i64) -> Window {
        let first = self.minutes[minute].0;
        let end = self
            .minutes
            .get(minute + 1)
            .map_or(self.readings.len(), |next| next.0);
        let start = self.readings[first].event_time.div_euclid(60) * 60;
        Window {
            device: self.device,
            start,
            end: start + 60,
            readings: self.readings[first..end]
                .iter()
                .map(|sample| sample.reading(self.device, published_ms))
                .collect(),
            expected: 60,
            late: 0,
        }
    }
}

/// Each minute of sorted `readings`: its first reading and when it is due (once it has been
/// replayed, counted from the device's first minute).
fn minutes_of(readings: &[Sample], start: Duration, speedup: f64) -> Vec<(usize, Duration)> {
    let minute_of = |reading: &Sample| reading.event_time.div_euclid(60) * 60;
    let Some(first) = readings.first().map(minute_of) else {
        return Vec::new();
    };
    let mut minutes: Vec<(usize, Duration)> = Vec::new();
    for (index, reading) in readings.iter().enumerate() {
        let minute = minute_of(reading);
        if index == 0 || minute != minute_of(&readings[index - 1]) {
            let elapsed = (minute - first + 60) as f64;
            minutes.push((index, start + Duration::from_secs_f64(elapsed / speedup)));
        }
    }
    minutes
}

fn nanos(nanos: u128) -> Duration {
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

impl Cursor<'_> {
    /// The next publication, if any is left.
    pub fn peek(&self) -> Option<Step> {
        self.heap.peek().map(|Reverse(step)| *step)
    }

    /// How many publications come before the next.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Moves past the next publication.
    pub fn advance(&mut self) {
        let Some(Reverse(step)) = self.heap.pop() else {
            return;
        };
        self.index += 1;
        let device = &self.schedule.devices[step.device];
        let next = step.step + 1;
        if next <= device.data_steps() {
            self.heap.push(Reverse(Step {
                due: device.due(next),
                device: step.device,
                step: next,
            }));
        }
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, reason = "small test indices")]
mod tests {
    use super::*;

    #[test]
    fn a_held_reading_takes_16_bytes_and_comes_back_whole() {
        assert_eq!(std::mem::size_of::<Sample>(), 16);
        assert_eq!(
            std::mem::size_of::<Reading>(),
            40,
            "what the schedule no longer holds"
        );
        let reading = Reading {
            device: DeviceId(7),
            event_time: 1_765_152_003,
            power_w: 695.3,
            published_ms: None,
        };
        let back = Sample::of(&reading).reading(DeviceId(7), 12);
        assert_eq!(
            back,
            Reading {
                published_ms: Some(12),
                ..reading
            }
        );
    }
    use proptest::prelude::*;

    fn readings(mode: SensorMode, device: u32, times: &[i64]) -> DeviceReplay {
        let readings = times.iter().map(|t| Reading::new(DeviceId(device), *t, 1.0));
        DeviceReplay::new(mode, DeviceId(device), readings.collect())
    }

    fn schedule(mode: SensorMode, ramp_up: Option<Duration>) -> Schedule {
        let devices = vec![readings(mode, 1, &[0, 2, 1, 61, 60]), readings(mode, 2, &[0, 1])];
        Schedule::new(
            mode,
            &ExperimentNames::new("plan").unwrap(),
            devices,
            2.0,
            ramp_up,
        )
    }

    /// Every publication from the start: its due time, topic and JSON (published at 0).
    fn all(schedule: &Schedule) -> Vec<(Duration, String, serde_json::Value)> {
        let mut cursor = schedule.cursor_at(0);
        let mut out = Vec::new();
        while let Some(step) = cursor.peek() {
            let json = serde_json::from_slice(&schedule.payload(step, 0).unwrap()).unwrap();
            out.push((step.due, schedule.topic(step).to_owned(), json));
            cursor.advance();
        }
        out
    }

    fn is_marker(json: &serde_json::Value) -> bool {
        json.get("end_of_stream").is_some()
    }

    #[test]
    fn streaming_sends_each_row_in_file_order_at_the_speedup() {
        let plan = all(&schedule(SensorMode::Streaming, Some(Duration::from_secs(10))));
        let device_1: Vec<(Duration, i64, u64)> = plan
            .iter()
            .filter(|(_, topic, json)| topic.ends_with("/1") && !is_marker(json))
            .map(|(due, _, json)| {
                let time = json["sensor_timestamp"].as_i64().unwrap();
                (*due, time, json["seq"].as_u64().unwrap())
            })
            .collect();
        let times: Vec<i64> = device_1.iter().map(|(_, time, _)| *time).collect();
        assert_eq!(times, [0, 2, 1, 61, 60]);
        let sequence: Vec<u64> = device_1.iter().map(|(_, _, seq)| *seq).collect();
        assert_eq!(sequence, [0, 1, 2, 3, 4]);
        assert_eq!(device_1[4].0, Duration::from_secs(2));
        // Device 2 starts ramp_up / speedup = 5 s later, at its own phase (half a second / speedup).
        let first_of_2 = plan.iter().find(|(_, topic, _)| topic.ends_with("/2")).unwrap();
        assert_eq!(first_of_2.0, Duration::from_secs(5) + Duration::from_millis(250));
    }

    #[test]
    fn batching_sends_each_minute_complete_and_sorted_when_it_ends() {
        let plan = all(&schedule(SensorMode::Batching, None));
        let batches: Vec<(Duration, u64, i64, Vec<i64>)> = plan
            .iter()
            .filter(|(_, _, json)| !is_marker(json))
            .map(|(due, _, json)| {
                let times = json["readings"].as_array().unwrap().iter();
                (
                    *due,
                    json["device"].as_u64().unwrap(),
                    json["start"].as_i64().unwrap(),
                    times.map(|r| r["sensor_timestamp"].as_i64().unwrap()).collect(),
                )
            })
            .collect();
        assert_eq!(
            batches,
            vec![
                (Duration::from_secs(30), 1, 0, vec![0, 1, 2]),
                (Duration::from_millis(30_250), 2, 0, vec![0, 1]),
                (Duration::from_secs(60), 1, 60, vec![60, 61]),
            ]
        );
    }

    #[test]
    fn each_device_ends_right_after_its_own_last_publication() {
        // Streaming: device 1's data ends at 2 s, before device 2 starts (ramp-up). Batching:
        // device 1's second minute is due at 60 s, after device 2's only minute.
        for (mode, order) in [(SensorMode::Streaming, [1, 2]), (SensorMode::Batching, [2, 1])] {
            let schedule = schedule(mode, Some(Duration::from_secs(10)));
            let plan = all(&schedule);
            for device in [1_u64, 2] {
                let of_device: Vec<_> = plan
                    .iter()
                    .filter(|(_, topic, _)| topic.ends_with(&format!("/{device}")))
                    .collect();
                let (due, _, last) = of_device.last().expect("the device publishes");
                assert_eq!(last["sensor_id"].as_u64(), Some(device));
                assert!(is_marker(last));
                let data_end = of_device[..of_device.len() - 1].iter().map(|p| p.0).max();
                assert_eq!(Some(*due), data_end, "device {device} ends with its data");
                assert_eq!(of_device.iter().filter(|p| is_marker(&p.2)).count(), 1);
            }
            let markers: Vec<u64> = plan
                .iter()
                .filter(|(_, _, json)| is_marker(json))
                .map(|(_, _, json)| json["sensor_id"].as_u64().unwrap())
                .collect();
            assert_eq!(markers, order);
            assert_eq!(plan.len() as u64, schedule.total());
        }
    }

    /// The order a stable sort by due time gives the publications listed device by device.
    fn sorted_by_due(schedule: &Schedule) -> Vec<Step> {
        let mut steps: Vec<Step> = (0..schedule.devices.len())
            .flat_map(|device| {
                let of = &schedule.devices[device];
                (0..=of.data_steps()).map(move |step| Step {
                    due: of.due(step),
                    device,
                    step,
                })
            })
            .collect();
        steps.sort_by_key(|step| step.due);
        steps
    }

    proptest! {
        /// Wherever a replay resumes (by index, or by time after a broken connection), it goes
        /// on exactly as the whole schedule, sorted, goes on from there.
        #[test]
        fn a_cursor_anywhere_continues_the_sorted_schedule(
            devices in proptest::collection::vec(proptest::collection::vec(0_i64..200, 0..12), 1..6),
            batching in any::<bool>(),
            speedup in prop_oneof![Just(1.0), Just(3.0), Just(60.0)],
            ramp_up_s in 0_u64..3,
            at in 0_u64..60_000,
        ) {
            let mode = if batching { SensorMode::Batching } else { SensorMode::Streaming };
            let devices: Vec<_> = devices
                .iter()
                .enumerate()
                .map(|(index, times)| readings(mode, index as u32 + 1, times))
                .collect();
            let ramp_up = Some(Duration::from_secs(ramp_up_s));
            let names = ExperimentNames::new("plan").unwrap();
            let schedule = Schedule::new(mode, &names, devices, speedup, ramp_up);
            let sorted = sorted_by_due(&schedule);
            prop_assert_eq!(sorted.len() as u64, schedule.total());
            for index in 0..=schedule.total() {
                let mut cursor = schedule.cursor_at(index);
                prop_assert_eq!(cursor.index(), index);
                let mut rest = Vec::new();
                while let Some(step) = cursor.peek() {
                    rest.push(step);
                    cursor.advance();
                }
                prop_assert_eq!(&rest[..], &sorted[index as usize..]);
            }
            let at = Duration::from_millis(at);
            let before = sorted.partition_point(|step| step.due < at) as u64;
            prop_assert_eq!(schedule.count_before(at), before);
        }
    }
}
