//! The reads behind idempotent activation: the answer already given to a
//! request, and the seats a new request's machine may already hold.

use rusqlite::{Connection, OptionalExtension, params};

use super::activation_from_row;
use crate::vendor::ledger::error::StorageError;
use crate::vendor::ledger::model::{Activation, EarlierAnswer};
use crate::vendor::ledger::storage::SEAT_CANDIDATES;

/// The answer the query `sql` finds for a request (install key, nonce).
pub(super) fn earlier_answer(
    conn: &Connection,
    sql: &str,
    install_key: &[u8],
    nonce: &[u8],
) -> Result<Option<EarlierAnswer>, StorageError> {
    conn.prepare_cached(sql)?
        .query_row(params![install_key, nonce], |r| {
            Ok(activation_from_row(r)?.map(|activation| (activation, r.get(10), r.get(11))))
        })
        .optional()?
        .transpose()?
        .map(|(activation, hash, license)| {
            Ok(EarlierAnswer {
                activation,
                request_hash: hash?,
                license: license?,
            })
        })
        .transpose()
}

pub(super) fn candidates(
    conn: &Connection,
    entitlement_id: &str,
    holder_key: &[u8],
    anchors: &[[u8; 32]],
) -> Result<Vec<(Activation, Vec<u8>)>, StorageError> {
    let limit = SEAT_CANDIDATES as i64;
    let mut ids: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM activations WHERE entitlement_id = ?1 AND holder_key = ?2 AND ended_at IS NULL LIMIT ?3",
        )?
        .query_map(params![entitlement_id, holder_key, limit], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut by_digest = conn.prepare_cached(
        "SELECT activation_id FROM seat_anchors WHERE entitlement_id = ?1 AND digest = ?2 LIMIT ?3",
    )?;
    for digest in anchors {
        for id in by_digest.query_map(params![entitlement_id, digest.as_slice(), limit], |r| r.get(0))? {
            ids.push(id?);
        }
    }
    ids.sort();
    ids.dedup();
    let sql = concat!(
        "SELECT ",
        activation_columns!(),
        ", license FROM activations WHERE id = ?1 AND ended_at IS NULL"
    );
    let mut held = Vec::new();
    for id in ids {
        let row = conn
            .prepare_cached(sql)?
            .query_row([&id], |r| Ok(activation_from_row(r)?.map(|a| (a, r.get(10)))))
            .optional()?;
        if let Some(row) = row {
            let (activation, license) = row?;
            held.push((activation, license?));
        }
    }
    Ok(held)
}
