//! `crdgen`: prints the PipelineExperiment CustomResourceDefinition as YAML, or with
//! `reference` the resource's reference page as Markdown (`make crd` writes both:
//! `crds/pipelineexperiment.yaml` and `docs/reference.md`).

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        None => print!(
            "{}",
            wattcast_crds::crd_yaml().context("rendering the CRD as YAML")?
        ),
        Some("reference") => print!(
            "{}",
            wattcast_crds::reference_markdown().context("rendering the reference page")?
        ),
        Some(other) => {
            anyhow::bail!("crdgen: unknown argument `{other}`; give none (the CRD) or `reference`")
        }
    }
    Ok(())
}
