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

/// Runs the binary on `url` with `stdin`; the status, stdout and stderr.
fn run_with_input(dir: &std::path::Path, url: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = Command::new(BINARY)
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_fresh_install_gets_its_first_super_admin_from_the_command_line() {
    use entity::{audit_log, user};
    use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("admin.db").display());
    let create = ["create-admin", "--email", "Root@Example.org", "--name", "Root"];

    let (ok, _, stderr) = run_with_input(dir.path(), &url, &create, "password1\n");
    assert!(!ok, "a common password is refused");
    assert!(stderr.contains("most common"), "{stderr}");
    let (ok, _, stderr) = run_with_input(dir.path(), &url, &create, "");
    assert!(!ok && stderr.contains("standard input"), "{stderr}");

    let (ok, stdout, stderr) = run_with_input(dir.path(), &url, &create, "a long and unusual one\n");
    assert!(ok, "{stderr}");
    assert!(stdout.contains("root@example.org"), "{stdout}");
    let (ok, _, stderr) = run_with_input(dir.path(), &url, &create, "a long and unusual one\n");
    assert!(!ok && stderr.contains("promote"), "an existing address: {stderr}");

    // The last super admin cannot be demoted; a promoted second one can.
    let (ok, _, stderr) = run_with_input(dir.path(), &url, &["demote", "--email", "root@example.org"], "");
    assert!(!ok && stderr.contains("last super admin"), "{stderr}");
    let db = Database::connect(&url).await.unwrap();
    let root = user::Entity::find()
        .filter(user::Column::Email.eq("root@example.org"))
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert!(root.is_super_admin);
    assert_eq!(root.name.as_deref(), Some("Root"));
    assert!(session_manager::services::passwords::verify_password(
        "a long and unusual one",
        &root.password_hash
    ));
    let second = user::ActiveModel {
        email: sea_orm::Set("second@example.org".to_owned()),
        password_hash: sea_orm::Set(root.password_hash.clone()),
        ..Default::default()
    };
    sea_orm::ActiveModelTrait::insert(second, &db).await.unwrap();
    let (ok, stdout, stderr) = run_with_input(
        dir.path(),
        &url,
        &["promote", "--email", "second@example.org"],
        "",
    );
    assert!(ok && stdout.contains("is now"), "{stderr}");
    let (ok, stdout, stderr) =
        run_with_input(dir.path(), &url, &["demote", "--email", "root@example.org"], "");
    assert!(ok && stdout.contains("is no longer"), "{stderr}");
    let (ok, _, stderr) = run_with_input(
        dir.path(),
        &url,
        &["promote", "--email", "nobody@example.org"],
        "",
    );
    assert!(!ok && stderr.contains("no account"), "{stderr}");

    let (ok, stdout, stderr) =
        run_with_input(dir.path(), &url, &["unlock", "--email", "root@example.org"], "");
    assert!(ok && stdout.contains("nothing was locked"), "{stderr}");

    let actions: Vec<String> = audit_log::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.action)
        .collect();
    assert_eq!(
        actions,
        [
            "CreateSuperAdmin",
            "PromoteSuperAdmin",
            "DemoteSuperAdmin",
            "UnlockLogin"
        ]
    );
    db.close().await.unwrap();
}
