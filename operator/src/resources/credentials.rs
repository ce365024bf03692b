//! The experiment's generated credentials: one Secret, created once with random values and never
//! rewritten (the controller creates it only when it is absent).

use crate::experiment_ref::{ExperimentRef, Role};
use k8s_openapi::api::core::v1::Secret;
use rand::Rng;
use rand::distr::Alphanumeric;
use std::collections::BTreeMap;

/// The Secret's component name (`<experiment>-credentials`).
pub const COMPONENT: &str = "credentials";
/// Key: the MQTT user.
pub const MQTT_USERNAME: &str = "mqtt-username";
/// Key: the MQTT password.
pub const MQTT_PASSWORD: &str = "mqtt-password";
/// Key: the PostgreSQL user.
pub const POSTGRES_USERNAME: &str = "postgres-username";
/// Key: the PostgreSQL password.
pub const POSTGRES_PASSWORD: &str = "postgres-password";
/// Key: the object store's access key.
pub const S3_ACCESS_KEY: &str = "s3-access-key";
/// Key: the object store's secret key.
pub const S3_SECRET_KEY: &str = "s3-secret-key";

/// Random credentials for the managed services (URL-safe: letters and digits).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    values: BTreeMap<&'static str, String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Credentials {
    /// New random credentials: 32-character passwords and secret key, fixed user names.
    pub fn generate(rng: &mut impl Rng) -> Self {
        let mut random = |length: usize| {
            rng.sample_iter(&Alphanumeric)
                .take(length)
                .map(char::from)
                .collect::<String>()
        };
        let values = BTreeMap::from([
            (MQTT_USERNAME, "wattcast".to_owned()),
            (MQTT_PASSWORD, random(32)),
            (POSTGRES_USERNAME, "wattcast".to_owned()),
            (POSTGRES_PASSWORD, random(32)),
            (S3_ACCESS_KEY, format!("wattcast{}", random(12).to_lowercase())),
            (S3_SECRET_KEY, random(40)),
        ]);
        Self { values }
    }

    /// The Secret holding them.
    pub fn secret(&self, experiment: &ExperimentRef) -> Secret {
        Secret {
            metadata: experiment.metadata(COMPONENT, Role::Infrastructure),
            type_: Some("Opaque".to_owned()),
            string_data: Some(
                self.values
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect(),
            ),
            ..Secret::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_generation_differs_and_stays_out_of_debug_output() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let first = Credentials::generate(&mut rng);
        let second = Credentials::generate(&mut rng);
        assert_ne!(first, second);
        let password = &first.values[MQTT_PASSWORD];
        assert_eq!(password.len(), 32);
        assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(!format!("{first:?}").contains(password.as_str()));
    }
}
