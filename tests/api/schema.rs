use pretty_assertions::assert_eq;

#[test]
fn schema_graphql_matches_the_generated_sdl() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql exists");
    let generated = session_manager::graphql::sdl();
    assert_eq!(
        committed, generated,
        "schema.graphql is stale: run `cargo run -- export-schema > schema.graphql`"
    );
}
