# The `wattcast` image: every workload (setup, sensor, bridge, windower, coordinator, trainer) is
# a subcommand of the one binary. Build from the repository root:
#   docker build -f deploy/wattcast.Dockerfile -t ghcr.io/wattcast/wattcast:0.1.0 .

FROM docker.io/library/rust:1.95-bookworm AS build
# The pulsar crate compiles Pulsar's protobuf definitions.
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY crds crds
COPY operator operator
COPY workloads workloads
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release -p wattcast --bin wattcast \
 && cp target/release/wattcast /wattcast

# glibc and libgcc only; runs as the distroless `nonroot` user (65532), which the operator's pod
# security context also sets.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /wattcast /usr/local/bin/wattcast
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/wattcast"]
