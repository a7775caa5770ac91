//! Online commands: `activate`, `deactivate` (online or to a file), `doctor`,
//! and `vendor serve`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use nodelock::base::clock;
use nodelock::documents::activation::ActivationKey;
use nodelock::machine::fingerprint::Fingerprint;
use nodelock::online::client::{Client, ClientError};
use nodelock::vendor::server::{self, Service};
use nodelock::workstation::store::ImportOutcome;

use super::exit::{CliError, Exit};
use super::output::{Outcome, clean, write_out};
use super::{
    ActivateArgs, DeactivateArgs, DoctorArgs, RefreshArgs, ServeArgs, ServerArg, activation, config,
    overrides, workstation,
};

impl ServerArg {
    pub fn client(&self) -> Result<Option<Client>, CliError> {
        match config::server(self.server.as_deref())? {
            Some((url, _)) => Ok(Some(Client::new(&url, Duration::from_secs(self.timeout.max(1)))?)),
            None => Ok(None),
        }
    }
}

/// Runs `f` with a spinner on stderr (drawn only on a terminal).
fn with_spinner<T>(message: String, f: impl FnOnce() -> T) -> T {
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(message);
    spinner.enable_steady_tick(Duration::from_millis(100));
    let out = f();
    spinner.finish_and_clear();
    out
}

fn offline_steps(file: &Path, server: &str, import: &str, what: &str) -> String {
    format!(
        "The {what} is saved as {}. To finish without this machine reaching the server:\n\
         1. On any computer with internet, upload {} at {server}/ (the activation portal), or e-mail it to your vendor.\n\
         2. Bring back the file you get and run: {import}",
        file.display(),
        file.display()
    )
}

pub fn activate(args: &ActivateArgs) -> Result<Outcome, CliError> {
    let key =
        ActivationKey::parse(&args.key).map_err(|e| CliError::new(Exit::BadActivationKey, e.to_string()))?;
    let client = args.server.client()?.ok_or_else(|| {
        CliError::new(
            Exit::Usage,
            "no activation server is configured; pass --server URL, set NODELOCK_SERVER, or activate offline with `nodelock request`",
        )
    })?;
    let store = args.store.open()?;
    let ring = workstation::keyring(&args.keys, Some(&store))?;
    let fingerprint = Fingerprint::from_facts(&overrides::current_facts()?)?;
    let pending = match store.pending_for_key(&key) {
        Some(p) => p,
        None => store.create_request(&key, &fingerprint, overrides::now()?)?,
    };
    let synced = super::clock::sync_if_ahead(&store, &client, &ring);
    let answer = with_spinner(format!("activating with {} …", client.base()), || {
        client.activate(pending.armored.as_bytes())
    });
    let (license, reactivated) = match answer {
        Ok(answer) => (answer.license, answer.reactivated),
        Err(e) if e.is_network() => {
            write_out(&args.request_out, &pending.armored)?;
            // The key given for this activation is the one its license will
            // need when it comes back by hand.
            workstation::keep_given_keys(&store, &args.keys)?;
            let import = workstation::import_step("FILE", &store, &args.store)?;
            let mut err = CliError::from(e);
            err.message = format!(
                "{}\n{}",
                err.message,
                offline_steps(&args.request_out, client.base(), &import, "activation request")
            );
            return Err(err
                .with_field("request", args.request_out.display().to_string())
                .with_field("next", import));
        }
        Err(refusal) => return Err(refusal.into()),
    };
    let outcome = store.import(license.as_bytes(), &ring, &fingerprint, overrides::now()?)?;
    let trusted = super::workstation::keep_trust_root(&store, &ring, license.as_bytes())?;
    let mut json = serde_json::to_value(&outcome).unwrap_or_default();
    if let Some(fields) = json.as_object_mut() {
        fields.insert("reactivated".into(), reactivated.into());
    }
    let grant = match outcome {
        ImportOutcome::Installed { grant, .. } | ImportOutcome::AlreadyInstalled { grant } => grant,
    };
    let warning = grant.warning.clone();
    let mut out = Outcome::new(
        format!(
            "activated: license {} for {} is installed in {}",
            clean(&grant.license_id),
            clean(&grant.product),
            store.root().display()
        ),
        json,
    );
    if let Some(note) = synced {
        out = out.note(note);
    }
    if reactivated {
        out = out.note(
            "this machine already held a seat of this entitlement: its license was issued again, and no new seat was taken",
        );
    }
    if let Some(w) = warning {
        out = out.note(format!("warning: {w}"));
    }
    if let Some(note) = trusted {
        out = out.note(note);
    }
    Ok(out)
}

