//! `wattcast setup` on the real services: topics, schema, bucket and one initial model per
//! device; a second run (a retried setup Job) trains nothing again; the user's own model (a
//! real Keras export, from a directory or the object store) becomes every device's initial
//! model, and one that breaks the contract is refused before anything is made.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use wattcast_core::DeviceId;
use wattcast_core::artifacts::ModelArtifacts;
use wattcast_core::artifacts::object_prefix;
use wattcast_core::topics::{ExperimentNames, Topic};
use wattcast_crds::PipelineExperiment;
use wattcast_io::object_store::ObjectStore;
use wattcast_io::pulsar_admin::PulsarAdmin;
use wattcast_io::store::Store;
use wattcast_model::ModelVersion;
use wattcast_pipeline::setup::{Mounted, SetupError, set_up};

const BUCKET: &str = "wattcast-test-models";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_makes_everything_once() {
    let services = common::services();
    let experiment: PipelineExperiment = serde_yaml::from_str(
        "
apiVersion: wattcast.io/v1alpha1
kind: PipelineExperiment
metadata: { name: setup-test }
spec:
  architecture: Streaming
  devices: { count: 2 }
  dataset: { scenario: InOrder, duration: 12m }
  forecasting: { model: { epochs: 3 } }
",
    )
    .expect("an experiment");
    let names = ExperimentNames::new("setup-test").expect("valid name");
    let admin = PulsarAdmin::new(&services.pulsar).expect("a Pulsar admin client");
    common::reachable("Pulsar admin", admin.delete_experiment(&names).await);
    let store = common::reachable(
        "PostgreSQL",
        Store::connect(&services.postgres, &names.postgres_schema(), 2).await,
    );
    store.drop_schema().await.expect("reset");
    let objects = ObjectStore::new(&services.s3, BUCKET);
    common::reachable("the S3 server", objects.ensure_bucket().await);
    objects.delete_prefix("setup-test/").await.expect("reset");

    let trained = common::reachable(
        "the services",
        set_up(&experiment, &services, BUCKET, Mounted::default()).await,
    );
    assert_eq!(trained, 2);
    for device in [DeviceId(1), DeviceId(2)] {
        let model = store
            .latest_model(device)
            .await
            .expect("query")
            .expect("an initial model");
        assert_eq!(model.version, "initial");
        assert_eq!(model.readings, 600);
        let prefix = object_prefix("setup-test", device, ModelVersion::Initial);
        assert_eq!(model.object_prefix, prefix);
        objects
            .download_model(&prefix)
            .await
            .expect("the model's files are in the bucket");
    }
    wattcast_io::tls::ensure_default_provider();
    let topics: Vec<String> = reqwest::get(format!(
        "{}/admin/v2/persistent/public/setup-test",
        services.pulsar.admin_url
    ))
    .await
    .expect("admin API")
    .json()
    .await
    .expect("a topic list");
    for topic in Topic::ALL {
        assert!(
            topics.contains(&names.pulsar_topic(topic)),
            "{topic} missing from {topics:?}"
        );
    }

    // A retried setup Job: nothing is trained twice, nothing fails.
    assert_eq!(
        set_up(&experiment, &services, BUCKET, Mounted::default())
            .await
            .expect("runs again"),
        0
    );
    objects.delete_prefix("setup-test/").await.expect("clean up");
}

/// The repo's real Keras/tf2onnx export (`make keras-model`).
fn keras_model_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras-lstm")
}

