//! `deploy/e2e.sh`, the heart of `make e2e`, run for real against envtest with the chart installed
//! by helm and the controller running: no kubelet runs here, so the experiment stays in
//! `Provisioning`, and the script must time out, print its diagnostics and exit 1 — and on the
//! way prove its kubectl calls work against a real API server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use common::{KubeconfigFile, helm_install, kubebuilder_assets, start_bare_api_server};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wattcast_operator::controller::{self, Context, Settings};
use wattcast_operator::images::Images;
use wattcast_operator::metrics::Metrics;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_e2e_script_reports_a_run_that_does_not_complete_and_fails() {
    let server = start_bare_api_server().await;
    let kubeconfig = KubeconfigFile::write(&server, "e2e");
    helm_install(&kubeconfig);
    // The CRD needs a moment to be served.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let client = server.client().expect("a client");
    let ctx = Arc::new(Context::new(
        client,
        Images::default(),
        Arc::new(Metrics::default()),
        Settings::default(),
        Some("e2e-test".to_owned()),
    ));
    let shutdown = CancellationToken::new();
    let controller = tokio::spawn(controller::run(ctx, shutdown.clone()));

    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = format!(
        "{}:{}",
        kubebuilder_assets(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = tokio::process::Command::new("bash")
        .arg(repo.join("deploy/e2e.sh"))
        .arg(repo.join("data/experiments/e2e-own-data.yaml"))
        .env("KUBECONFIG", kubeconfig.path())
        .env("PATH", path)
        .env("E2E_TIMEOUT_SECONDS", "12")
        .current_dir(&repo)
        .output()
        .await
        .expect("bash runs the script");
    shutdown.cancel();
    controller.await.unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the script fails a run that does not complete\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("namespace wattcast-e2e enforces Pod Security restricted"),
        "the namespace enforces Pod Security, proven by a refused privileged pod\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("applied"),
        "it applied the experiment\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("phase: Provisioning"),
        "it followed the phases\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("timed out after 12s"),
        "it says it timed out\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("diagnostics for wattcast-e2e/e2e-own-data"),
        "it prints diagnostics\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("kind: PipelineExperiment"),
        "the experiment's YAML is shown\n{stdout}"
    );
    assert!(
        stdout.contains("e2e-own-data-pulsar"),
        "the objects are listed\n{stdout}"
    );
    assert!(
        stdout.contains("--- operator logs"),
        "the operator's logs are asked for\n{stdout}"
    );
}
