//! Where an experiment's readings come from — generated, or a user's CSV (a local file, a
//! mounted ConfigMap key, an S3 object) — mapped onto the experiment's devices `1..=count`.

use crate::object_store::{ObjectStore, ObjectStoreError};
use crate::services::S3Endpoint;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wattcast_core::dataset::generate::{GenerateOptions, generate_device};
use wattcast_core::dataset::reader::{BadRowPolicy, DatasetError, read_dataset, read_dataset_from};
use wattcast_core::experiment::{self, SpecError};
use wattcast_core::reading::{DeviceId, Reading};
use wattcast_core::recipe::Recipe;
use wattcast_crds::PipelineExperimentSpec;

/// Why an experiment's data cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataSourceError {
    /// The spec's dataset settings are not usable.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The CSV could not be read (names file, line and field).
    #[error(transparent)]
    Csv(#[from] DatasetError),
    /// The S3 object could not be downloaded.
    #[error("downloading the dataset s3://{bucket}/{key}: {source}")]
    Download {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// What the object store said.
        #[source]
        source: ObjectStoreError,
    },
    /// An S3 source without an object store to read it from.
    #[error("spec.dataset.source.s3 needs the experiment's object store (WATTCAST_S3_* is not set)")]
    NoObjectStore,
    /// A ConfigMap source where no mount of it exists.
    #[error(
        "spec.dataset.source.configMap {name}/{key} is mounted into the pods in the cluster; here, save the CSV and pass --dataset FILE"
    )]
    ConfigMapNotMounted {
        /// The ConfigMap.
        name: String,
        /// Its key.
        key: String,
    },
    /// The file has fewer devices than the experiment.
    #[error(
        "{file}: has {found} device(s) (ids {ids}) but spec.devices.count is {wanted}; give the file more devices or lower the count"
    )]
    TooFewDevices {
        /// The file.
        file: String,
        /// Devices in the file.
        found: usize,
        /// Their ids, as the file writes them.
        ids: String,
        /// `spec.devices.count`.
        wanted: u32,
    },
    /// A device has too few readings to train its initial model on.
    #[error(
        "{file}: device {file_id} (the experiment's device {device}) has {readings} reading(s); spec.forecasting.lookBack {look_back} needs at least {needed} (lookBack + 1 in each half of the initial model's data)"
    )]
    TooFewReadings {
        /// The file.
        file: String,
        /// The device id the file uses.
        file_id: u32,
        /// The experiment's device it maps to.
        device: u32,
        /// Its readings.
        readings: usize,
        /// `spec.forecasting.lookBack`.
        look_back: usize,
        /// The fewest that work.
        needed: usize,
    },
}

impl DataSourceError {
    /// Whether the input itself is wrong (as opposed to a service that may come back): a
    /// missing S3 object is, an unreachable object store is not.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Download {
                source: ObjectStoreError::NotFound { .. },
                ..
            } => true,
            Self::Download { .. } | Self::NoObjectStore => false,
            _ => true,
        }
    }
}

/// Where the readings come from, as the spec and the command line say.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// The generator (`dataset.scenario`).
    Generated(GenerateOptions),
    /// A CSV on disk: `--dataset FILE`, or the pod's mount of `dataset.source.configMap`.
    File(PathBuf),
    /// `dataset.source.s3`, in the experiment's object store.
    S3 {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
    },
}

impl DataSource {
    /// The source of `spec`'s data; `file` (a `--dataset` argument or a mount) wins over the spec.
    pub fn of(spec: &PipelineExperimentSpec, file: Option<&Path>) -> Result<Self, DataSourceError> {
        if let Some(file) = file {
            return Ok(Self::File(file.to_owned()));
        }
        match &spec.dataset.source {
            None => Ok(Self::Generated(experiment::generate_options(spec)?)),
            Some(source) => match (&source.s3, &source.config_map) {
                (Some(object), _) => Ok(Self::S3 {
                    bucket: object.bucket.clone(),
                    key: object.key.clone(),
                }),
                (None, Some(map)) => Err(DataSourceError::ConfigMapNotMounted {
                    name: map.name.clone(),
                    key: map.key.clone(),
                }),
                (None, None) => Err(SpecError::Field {
                    field: "dataset.source",
                    problem: "set one of configMap and s3".to_owned(),
                }
                .into()),
            },
        }
    }

    /// Every device's readings in arrival order, device by device (`1..=count`), checked
    /// against the spec: enough devices, and enough readings for each to train on.
    pub async fn load(
        &self,
        spec: &PipelineExperimentSpec,
        s3: Option<&S3Endpoint>,
    ) -> Result<Vec<(DeviceId, Vec<Reading>)>, DataSourceError> {
        self.load_slice(spec, s3, 1..=spec.devices.count).await
    }

    /// [`DataSource::load`] for the devices of `slice` only (a sensor pod's share: generated
    /// data is made for those devices alone; a file is still checked as a whole).
    pub async fn load_slice(
        &self,
        spec: &PipelineExperimentSpec,
        s3: Option<&S3Endpoint>,
        slice: std::ops::RangeInclusive<u32>,
    ) -> Result<Vec<(DeviceId, Vec<Reading>)>, DataSourceError> {
        self.load_slice_as(spec, s3, slice, |device, readings| (device, readings))
            .await
    }