pub fn deactivate(args: &DeactivateArgs) -> Result<Outcome, CliError> {
    if let Some(out) = &args.out {
        return activation::deactivate_to_file(args, out);
    }
    let client = args.server.client()?.ok_or_else(|| {
        CliError::new(
            Exit::Usage,
            "say where the deactivation goes: -o FILE (offline) or --server URL (online)",
        )
    })?;
    let store = args.store.open_existing()?;
    super::pool::refuse_if_borrowed(&store, &args.license_id, overrides::now()?)?;
    let done = store.deactivate(&args.license_id, overrides::now()?)?;
    let answer = with_spinner(format!("deactivating with {} …", client.base()), || {
        client.deactivate(done.armored.as_bytes())
    });
    match answer {
        Ok(receipt) => {
            let ring = workstation::keyring(&args.keys, Some(&store))?;
            let receipt = store.import_receipt(receipt.as_bytes(), &ring)?.into_receipt();
            Ok(Outcome::new(
                format!(
                    "deactivated: the vendor freed the seat of license {} (transfer {} of {}); it can now be activated on another machine",
                    clean(&receipt.license_id),
                    receipt.transfers_used,
                    receipt.max_transfers
                ),
                json!({ "outcome": "deactivated", "receipt": receipt }),
            ))
        }
        Err(e) if e.is_network() => {
            let file = &args.request_out;
            write_out(file, &done.armored)?;
            let import = workstation::import_step("FILE", &store, &args.store)?;
            let mut err = CliError::from(e);
            err.message = format!(
                "{}\nThe license is already removed from this machine.\n{}",
                err.message,
                offline_steps(file, client.base(), &import, "deactivation request")
            );
            Err(err
                .with_field("request", file.display().to_string())
                .with_field("next", import))
        }
        Err(refusal) => Err(refusal.into()),
    }
}

/// `nodelock refresh`: offline, one request file; online, each license sent
/// and its answer imported, the rest carrying on when one is refused.
pub fn refresh(args: &RefreshArgs) -> Result<Outcome, CliError> {
    let store = args.store.open_existing()?;
    let ring = workstation::keyring(&args.keys, Some(&store))?;
    let current = Fingerprint::from_facts(&overrides::current_facts()?)?;
    let now = overrides::now()?;
    if let Some(out) = &args.out {
        let product = match (&args.product, store.refreshable_products().as_slice()) {
            (Some(p), _) => p.clone(),
            (None, [only]) => only.clone(),
            (None, _) => {
                return Err(CliError::new(
                    Exit::Usage,
                    "name the product to refresh offline: nodelock refresh PRODUCT -o FILE",
                ));
            }
        };
        let (license_id, armored) = store.refresh_request(&product, &ring, &current, now)?;
        write_out(out, &armored)?;
        return Ok(Outcome::new(
            format!(
                "refresh request for license {} ({}) written to {}.
Next: upload it at the vendor's activation portal or e-mail it to your vendor, then run: {}",
                clean(&license_id),
                clean(&product),
                out.display(),
                workstation::import_step("FILE", &store, &args.store)?
            ),
            json!({ "request": out.display().to_string(), "license_id": license_id, "product": product }),
        ));
    }
    let client = args.server.client()?.ok_or_else(|| {
        CliError::new(
            Exit::Usage,
            "say where the refresh goes: -o FILE (offline) or --server URL (online)",
        )
    })?;
    let products = match &args.product {
        Some(p) => vec![p.clone()],
        None => store.refreshable_products(),
    };
    if products.is_empty() {
        return Err(CliError::new(
            Exit::NotFound,
            format!(
                "no license in {} was activated with an activation key, so there is nothing to refresh",
                store.root().display()
            ),
        ));
    }
    let mut lines = Vec::new();
    if let Some(note) = super::clock::sync_if_ahead(&store, &client, &ring) {
        lines.push(note);
    }
    let mut done = Vec::new();
    let mut first_error = None;
    for product in &products {
        let outcome = (|| -> Result<_, CliError> {
            let (_, armored) = store.refresh_request(product, &ring, &current, now)?;
            let license = with_spinner(format!("refreshing {product} with {} …", client.base()), || {
                client.refresh(armored.as_bytes())
            })?;
            Ok(store.import(license.as_bytes(), &ring, &current, now)?)
        })();
        match outcome {
            Ok(imported) => {
                let grant = match &imported {
                    ImportOutcome::Installed { grant, .. } | ImportOutcome::AlreadyInstalled { grant } => {
                        grant
                    }
                };
                lines.push(format!(
                    "{}: refreshed license {}{}",
                    clean(product),
                    clean(&grant.license_id),
                    grant
                        .expires_at
                        .as_deref()
                        .map(|e| format!(", valid until {e}"))
                        .unwrap_or_default()
                ));
                done.push(serde_json::to_value(&imported).unwrap_or_default());
            }
            Err(e) => {
                lines.push(format!("{}: not refreshed: {}", clean(product), e.message));
                first_error.get_or_insert(e);
            }
        }
    }
    // One refused refresh makes the command fail (with its code), naming
    // what did and did not happen to each license.
    match first_error {
        Some(mut e) => {
            e.message = lines.join("\n");
            Err(e)
        }
        None => Ok(Outcome::new(lines.join("\n"), json!({ "refreshed": done }))),
    }
}

