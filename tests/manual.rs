//! The manual page and shell completions come from the same clap model that
//! parses the command line; the page shipped in `docs/man/` is that output.

mod common;

use common::*;

#[test]
fn the_shipped_manual_page_is_what_nodelock_man_prints() {
    let env = Env::new();
    let out = env.run(&["man"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let shipped =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man/nodelock.1"))
            .unwrap();
    assert!(
        stdout(&out) == shipped,
        "docs/man/nodelock.1 is out of date: run `cargo run -- man > docs/man/nodelock.1`"
    );
    for command in ["activate", "request", "import", "check", "vendor", "completions"] {
        assert!(shipped.contains(command), "the page does not name {command}");
    }
    // One page per command, for packagers.
    let dir = env.path("man");
    let out = env.run(&["man", "--out", dir.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(dir.join("nodelock.1").exists());
    assert!(dir.join("nodelock-vendor-entitlement-create.1").exists());
}

#[test]
fn completions_are_printed_for_each_shell_and_bash_parses_them() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = env.run(&["completions", shell]);
        assert_eq!(code(&out), 0, "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(script.contains("activate") && script.contains("store"), "{shell}");
    }
    let out = env.run(&["completions", "tcsh"]);
    assert_eq!(code(&out), 2);
    // The bash script is valid bash.
    let script = env.path("nodelock.bash");
    std::fs::write(&script, env.run(&["completions", "bash"]).stdout).unwrap();
    if let Ok(check) = std::process::Command::new("bash")
        .args(["-n", script.to_str().unwrap()])
        .output()
    {
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}
