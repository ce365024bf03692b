//! `wattcast setup` on the real services: topics, schema, bucket and one initial model per
//! device; a second run (a retried setup Job) trains nothing again.

mod common;

use wattcast::DeviceId;
use wattcast::model::ModelVersion;
use wattcast::model::artifacts::object_prefix;
use wattcast::object_store::ObjectStore;
use wattcast::pulsar_admin::PulsarAdmin;
use wattcast::setup::set_up;
use wattcast::store::Store;
use wattcast::topics::ExperimentNames;
use wattcast_crds::PipelineExperiment;

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

    let trained = common::reachable("the services", set_up(&experiment, &services, BUCKET, None).await);
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
    let topics: Vec<String> = reqwest::get(format!(
        "{}/admin/v2/persistent/public/setup-test",
        services.pulsar.admin_url
    ))
    .await
    .expect("admin API")
    .json()
    .await
    .expect("a topic list");
    for topic in ["readings", "windows", "late", "retrain", "models", "dead-letter"] {
        assert!(
            topics.contains(&names.pulsar_topic(topic)),
            "{topic} missing from {topics:?}"
        );
    }

    // A retried setup Job: nothing is trained twice, nothing fails.
    assert_eq!(
        set_up(&experiment, &services, BUCKET, None)
            .await
            .expect("runs again"),
        0
    );
    objects.delete_prefix("setup-test/").await.expect("clean up");
}