pub fn doctor(args: &DoctorArgs) -> Result<Outcome, CliError> {
    let mut lines = Vec::new();
    let mut findings: Vec<String> = Vec::new();
    let mut report = serde_json::Map::new();

    // Configuration and server.
    match config::server(args.server.server.as_deref()) {
        Ok(Some((url, source))) => {
            lines.push(format!("server: {url} (from {source})"));
            let health =
                Client::new(&url, Duration::from_secs(args.server.timeout.max(1))).and_then(|c| c.health());
            match &health {
                Ok(took) => {
                    lines.push(format!("server answers: healthy in {} ms", took.as_millis()));
                    // A pool server says what it serves and what time it is.
                    if let Some(pool) = pool_view(&url, args.server.timeout) {
                        report.insert("pool".into(), pool.clone());
                        describe_pool(&pool, &mut lines, &mut findings);
                    }
                }
                Err(e) => {
                    problem(&mut lines, &mut findings, format!("server does not answer: {e}"));
                }
            }
            report.insert(
                "server".into(),
                json!({ "url": url, "source": source, "healthy": health.is_ok(),
                        "error": health.as_ref().err().map(ClientError::to_string) }),
            );
        }
        Ok(None) => {
            lines.push("server: none configured (--server, NODELOCK_SERVER or the config file); offline activation only".into());
            report.insert("server".into(), serde_json::Value::Null);
        }
        Err(e) => {
            problem(&mut lines, &mut findings, format!("config: {}", e.message));
        }
    }
    if let Some(path) = config::config_path() {
        report.insert("config_file".into(), json!(path.display().to_string()));
    }

    // Machine.
    match overrides::current_facts().and_then(|f| Ok(Fingerprint::from_facts(&f)?)) {
        Ok(fp) => {
            lines.push(format!("workstation id: {}", fp.workstation_id()));
            if let Some(w) = fp.report().warning {
                lines.push(format!("warning: {w}"));
            }
            report.insert("workstation_id".into(), json!(fp.workstation_id().to_string()));
            // Store.
            let store = args.store.open()?;
            if !store.root().is_dir() {
                problem(
                    &mut lines,
                    &mut findings,
                    format!(
                        "problem: there is no license store at {}; pass the --store the license was installed into, or set NODELOCK_STORE",
                        store.root().display()
                    ),
                );
            }
            let ring = store.trust_roots()?;
            let now = overrides::now()?;
            let entries = store.status(&ring, &fp, now)?;
            lines.push(format!(
                "store: {} ({} license(s), {} trusted vendor key(s), {} pending request(s))",
                store.root().display(),
                entries.len(),
                ring.keys().len(),
                store.pending_requests().len()
            ));
            for e in &entries {
                let line = format!("  {} {}: {}", clean(&e.product), e.state, clean(&e.message));
                if e.state == "valid" {
                    lines.push(line);
                } else {
                    problem(&mut lines, &mut findings, line);
                }
            }
            // Clock against the newest vendor-signed time seen, and against
            // the latest time this store observed.
            let newest = store
                .newest_vendor_time(&ring)
                .max(store.trusted_time().ok().flatten());
            let watermark = store.watermark().ok().flatten();
            if let Some(w) = watermark
                && now + nodelock::base::clock::CLOCK_TOLERANCE < w
                && newest.is_none_or(|t| now + nodelock::base::clock::CLOCK_TOLERANCE >= t)
            {
                problem(
                    &mut lines,
                    &mut findings,
                    format!(
                        "clock: {} is behind the latest time this store has seen ({}), so licenses that depend on the date are refused; if the clock is right now, take the vendor's time: `nodelock clock sync --server URL{}` (offline: `nodelock clock request -o clock.req{}`)",
                        clock::format(now),
                        clock::format(w),
                        args.store.flag(),
                        args.store.flag()
                    ),
                );
            }
            match newest {
                Some(t) if now + nodelock::base::clock::CLOCK_TOLERANCE < t => {
                    problem(
                        &mut lines,
                        &mut findings,
                        format!(
                            "clock: {} is behind the newest vendor-signed time seen ({}); set the clock right",
                            clock::format(now),
                            clock::format(t)
                        ),
                    );
                }
                Some(t) => lines.push(format!(
                    "clock: {} (newest vendor-signed time seen: {})",
                    clock::format(now),
                    clock::format(t)
                )),
                None => lines.push(format!(
                    "clock: {} (no vendor-signed time seen yet)",
                    clock::format(now)
                )),
            }
            report.insert(
                "store".into(),
                json!({ "path": store.root().display().to_string(), "licenses": entries,
                        "pending_requests": store.pending_requests().len(), "trusted_keys": ring.keys().len() }),
            );
            report.insert(
                "clock".into(),
                json!({ "now": clock::format(now), "newest_vendor_time": newest.map(clock::format),
                        "watermark": watermark.map(clock::format) }),
            );
        }
        Err(e) => {
            problem(&mut lines, &mut findings, format!("machine: {}", e.message));
        }
    }
    let problems = findings.len();
    report.insert("problems".into(), json!(problems));
    lines.push(if problems == 0 {
        "no problems found".into()
    } else {
        format!("{problems} problem(s) found")
    });
    if problems > 0 {
        // Like every other command that fails: an error object, whose
        // message is the first problem; each one is in `findings`.
        let exit = Exit::DoctorProblems;
        report.insert(
            "error".into(),
            json!({ "code": exit.code(), "exit": exit as i32,
                    "message": format!("{problems} problem(s) found; the first: {}", findings[0].trim()) }),
        );
        report.insert("findings".into(), json!(findings));
    }
    let mut out = Outcome::new(lines.join("\n"), serde_json::Value::Object(report));
    if problems > 0 {
        out.exit = Exit::DoctorProblems;
    }
    Ok(out)
}

