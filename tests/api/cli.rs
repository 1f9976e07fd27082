use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_session-manager");

#[test]
fn export_schema_prints_the_committed_schema() {
    let output = Command::new(BINARY)
        .arg("export-schema")
        .output()
        .expect("binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    assert!(
        String::from_utf8(output.stdout).unwrap() == committed,
        "`session-manager export-schema` differs from schema.graphql"
    );
}

#[test]
fn migrate_and_seed_demo_work_on_a_fresh_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());
    let run = |args: &[&str]| {
        let output = Command::new(BINARY)
            .args(args)
            .current_dir(dir.path())
            .env("DATABASE_URL", &url)
            .output()
            .expect("binary runs");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let status = run(&["migrate", "status"]);
    assert!(status.lines().all(|line| line.starts_with("Pending")), "{status}");
    let up = run(&["migrate", "up"]);
    assert!(up.lines().all(|line| line.starts_with("Applied")), "{up}");
    let down = run(&["migrate", "down", "--all"]);
    assert!(down.lines().all(|line| line.starts_with("Pending")), "{down}");
    let seeded = run(&["seed-demo"]);
    assert!(seeded.contains("admin@demo.example"), "{seeded}");
    assert!(seeded.contains("Demo data created"), "{seeded}");
    let again = run(&["seed-demo"]);
    assert!(again.contains("already present"), "{again}");
}

#[test]
fn an_unknown_config_key_stops_the_binary_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "[server]\nbnid = \"127.0.0.1:1\"\n").unwrap();
    let output = Command::new(BINARY)
        .args(["--config", "bad.toml", "export-schema"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bnid"), "{stderr}");
}
