//! The usage report for the people who decide how many seats to buy: per
//! product and UTC day, the peak of seats in use, the denials (every seat
//! busy), the borrows, and the hours seats were held. Read from the
//! append-only usage log and the leases, one row at a time.

use std::collections::BTreeMap;

use serde::Serialize;

use super::PoolError;
use super::db::PoolDb;
use crate::base::clock::{self, DAY, Timestamp};

/// One product's day.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct UsageDay {
    /// The product.
    pub product: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Most seats held at once.
    pub peak: i64,
    /// Checkouts refused because every seat was held.
    pub denials: u64,
    /// Seats taken out on borrow.
    pub borrows: u64,
    /// Hours seats were held (online and borrowed), to two decimals.
    pub hours: f64,
}

fn day_of(t: Timestamp) -> Timestamp {
    t.div_euclid(DAY) * DAY
}

/// The report from `since` on (every day the log covers without it).
pub fn usage(db: &PoolDb, since: Option<Timestamp>) -> Result<Vec<UsageDay>, PoolError> {
    let mut days: BTreeMap<(String, Timestamp), UsageDay> = BTreeMap::new();
    let mut in_use: BTreeMap<String, (Timestamp, i64)> = BTreeMap::new();
    let new_day = |product: &str, day: Timestamp| UsageDay {
        product: product.to_owned(),
        day: clock::format(day).chars().take(10).collect(),
        ..UsageDay::default()
    };
    db.read().each_usage(since, &mut |row| {
        let day = day_of(row.at);
        let d = days
            .entry((row.product.clone(), day))
            .or_insert_with(|| new_day(&row.product, day));
        // Seats still held from the day before count toward this day's peak.
        if let Some((last_day, held)) = in_use.get(&row.product).copied()
            && last_day != day
        {
            d.peak = d.peak.max(held);
        }
        d.peak = d.peak.max(row.in_use);
        match row.event.as_str() {
            "denied" => d.denials += 1,
            "borrowed" => d.borrows += 1,
            _ => {}
        }
        in_use.insert(row.product, (day, row.in_use));
        Ok(())
    })?;
    let mut seconds: BTreeMap<(String, Timestamp), i64> = BTreeMap::new();
    db.read().each_lease_span(since, &mut |product, from, to| {
        let from = since.map_or(from, |s| from.max(s));
        let mut day = day_of(from);
        while day < to {
            let start = from.max(day);
            let end = to.min(day + DAY);
            if end > start {
                *seconds.entry((product.clone(), day)).or_default() += end - start;
            }
            day += DAY;
        }
        Ok(())
    })?;
    for ((product, day), secs) in seconds {
        let d = days
            .entry((product.clone(), day))
            .or_insert_with(|| new_day(&product, day));
        d.hours = (secs as f64 / 36.0).round() / 100.0;
    }
    Ok(days.into_values().collect())
}
