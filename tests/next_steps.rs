//! Every next step the CLI prints on its fallback and error paths is a
//! command someone will paste: each one is taken from the output here and
//! run as printed, with only the file it names (`LICENSE-FILE`, `FILE`,
//! `RECEIPT-FILE`, `VENDOR-KEY-FILE`) filled in.

mod common;

use common::desk::*;
use common::*;

/// The `nodelock …` commands in `text`, split into words as a POSIX shell
/// would (single quotes only; that is all the CLI prints).
fn commands_in(text: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(at) = rest.find("nodelock ") {
            let tail = &rest[at..];
            let end = tail.find('`').unwrap_or(tail.len());
            found.push(words(&tail[..end]));
            rest = &tail[end..];
            rest = rest.get(1..).unwrap_or_default();
        }
    }
    found
}

fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in command.trim().chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    out.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(word);
    }
    out
}

/// The one printed command that starts with `nodelock {verb}`.
fn printed(out: &std::process::Output, verb: &str) -> Vec<String> {
    printed_in(&format!("{}\n{}", stdout(out), stderr(out)), verb)
}

fn printed_in(text: &str, verb: &str) -> Vec<String> {
    let mut matching: Vec<_> = commands_in(text)
        .into_iter()
        .filter(|c| c.get(1).map(String::as_str) == Some(verb))
        .collect();
    assert_eq!(matching.len(), 1, "one `nodelock {verb}` step in:\n{text}");
    matching.remove(0)
}

/// Runs a printed command on `env`'s machine, with placeholders filled in.
fn run_printed(env: &Env, command: &[String], fill: &[(&str, &std::path::Path)]) -> std::process::Output {
    assert_eq!(command[0], "nodelock");
    let args: Vec<String> = command[1..]
        .iter()
        .map(|w| {
            fill.iter()
                .find(|(placeholder, _)| w == placeholder)
                .map_or_else(|| w.clone(), |(_, path)| path.display().to_string())
        })
        .collect();
    for w in &args {
        assert!(
            !w.chars().all(|c| c.is_ascii_uppercase() || c == '-') || w.len() < 4,
            "placeholder {w} left unfilled in {command:?}"
        );
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.run(&args)
}

#[test]
fn the_import_after_a_request_works_as_printed_with_and_without_a_key_given() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(2, &[]);

    // No vendor key known: the step asks for it.
    let a = workstation("laptop.json");
    let req = a.path("a.req");
    let out = a.run_store(&["request", &key, "-o", req.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        json(&a.run_store(&["request", &key, "-o", req.to_str().unwrap(), "--json"]))["size"],
        std::fs::metadata(&req).unwrap().len(),
        "the size said is the file's"
    );
    let step = printed(&out, "import");
    assert!(step.contains(&"VENDOR-KEY-FILE".to_owned()), "{step:?}");
    let lic = a.path("a.lic");
    assert_eq!(code(&vendor.answer(&req, &lic)), 0);
    let done = run_printed(
        &a,
        &step,
        &[("LICENSE-FILE", &lic), ("VENDOR-KEY-FILE", &fixture(VENDOR_PUB))],
    );
    assert_eq!(code(&done), 0, "{}", stderr(&done));

    // A key given to `request` is kept: the step needs nothing more.
    let b = workstation("laptop-same-model.json");
    let req = b.path("b.req");
    let out = b.run_store(&[
        "request",
        &key,
        "-o",
        req.to_str().unwrap(),
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let step = printed(&out, "import");
    assert!(!step.contains(&"--pubkey".to_owned()), "{step:?}");
    let lic = b.path("b.lic");
    assert_eq!(code(&vendor.answer(&req, &lic)), 0);
    let done = run_printed(&b, &step, &[("LICENSE-FILE", &lic)]);
    assert_eq!(code(&done), 0, "{}", stderr(&done));
    assert_eq!(code(&b.run_store(&["check", "--product", "surveyor"])), 0);

    // Deactivating to a file: the receipt's import, as printed.
    let id = license_id(&b);
    let deact = b.path("b.deact");
    let out = b.run_store(&["deactivate", &id, "-o", deact.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let step = printed(&out, "import");
    let receipt = b.path("b.receipt");
    assert_eq!(code(&vendor.answer(&deact, &receipt)), 0);
    let done = run_printed(&b, &step, &[("RECEIPT-FILE", &receipt)]);
    assert_eq!(code(&done), 0, "{}", stderr(&done));
}

#[test]
fn the_offline_fallback_of_activate_finishes_as_printed() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(1, &[]);
    // A store whose path a shell would split.
    let ws = workstation("laptop.json");
    let store = ws.path("my store");
    let unreachable = "http://127.0.0.1:1";
    let out = ws.run(&[
        "activate",
        &key,
        "--server",
        unreachable,
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--request-out",
        ws.path("left.req").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&out), 41, "{}", stderr(&out));
    let answer = json(&out);
    assert_eq!(answer["error"]["code"], "connection-refused");
    let request = std::path::PathBuf::from(answer["request"].as_str().unwrap());
    assert!(request.exists());
    // The step on stderr, and the same command as a JSON field for scripts.
    let step = printed_in(&stderr(&out), "import");
    assert_eq!(words(answer["next"].as_str().unwrap()), step, "{}", stderr(&out));

    let lic = ws.path("left.lic");
    assert_eq!(code(&vendor.answer(&request, &lic)), 0);
    let done = run_printed(&ws, &step, &[("FILE", &lic)]);
    assert_eq!(code(&done), 0, "{}", stderr(&done));
    let out = ws.run(&[
        "check",
        "--product",
        "surveyor",
        "--store",
        store.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // Giving the seat back with the server still unreachable: the receipt's step.
    let id =
        json(&ws.run(&["status", "--json", "--store", store.to_str().unwrap()]))["licenses"][0]["license_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let deact = ws.path("left.deact");
    let out = ws.run(&[
        "deactivate",
        &id,
        "--server",
        unreachable,
        "--request-out",
        deact.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 41, "{}", stderr(&out));
    let step = printed(&out, "import");
    let receipt = ws.path("left.receipt");
    assert_eq!(code(&vendor.answer(&deact, &receipt)), 0);
    let done = run_printed(&ws, &step, &[("FILE", &receipt)]);
    assert_eq!(code(&done), 0, "{}", stderr(&done));
}

#[test]
fn a_missing_store_names_the_import_that_makes_it() {
    let ws = workstation("laptop.json");
    let lic = ws.issue("laptop.json", "surveyor", &[]);
    let out = ws.run_store(&["check", "--product", "surveyor"]);
    assert_eq!(code(&out), 18, "{}", stderr(&out));
    let step = printed(&out, "import");
    let done = run_printed(
        &ws,
        &step,
        &[("LICENSE-FILE", &lic), ("VENDOR-KEY-FILE", &fixture(VENDOR_PUB))],
    );
    assert_eq!(code(&done), 0, "{}", stderr(&done));
    assert_eq!(code(&ws.run_store(&["check", "--product", "surveyor"])), 0);
}

#[test]
fn printed_commands_are_split_as_a_shell_would() {
    assert_eq!(
        commands_in("run: nodelock import FILE --store '/tmp/my store'\nthen `nodelock trust list` to see"),
        vec![
            vec!["nodelock", "import", "FILE", "--store", "/tmp/my store"],
            vec!["nodelock", "trust", "list"],
        ]
    );
}
