//! `heartbeat config check` through the real binary: the example file is valid, flags beat
//! the environment which beats the file, and an unknown key fails naming the key.

use std::process::Command;

fn check(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_heartbeat"));
    command.args(["config", "check"]).args(args);
    for name in [
        "PORT",
        "DATABASE_URL",
        "RABBITMQ_URL",
        "REDIS_URL",
        "HEARTBEAT_CONFIG",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn config_check_validates_and_prints_the_effective_settings() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../heartbeat.example.toml");
    let (ok, out, err) = check(&["--config", example], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("listen = \"127.0.0.1:3000\""), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hb.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"0.0.0.0:8080\"\nmax_body_bytes = 100\n[store]\nmemory_limit = \"1GB\"\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let (ok, out, err) = check(
        &["--max-body-bytes", "300"],
        &[
            ("HEARTBEAT_CONFIG", file),
            ("HEARTBEAT_MAX_BODY_BYTES", "200"),
            ("HEARTBEAT_STORE_MEMORY_LIMIT", "2GB"),
            ("PORT", "9999"),
            ("RABBITMQ_URL", "amqp://heartbeat:s3cret@rabbitmq:5672"),
            ("REDIS_URL", "redis://:s3cret@redis:6379"),
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("listen = \"0.0.0.0:9999\""), "{out}");
    assert!(out.contains("max_body_bytes = 300"), "{out}");
    assert!(out.contains("memory_limit = \"2GB\""), "{out}");
    // The seeds' broker becomes the queue and their Redis the cache, passwords withheld.
    assert!(out.contains("engine = \"amqp\""), "{out}");
    assert!(
        out.contains("url = \"amqp://heartbeat:***@rabbitmq:5672\""),
        "{out}"
    );
    assert!(out.contains("engine = \"redis\""), "{out}");
    assert!(out.contains("url = \"redis://:***@redis:6379\""), "{out}");
    assert!(!out.contains("s3cret"), "{out}");

    std::fs::write(dir.path().join("bad.toml"), "[server]\nport = 3000\n").unwrap();
    let bad = dir.path().join("bad.toml");
    let (ok, _, err) = check(&["--config", bad.to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(err.contains("unknown field `port`"), "{err}");
    assert!(err.contains("line 2"), "{err}");
}