fn own_model_experiment(name: &str, source: &str) -> PipelineExperiment {
    serde_yaml::from_str(&format!(
        "
apiVersion: wattcast.io/v1alpha1
kind: PipelineExperiment
metadata: {{ name: {name} }}
spec:
  architecture: Batching
  devices: {{ count: 2 }}
  dataset: {{ scenario: InOrder, duration: 12m }}
  forecasting: {{ retrain: Never, model: {{ source: {source} }} }}
"
    ))
    .expect("an experiment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_own_model_becomes_every_devices_initial_model() {
    let services = common::services();
    let objects = ObjectStore::new(&services.s3, BUCKET);
    common::reachable("the S3 server", objects.ensure_bucket().await);
    let keras = ModelArtifacts::read_dir(&keras_model_dir()).expect("the Keras fixture");
    objects
        .upload_model("own-models/keras-lstm/", &keras)
        .await
        .expect("uploads the user's model");
    for (name, source, model_dir) in [
        (
            "own-model-dir",
            "{ configMap: { name: keras-lstm } }",
            Some(keras_model_dir()),
        ),
        (
            "own-model-s3",
            &*format!("{{ s3: {{ bucket: {BUCKET}, prefix: own-models/keras-lstm }} }}"),
            None,
        ),
    ] {
        let experiment = own_model_experiment(name, source);
        objects.delete_prefix(&format!("{name}/")).await.expect("reset");
        let names = ExperimentNames::new(name).expect("valid name");
        let store = common::reachable(
            "PostgreSQL",
            Store::connect(&services.postgres, &names.postgres_schema(), 2).await,
        );
        store.drop_schema().await.expect("reset");
        let mounted = Mounted {
            dataset: None,
            model_dir: model_dir.as_deref(),
        };
        let published = set_up(&experiment, &services, BUCKET, mounted)
            .await
            .expect("sets up");
        assert_eq!(published, 2, "{name}");
        for device in [DeviceId(1), DeviceId(2)] {
            let record = store.latest_model(device).await.expect("query").expect("a model");
            assert_eq!(
                (record.version.as_str(), record.readings, record.test_rmse),
                ("initial", 0, None)
            );
            let uploaded = objects
                .download_model(&record.object_prefix)
                .await
                .expect("downloads");
            assert_eq!(
                (uploaded.onnx, uploaded.scaler),
                (keras.onnx.clone(), keras.scaler),
                "{name}"
            );
        }
        objects
            .delete_prefix(&format!("{name}/"))
            .await
            .expect("clean up");
        store.drop_schema().await.expect("clean up");
    }
    objects.delete_prefix("own-models/").await.expect("clean up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_own_model_that_breaks_the_contract_is_refused_before_anything_is_made() {
    let services = common::services();
    let mut experiment = own_model_experiment("own-model-unfit", "{ configMap: { name: keras-lstm } }");
    experiment.spec.forecasting.look_back = 30;
    let names = ExperimentNames::new("own-model-unfit").expect("valid name");
    let store = common::reachable(
        "PostgreSQL",
        Store::connect(&services.postgres, &names.postgres_schema(), 2).await,
    );
    store.drop_schema().await.expect("reset");
    let dir = keras_model_dir();
    let mounted = Mounted {
        dataset: None,
        model_dir: Some(&dir),
    };
    let error = set_up(&experiment, &services, BUCKET, mounted)
        .await
        .expect_err("a 60-step model in a 30-step experiment");
    let SetupError::OwnModel(refusal) = &error else {
        panic!("a model source error, not {error:?}")
    };
    assert!(refusal.is_permanent());
    assert!(error.is_permanent());
    assert_eq!(
        format!("{:#}", anyhow::Error::from(error)),
        format!(
            "spec.forecasting.model.source ({}) does not fit the model contract: model shape: input is [N, 60, 1], expected [N, 30, 1]",
            dir.display()
        )
    );
    let schema_exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1)",
    )
    .bind(names.postgres_schema())
    .fetch_one(store.pool())
    .await
    .expect("query");
    assert!(!schema_exists, "nothing is created before the model is checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_command_stops_on_sigterm_while_it_trains() {
    // 200 devices at the recipe's 200 epochs: minutes of training, so the signal comes mid-way.
    let name = common::unique("setup-stop");
    let names = ExperimentNames::new(&name).expect("valid name");
    let _cleanup = common::Cleanup::experiment(&names);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("experiment.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: wattcast.io/v1alpha1
kind: PipelineExperiment
metadata: {{ name: {name} }}
spec:
  architecture: Streaming
  devices: {{ count: 200 }}
  dataset: {{ scenario: InOrder, duration: 12m }}
"
        ),
    )
    .expect("the experiment file");
    let mut setup = tokio::process::Command::new(env!("CARGO_BIN_EXE_wattcast"))
        .args([
            "setup",
            "--experiment",
            file.to_str().expect("a UTF-8 path"),
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .env("WATTCAST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("wattcast setup starts");

    // Signalled once it has made its first model.
    let services = common::services();
    let models = |store: Store| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM models")
            .fetch_one(store.pool())
            .await
            .unwrap_or(0)
    };
    let store = common::within(120, "PostgreSQL", async {
        loop {
            if let Ok(store) = Store::connect(&services.postgres, &names.postgres_schema(), 1).await
                && models(store.clone()).await > 0
            {
                return store;
            }
            assert!(
                setup.try_wait().expect("the process").is_none(),
                "setup ended before training"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await;
    let pid = setup.id().expect("a running process").to_string();
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(signalled.success());

    let status = tokio::time::timeout(std::time::Duration::from_secs(60), setup.wait())
        .await
        .expect("setup stops on SIGTERM instead of training on")
        .expect("its exit status");
    assert!(!status.success(), "stopped before it was done, so not a success");
    let made = models(store).await;
    assert!(made < 200, "it stopped training: {made} of 200 models made");
}
