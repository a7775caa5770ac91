//! Snapshot tests of the CLI's output (`tests/cmd/*.md`, run by trycmd):
//! help texts, verdicts and refusals exactly as people read them.

#[test]
fn cli_transcripts() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    trycmd::TestCases::new()
        .env("NODELOCK_TEST_NOW", "2026-06-01")
        .env(
            "NODELOCK_TEST_FACTS",
            fixtures.join("machines/laptop.json").display().to_string(),
        )
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .case("tests/cmd/*.md");
}
