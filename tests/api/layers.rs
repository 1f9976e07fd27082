//! The layering rules, checked on the source: nothing below the API layer
//! imports it, and the GraphQL domains do not import each other in circles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

fn src(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(relative)
}

#[test]
fn nothing_below_the_api_layer_imports_graphql_or_http() {
    let below = [
        "services",
        "events.rs",
        "jobs.rs",
        "auth",
        "config.rs",
        "state.rs",
        "db.rs",
        "clock.rs",
        "seed.rs",
        "error.rs",
    ];
    let mut offences = Vec::new();
    for part in below {
        for file in rust_files(&src(part)) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (number, line) in text.lines().enumerate() {
                if line.contains("crate::graphql") || line.contains("crate::http") {
                    offences.push(format!("{}:{}: {}", file.display(), number + 1, line.trim()));
                }
            }
        }
    }
    assert!(offences.is_empty(), "upward imports:\n{}", offences.join("\n"));
}

#[test]
fn the_graphql_domains_do_not_import_each_other_in_circles() {
    let root = src("graphql");
    let domains: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|name| name != "mod")
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for domain in &domains {
        let path = if root.join(domain).is_dir() {
            root.join(domain)
        } else {
            root.join(format!("{domain}.rs"))
        };
        for file in rust_files(&path) {
            let text = std::fs::read_to_string(&file).unwrap();
            for other in &domains {
                if other != domain && text.contains(&format!("crate::graphql::{other}")) {
                    edges.entry(domain.clone()).or_default().insert(other.clone());
                }
            }
        }
    }
    // Depth-first search for a path back to where it started.
    fn reaches(
        edges: &BTreeMap<String, BTreeSet<String>>,
        from: &str,
        to: &str,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        edges
            .get(from)
            .into_iter()
            .flatten()
            .any(|next| next == to || (seen.insert(next.clone()) && reaches(edges, next, to, seen)))
    }
    for domain in &domains {
        assert!(
            !reaches(&edges, domain, domain, &mut BTreeSet::new()),
            "`graphql::{domain}` imports itself through {edges:?}"
        );
    }
    assert!(
        edges.contains_key("sessions"),
        "the scan found the imports: {edges:?}"
    );
}

#[test]
fn only_the_unit_of_work_begins_commits_and_wakes() {
    // Besides the unit of work: the migration lock (`db.rs`) and the
    // retention sweep of the log itself (`event_log.rs`), which announce
    // nothing and are no domain write.
    let allowed = ["unit_of_work.rs", "events.rs", "db.rs", "event_log.rs"];
    let mut offences = Vec::new();
    for file in rust_files(&src("")) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if allowed.contains(&name.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (number, line) in code.lines().enumerate() {
            if [".begin()", ".commit()", ".rollback()", ".wake(", "pg_notify"]
                .iter()
                .any(|call| line.contains(call))
            {
                offences.push(format!("{}:{}: {}", file.display(), number + 1, line.trim()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "writes that do not go through unit_of_work::write:\n{}",
        offences.join("\n")
    );
}
