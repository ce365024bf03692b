//! `crdgen`: prints the PipelineExperiment CustomResourceDefinition as YAML (`make crd` writes it
//! to `crds/pipelineexperiment.yaml`).

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let yaml = wattcast_crds::crd_yaml().context("rendering the CRD as YAML")?;
    print!("{yaml}");
    Ok(())
}