/// A pool server's `/v1/status`, when `url` is one.
fn pool_view(url: &str, timeout: u64) -> Option<serde_json::Value> {
    let client = Client::new(url, Duration::from_secs(timeout.max(1))).ok()?;
    let text = client.get_from("/v1/status", None).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["products"].is_array().then_some(value)
}

/// What `doctor` says of a pool server: the pools it serves and their end,
/// and how far this machine's clock is from the server's.
fn describe_pool(pool: &serde_json::Value, lines: &mut Vec<String>, findings: &mut Vec<String>) {
    for p in pool["products"].as_array().into_iter().flatten() {
        lines.push(format!(
            "pool: {} ({} seat(s), {} in use, {} borrowed), pool license {} {}",
            clean(p["product"].as_str().unwrap_or("?")),
            p["seats"],
            p["in_use"],
            p["borrowed"],
            clean(p["pool_license"].as_str().unwrap_or("?")),
            p["expires_at"]
                .as_str()
                .map_or_else(|| "without end".to_owned(), |e| format!("until {}", clean(e)))
        ));
    }
    let server_now = pool["now"].as_str().and_then(|t| clock::parse_start(t).ok());
    if let (Some(server_now), Ok(now)) = (server_now, overrides::now()) {
        let skew = now - server_now;
        let line = format!("clock: this machine is {skew} s from the pool server's (positive: ahead)");
        if skew.abs() > nodelock::pool::POOL_CLOCK_TOLERANCE {
            problem(
                lines,
                findings,
                format!("{line}; borrows are counted from the server's time, but set this clock right"),
            );
        } else {
            lines.push(line);
        }
    }
}