    /// [`DataSource::load_slice`], each device's readings handed to `keep` as soon as they are
    /// there and kept as what it returns (a sensor keeps them compact). Generated data is made
    /// one device at a time, so only one device's readings exist as [`Reading`]s at once; a
    /// file is read whole first.
    pub async fn load_slice_as<T>(
        &self,
        spec: &PipelineExperimentSpec,
        s3: Option<&S3Endpoint>,
        slice: std::ops::RangeInclusive<u32>,
        mut keep: impl FnMut(DeviceId, Vec<Reading>) -> T,
    ) -> Result<Vec<T>, DataSourceError> {
        let count = spec.devices.count;
        let (file, readings) = match self {
            Self::Generated(options) => {
                return Ok(slice
                    .filter(|id| (1..=count).contains(id))
                    .map(|id| keep(DeviceId(id), generate_device(options, DeviceId(id)).readings))
                    .collect());
            }
            Self::File(path) => (
                path.display().to_string(),
                read_dataset(path, BadRowPolicy::FailFast)?.readings,
            ),
            Self::S3 { bucket, key } => {
                let endpoint = s3.ok_or(DataSourceError::NoObjectStore)?;
                let bytes = ObjectStore::new(endpoint, bucket)
                    .get(key)
                    .await
                    .map_err(|source| DataSourceError::Download {
                        bucket: bucket.clone(),
                        key: key.clone(),
                        source,
                    })?;
                let name = format!("s3://{bucket}/{key}");
                let dataset = read_dataset_from(bytes.as_slice(), Path::new(&name), BadRowPolicy::FailFast)?;
                (name, dataset.readings)
            }
        };
        let recipe = Recipe::from_spec(&spec.forecasting);
        let mapped = map_devices(readings, &file, count, recipe.look_back, recipe.min_readings())?;
        Ok(mapped
            .into_iter()
            .filter(|(device, _)| slice.contains(&device.0))
            .map(|(device, readings)| keep(device, readings))
            .collect())
    }
}

/// Maps a file's devices onto the experiment's: the file's smallest device id becomes device
/// 1, the next device 2, and so on; devices beyond `count` are left out. Each reading keeps its
/// place in the file (arrival order) and its event time.
pub fn map_devices(
    readings: Vec<Reading>,
    file: &str,
    count: u32,
    look_back: usize,
    needed: usize,
) -> Result<Vec<(DeviceId, Vec<Reading>)>, DataSourceError> {
    let mut by_file_id: BTreeMap<DeviceId, Vec<Reading>> = BTreeMap::new();
    for reading in readings {
        by_file_id.entry(reading.device).or_default().push(reading);
    }
    if by_file_id.len() < count as usize {
        let ids: Vec<String> = by_file_id.keys().map(|id| id.0.to_string()).collect();
        return Err(DataSourceError::TooFewDevices {
            file: file.to_owned(),
            found: by_file_id.len(),
            ids: if ids.is_empty() {
                "none".to_owned()
            } else {
                ids.join(", ")
            },
            wanted: count,
        });
    }
    by_file_id
        .into_iter()
        .take(count as usize)
        .zip(1..)
        .map(|((file_id, mut readings), device)| {
            if readings.len() < needed {
                return Err(DataSourceError::TooFewReadings {
                    file: file.to_owned(),
                    file_id: file_id.0,
                    device,
                    readings: readings.len(),
                    look_back,
                    needed,
                });
            }
            for reading in &mut readings {
                reading.device = DeviceId(device);
            }
            Ok((DeviceId(device), readings))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readings(device: u32, count: i64) -> Vec<Reading> {
        (0..count)
            .map(|offset| Reading::new(DeviceId(device), 1_765_152_000 + offset, 500.0 + offset as f64))
            .collect()
    }

    #[test]
    fn the_files_devices_become_the_experiments_in_id_order() {
        let mut file = readings(7, 130);
        file.extend(readings(3, 130));
        file.extend(readings(9, 130));
        let mapped = map_devices(file, "lab.csv", 2, 60, 122).unwrap();
        let ids: Vec<u32> = mapped.iter().map(|(device, _)| device.0).collect();
        assert_eq!(ids, [1, 2]);
        // Device 1 is the file's device 3, device 2 its device 7; device 9 is left out.
        assert!(
            mapped
                .iter()
                .all(|(device, rows)| rows.iter().all(|r| r.device == *device))
        );
        assert_eq!(mapped[0].1[0].event_time, 1_765_152_000);
    }

    #[test]
    fn too_few_devices_name_the_file_and_the_ids() {
        let mut file = readings(2, 130);
        file.extend(readings(4, 130));
        let error = map_devices(file, "cm/lab:data.csv", 5, 60, 122).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cm/lab:data.csv: has 2 device(s) (ids 2, 4) but spec.devices.count is 5; give the file more devices or lower the count"
        );
    }

    #[test]
    fn a_device_with_too_few_readings_is_named() {
        let mut file = readings(2, 130);
        file.extend(readings(4, 50));
        let error = map_devices(file, "lab.csv", 2, 60, 122).unwrap_err();
        assert_eq!(
            error.to_string(),
            "lab.csv: device 4 (the experiment's device 2) has 50 reading(s); spec.forecasting.lookBack 60 needs at least 122 (lookBack + 1 in each half of the initial model's data)"
        );
    }
}
