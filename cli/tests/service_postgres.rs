//! PostgreSQL is real: a round trip through sqlx with password authentication.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

mod common;

use sqlx::postgres::PgPoolOptions;
use std::time::Duration;

#[tokio::test]
async fn round_trip_through_sqlx() {
    let services = common::services();
    let pool = common::reachable(
        "PostgreSQL",
        PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(15))
            .connect(&services.postgres.url)
            .await,
    );
    let mut connection = pool.acquire().await.unwrap();
    sqlx::query(
        "CREATE TEMPORARY TABLE smoke_readings (device integer, at bigint, watts double precision, PRIMARY KEY (device, at))",
    )
    .execute(&mut *connection)
    .await
    .unwrap();
    for _ in 0..2 {
        // Inserting twice changes nothing: the primary key makes redelivery harmless.
        sqlx::query("INSERT INTO smoke_readings VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(3_i32)
            .bind(1_765_152_000_i64)
            .bind(732.8_f64)
            .execute(&mut *connection)
            .await
            .unwrap();
    }
    let rows: Vec<(i32, i64, f64)> = sqlx::query_as("SELECT device, at, watts FROM smoke_readings")
        .fetch_all(&mut *connection)
        .await
        .unwrap();
    assert_eq!(rows, vec![(3, 1_765_152_000, 732.8)]);

    let server_version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut *connection)
        .await
        .unwrap();
    assert!(!server_version.is_empty());
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    let services = common::services();
    let (credentials, address) = services
        .postgres
        .url
        .rsplit_once('@')
        .expect("postgres://user:password@host/db");
    let user = credentials
        .trim_start_matches("postgres://")
        .split(':')
        .next()
        .unwrap();
    let wrong = format!("postgres://{user}:not-the-password@{address}");
    let error = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(15))
        .connect(&wrong)
        .await
        .expect_err("a wrong password must be refused");
    assert!(
        error.to_string().contains("password authentication failed"),
        "expected PostgreSQL to refuse the password, got: {error}; is it running? Start the test services with `make test-env`"
    );
}

/// A test env value that is not a service variable (environment over `test-env/.env`).
fn test_env_value(key: &str) -> String {
    if let Ok(value) = std::env::var(key) {
        return value;
    }
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let file = wattcast_io::services::find_test_env_file(&repo)
        .unwrap_or_else(|| panic!("no test-env/.env; start the test services with `make test-env`"));
    dotenvy::from_path_iter(&file)
        .unwrap()
        .filter_map(Result::ok)
        .find(|(name, _)| name == key)
        .map(|(_, value)| value)
        .unwrap_or_else(|| panic!("{} lacks {key}; re-run `make test-env`", file.display()))
}

/// A pod gets PostgreSQL's URL without credentials and the user and password apart; a password
/// holding `@:/#%?` must still reach the server intact.
#[tokio::test]
async fn a_password_with_url_characters_works_through_the_pod_variables() {
    let services = common::services();
    let user = test_env_value("WATTCAST_TEST_POSTGRES_ENCODED_USERNAME");
    let password = test_env_value("WATTCAST_TEST_POSTGRES_ENCODED_PASSWORD");
    for character in ['@', ':', '/', '#', '%', '?'] {
        assert!(
            password.contains(character),
            "the test password lacks {character}"
        );
    }
    let (_, address) = services
        .postgres
        .url
        .rsplit_once('@')
        .expect("postgres://user:password@host/db");
    let values = std::collections::HashMap::from([
        (
            "WATTCAST_POSTGRES_URL".to_owned(),
            format!("postgres://{address}"),
        ),
        ("WATTCAST_POSTGRES_USERNAME".to_owned(), user.clone()),
        ("WATTCAST_POSTGRES_PASSWORD".to_owned(), password),
    ]);
    let url = wattcast_io::services::ServiceEnv::from_values(values, None)
        .postgres()
        .unwrap()
        .url;
    let pool = common::reachable(
        "PostgreSQL as the percent-encoded user",
        PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(15))
            .connect(&url)
            .await,
    );
    let current: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(current, user);
}
