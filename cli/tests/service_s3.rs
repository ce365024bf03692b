//! The S3 server is real: put, get and list objects with aws-sdk-s3 (path-style, custom endpoint).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;

fn client(secret_key: &str) -> aws_sdk_s3::Client {
    let services = common::services();
    let config = aws_sdk_s3::Config::builder()
        .endpoint_url(&services.s3.endpoint)
        .region(Region::new(services.s3.region.clone()))
        .credentials_provider(Credentials::new(
            services.s3.access_key.clone(),
            secret_key,
            None,
            None,
            "wattcast-test-env",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

#[tokio::test]
async fn put_get_and_list_objects() {
    let services = common::services();
    let s3 = client(&services.s3.secret_key);
    let bucket = common::unique("smoke").to_lowercase();
    common::reachable(
        "S3",
        common::within(30, "S3", s3.create_bucket().bucket(&bucket).send()).await,
    );

    let body = br#"{"min":600.0,"max":1550.0}"#.to_vec();
    for key in ["exp/1/initial/scaler.json", "exp/2/initial/scaler.json"] {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
    }
    let object = s3
        .get_object()
        .bucket(&bucket)
        .key("exp/1/initial/scaler.json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        object.body.collect().await.unwrap().into_bytes().as_ref(),
        body.as_slice()
    );

    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("exp/")
        .send()
        .await
        .unwrap();
    let mut keys: Vec<&str> = listed
        .contents()
        .iter()
        .filter_map(|object| object.key())
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["exp/1/initial/scaler.json", "exp/2/initial/scaler.json"]);
}

#[tokio::test]
async fn a_wrong_secret_key_is_refused() {
    let s3 = client("not-the-secret-key");
    let outcome = common::within(30, "S3", s3.list_buckets().send()).await;
    match outcome {
        Err(SdkError::ServiceError(refusal)) => {
            assert_eq!(
                refusal.raw().status().as_u16(),
                403,
                "the server refuses the signature"
            );
        }
        Err(other) => panic!("cannot use S3: {other:?}; start the test services with `make test-env`"),
        Ok(_) => panic!("a request signed with the wrong secret key was accepted"),
    }
}
