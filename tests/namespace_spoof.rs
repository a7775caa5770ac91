//! The user-namespace spoof, run for real: inside `unshare -rm` (which an
//! ordinary user may run on most distributions) a fake `/sys/class/net` shows
//! the licensed laptop's MAC, `/sys/block` and the SMBIOS directory are empty
//! tmpfs mounts, and `/etc/machine-id` is the laptop's. nodelock reads the real
//! probe here (no `NODELOCK_TEST_FACTS`). A tolerant-policy license shows the
//! spoof works (it passes, with the namespace warning); the standard policy,
//! the default, refuses. Skipped, with the reason printed, where the kernel or
//! the sandbox forbids user namespaces.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const LAPTOP_MAC: &str = "3c:52:82:aa:bb:cc";
const LAPTOP_MACHINE_ID: &str = "3d1219c7c4c5404aaa1f6d2a48adfda4";

/// Whether `unshare -rm` can mount here; the reason when not.
fn namespaces_available() -> Result<(), String> {
    let out = Command::new("unshare")
        .args(["-rm", "sh", "-c", "mount -t tmpfs none /mnt && echo ok"])
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if String::from_utf8_lossy(&out.stdout).trim() == "ok" {
        Ok(())
    } else {
        Err(format!(
            "unshare -rm is not allowed here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `nodelock ARGS` inside a fresh user + mount namespace dressed up as
/// the laptop.
fn in_spoofed_namespace(env: &Env, args: &[&str]) -> std::process::Output {
    let fake = env.path("fake");
    // A name the host does not have, so that only the fake sysfs answers for it.
    let net = fake.join("net/enp0s31f6");
    std::fs::create_dir_all(net.join("device")).unwrap();
    std::fs::write(net.join("address"), format!("{LAPTOP_MAC}\n")).unwrap();
    std::fs::write(fake.join("machine-id"), format!("{LAPTOP_MACHINE_ID}\n")).unwrap();
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_nodelock"))
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect();
    let script = format!(
        "set -e
         mount --bind '{net}' /sys/class/net
         mount -t tmpfs none /sys/block
         for d in /sys/class/nvme /sys/class/dmi/id; do [ -d $d ] && mount -t tmpfs none $d; done
         mount --bind '{mid}' /etc/machine-id
         exec {cmd}",
        net = fake.join("net").display(),
        mid = fake.join("machine-id").display(),
        cmd = quoted.join(" "),
    );
    // The env's clock override, without its facts override.
    let cmd = env.std_cmd();
    Command::new("unshare")
        .args(["-rm", "sh", "-c", &script])
        .envs(
            cmd.get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .env_remove("NODELOCK_TEST_FACTS")
        .current_dir(env.dir.path())
        .output()
        .unwrap()
}

fn import_args<'a>(store: &'a Path, pubkey: &'a Path, license: &'a Path) -> Vec<&'a str> {
    vec![
        "import",
        "--store",
        store.to_str().unwrap(),
        "--pubkey",
        pubkey.to_str().unwrap(),
        license.to_str().unwrap(),
    ]
}

#[test]
fn a_user_namespace_dressed_as_the_laptop_is_refused_by_the_standard_policy() {
    if let Err(why) = namespaces_available() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let env = Env::new();
    let standard = env.issue("laptop.json", "surveyor", &[]);
    let tolerant = env.issue("laptop.json", "fieldbook", &["--match-policy", "tolerant"]);
    let store = env.store();
    let pubkey = fixture(VENDOR_PUB);

    // The spoof is real: under the tolerant policy the fake laptop passes.
    let out = in_spoofed_namespace(&env, &import_args(&store, &pubkey, &tolerant));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = in_spoofed_namespace(
        &env,
        &[
            "check",
            "--store",
            store.to_str().unwrap(),
            "--product",
            "fieldbook",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("user namespace"), "{}", stderr(&out));

    // The default policy refuses it, saying why, and stores nothing.
    let out = in_spoofed_namespace(&env, &import_args(&store, &pubkey, &standard));
    assert_eq!(code(&out), 16, "{}", stderr(&out));
    assert!(stderr(&out).contains("user namespace"), "{}", stderr(&out));
    let out = env.run(&["status", "--store", store.to_str().unwrap(), "--json"]);
    let held: Vec<String> = json(&out)["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["product"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(held, ["fieldbook"]);
}
