//! The server against strangers: anonymous floods leave the permanent audit
//! alone (they cost bounded counters), liveness is cheap, and slow or idle
//! connections are closed.

mod common;

use common::http::*;
use common::*;
use nodelock::base::random::OsRandom;
use nodelock::documents::activation::{self, ActivationKey};
use nodelock::format::PrivateKey;

#[test]
fn anonymous_refusals_cost_counters_not_audit_rows() {
    let env = Env::new();
    let ledger = env.path("ledger.sqlite");
    let key = entitlement(&env, &ledger, 1);
    let server = Server::start(&ledger);
    let agent = agent();
    let activations = format!("{}/v1/activations", server.url);
    let deactivations = format!("{}/v1/deactivations", server.url);

    // One real activation, so that a real license id exists.
    let (status, _) = post(&agent, &activations, &requests(&key, 1)[0]).unwrap();
    assert_eq!(status, 200);
    let real_license = nodelock::vendor::ledger::Ledger::open(&ledger)
        .unwrap()
        .report(0)
        .unwrap()[0]
        .activations[0]
        .license_id
        .clone();
    let before = audit_len(&ledger);

    // Well-formed requests under keys no entitlement has (each signed by a
    // key made up on the spot), deactivations of licenses that do not exist,
    // and deactivations of a real license signed by a stranger.
    let stranger_key = ActivationKey::generate(&OsRandom).unwrap().to_string();
    let strangers = requests(&stranger_key, 40);
    let stranger = PrivateKey::generate().unwrap();
    let (_, unknown_license) =
        activation::make_deactivation("L-NOSUCHLICENSE00", &stranger, [1; 16], 0).unwrap();
    let (_, wrong_key) = activation::make_deactivation(&real_license, &stranger, [2; 16], 0).unwrap();
    for body in &strangers {
        assert_eq!(post(&agent, &activations, body).unwrap().0, 404);
    }
    for _ in 0..40 {
        assert_eq!(
            post(&agent, &deactivations, unknown_license.as_bytes())
                .unwrap()
                .0,
            404
        );
        assert_eq!(post(&agent, &deactivations, wrong_key.as_bytes()).unwrap().0, 403);
    }
    assert_eq!(
        audit_len(&ledger),
        before,
        "anonymous refusals reached the permanent audit"
    );

    // A refusal a known entitlement stands behind is still audited.
    let (status, _) = post(&agent, &activations, &requests(&key, 2)[1]).unwrap();
    assert_eq!(status, 409);
    assert_eq!(audit_len(&ledger), before + 1);

    // The counters say what was refused, and liveness answers cheaply.
    let mut response = agent.get(format!("{}/healthz", server.url)).call().unwrap();
    let health: serde_json::Value =
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["refused"]["unknown-key"], 40);
    assert_eq!(health["refused"]["unknown-license"], 40);
    assert_eq!(health["refused"]["wrong-install-key"], 40);
    assert_eq!(health["refused"]["no-free-seat"], 1);
}

#[test]
fn the_deep_ledger_check_is_an_operator_command() {
    let env = Env::new();
    let ledger = env.path("ledger.sqlite");
    entitlement(&env, &ledger, 1);
    let out = env.run(&["vendor", "check", "--ledger", ledger.to_str().unwrap(), "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["integrity"], "ok");
    assert_eq!(json(&out)["sound"], true);
    // Counters edited behind the ledger's back are a problem it names.
    let conn = rusqlite::Connection::open(&ledger).unwrap();
    conn.execute("UPDATE entitlements SET seats_used = 5", [])
        .unwrap();
    drop(conn);
    let out = env.run(&["vendor", "check", "--ledger", ledger.to_str().unwrap()]);
    assert_eq!(code(&out), 45, "{}", stderr(&out));
    assert!(stdout(&out).contains("counters disagree"), "{}", stdout(&out));
}
