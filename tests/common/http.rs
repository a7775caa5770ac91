//! Raw HTTP against a running server: an agent, a POST, activation request
//! bodies, and the audit's length.

use std::path::Path;
use std::time::Duration;

use nodelock::documents::activation::{self, ActivationKey};
use nodelock::format::PrivateKey;
use nodelock::machine::facts::Facts;
use nodelock::machine::fingerprint::Fingerprint;
use nodelock::vendor::ledger::Ledger;

use super::nth_machine_facts;

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// Posts `body`; returns the status and the body text.
pub fn post(agent: &ureq::Agent, url: &str, body: &[u8]) -> Result<(u16, String), ureq::Error> {
    let mut response = agent.post(url).send(body)?;
    let status = response.status().as_u16();
    Ok((status, response.body_mut().read_to_string().unwrap_or_default()))
}

pub fn audit_len(ledger: &Path) -> usize {
    Ledger::open(ledger).unwrap().audit().unwrap().len()
}

/// `n` activation requests for `key`, each from its own machine with its
/// own install key.
pub fn requests(key: &str, n: usize) -> Vec<Vec<u8>> {
    let key = ActivationKey::parse(key).unwrap();
    (0..n)
        .map(|i| {
            let facts = Facts::from_json(nth_machine_facts(i).as_bytes(), "fleet").unwrap();
            let fp = Fingerprint::from_facts(&facts).unwrap();
            let install = PrivateKey::generate().unwrap();
            let mut nonce = [0u8; 16];
            nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
            activation::make_request(&key, &fp, &install, nonce, 1_780_000_000)
                .unwrap()
                .1
                .into_bytes()
        })
        .collect()
}