/// Notes a problem `doctor` found: printed in its place, and kept for the JSON.
fn problem(lines: &mut Vec<String>, findings: &mut Vec<String>, text: String) {
    findings.push(text.trim().to_owned());
    lines.push(text);
}

pub fn serve(args: &ServeArgs) -> Result<Outcome, CliError> {
    init_logs();
    let vendor = super::vendor::signing_key(&args.signing_key)?;
    let ledger_path = args.ledger.path()?;
    // Open once here so that a missing or bad ledger is a clear error
    // before listening.
    drop(args.ledger.open()?);
    let service = Arc::new(Service::with_clock(
        ledger_path.clone(),
        vendor,
        overrides::clock()?,
    )?);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.workers {
        runtime.worker_threads(n.max(1));
    }
    let runtime = runtime
        .enable_all()
        .build()
        .map_err(|e| CliError::new(Exit::Io, e.to_string()))?;
    let limits = args.limits();
    listen_until_signal(
        &runtime,
        &args.listen,
        &format!("ledger {}", ledger_path.display()),
        |listener, shutdown| server::serve(listener, service, limits, shutdown),
    )?;
    tracing::info!(target: "nodelock::vendor::server", "stopped");
    Ok(Outcome::new("", json!({ "stopped": true })))
}

/// Logs of a server on stderr: `NODELOCK_LOG` filters (default `info`).
pub(super) fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NODELOCK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour_logs(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR"),
        ))
        .try_init();
}

/// The shutdown a server runs until.
pub(super) type Shutdown = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Binds `listen`, installs the signal handlers, then prints `listening on
/// http://ADDR (what)` — in that order, so that a SIGTERM sent as soon as
/// that line is read finds the handlers in place — and runs `serve` until
/// a signal, finishing the requests in flight.
pub(super) fn listen_until_signal<F, Fut>(
    runtime: &tokio::runtime::Runtime,
    listen: &str,
    what: &str,
    serve: F,
) -> Result<(), CliError>
where
    F: FnOnce(tokio::net::TcpListener, Shutdown) -> Fut,
    Fut: std::future::Future<Output = Result<(), nodelock::vendor::server::ServerError>>,
{
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| CliError::new(Exit::Io, format!("cannot listen on {listen}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::new(Exit::Io, e.to_string()))?;
        let shutdown: Shutdown = Box::pin(shutdown_signal()?);
        {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "listening on http://{addr} ({what})");
            let _ = stdout.flush();
        }
        tracing::info!(target: "nodelock::server", %addr, what, "listening");
        serve(listener, shutdown)
            .await
            .map_err(|e| CliError::new(Exit::Io, e.to_string()))
    })
}

/// Registers the SIGTERM and Ctrl-C handlers now (inside the runtime) and
/// returns the future that resolves when either arrives.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send + 'static, CliError> {
    let failed = |e: std::io::Error| CliError::new(Exit::Io, format!("cannot install signal handlers: {e}"));
    #[cfg(unix)]
    let (mut term, mut int) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).map_err(failed)?,
            signal(SignalKind::interrupt()).map_err(failed)?,
        )
    };
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!(target: "nodelock::vendor::server", "shutting down; finishing requests in flight");
    })
}

/// Whether the server's logs may carry colour: only on a terminal, and not
/// when `NO_COLOR` is set to anything but the empty string (no-color.org).
fn colour_logs(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour_logs;

    #[test]
    fn logs_are_plain_off_a_terminal_and_under_no_color() {
        assert!(colour_logs(true, None));
        assert!(colour_logs(true, Some("".into())));
        assert!(!colour_logs(true, Some("1".into())));
        assert!(!colour_logs(false, None));
    }
}
