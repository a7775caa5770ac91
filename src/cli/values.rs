//! Argument values parsed and checked by clap before a command does any work:
//! dates, license kinds, feature lists. A bad value is a usage error (exit 2)
//! naming the flag, and a command receives only values that make sense.

use nodelock::base::clock::{self, Timestamp};
use nodelock::documents::license::{LicenseKind, Terms};
use nodelock::machine::fingerprint::MatchPolicy;
use nodelock::machine::fingerprint::matching::UnknownPolicy;

use super::exit::{CliError, Exit};

/// `--expires`, `--maintenance-until`: a bare date runs to the end of that UTC day.
pub fn end_date(text: &str) -> Result<Timestamp, String> {
    clock::parse_end(text).map_err(|e| e.to_string())
}

/// `--not-before`, `--build-date`: a bare date starts at the beginning of that UTC day.
pub fn start_date(text: &str) -> Result<Timestamp, String> {
    clock::parse_start(text).map_err(|e| e.to_string())
}

/// The kinds a vendor issues directly or sells as an entitlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    /// Runs forever; may carry a maintenance end.
    Perpetual,
    /// Runs until --expires.
    Subscription,
    /// An evaluation, until --expires.
    Trial,
    /// A floating pool of --seats, served on the customer's network
    /// (`vendor entitlement create` only; --expires makes it a subscription).
    Floating,
}

/// The kind a license or entitlement gets: the one asked for, else a
/// subscription when it expires and perpetual when it does not. Kinds that
/// end need an end.
pub fn license_kind(asked: Option<KindArg>, expires_at: Option<Timestamp>) -> Result<LicenseKind, CliError> {
    match (asked, expires_at) {
        (Some(KindArg::Perpetual), _) | (None, None) => Ok(LicenseKind::Perpetual),
        (Some(KindArg::Subscription), Some(_)) | (None, Some(_)) => Ok(LicenseKind::Subscription),
        (Some(KindArg::Trial), Some(_)) => Ok(LicenseKind::Trial),
        (Some(KindArg::Floating), _) => Ok(LicenseKind::FloatingPool),
        (Some(kind), None) => Err(CliError::new(
            Exit::Usage,
            format!(
                "a {} needs --expires DATE",
                match kind {
                    KindArg::Trial => "trial",
                    _ => "subscription",
                }
            ),
        )),
    }
}

/// What a vendor issues or sells: `vendor issue` and `vendor entitlement
/// create` take the same terms the same way.
#[derive(clap::Args)]
pub struct SaleArgs {
    /// Product name.
    #[arg(long)]
    product: String,
    /// Default: subscription with --expires, else perpetual.
    #[arg(long, value_enum)]
    kind: Option<KindArg>,
    /// Last day of validity (UTC; it runs to the end of that day) or an RFC 3339 instant.
    #[arg(long, value_name = "DATE", value_parser = end_date)]
    expires: Option<Timestamp>,
    /// Builds released after this day are not covered (UTC, end of day).
    #[arg(long, value_name = "DATE", value_parser = end_date)]
    maintenance_until: Option<Timestamp>,
    /// Features, comma-separated.
    #[arg(long, value_delimiter = ',')]
    features: Vec<String>,
    /// Customer name.
    #[arg(long)]
    customer: Option<String>,
    /// Refuse machines whose only identifier is one clones share (a VM without SMBIOS data).
    #[arg(long)]
    require_hardware_id: bool,
    /// How much evidence checks ask of the machine: strict, standard or tolerant (README "Match policies").
    #[arg(long, value_name = "POLICY", default_value = "standard", value_parser = match_policy)]
    match_policy: MatchPolicy,
}

/// A `--match-policy` or `--policy` value.
pub fn match_policy(raw: &str) -> Result<MatchPolicy, String> {
    raw.parse().map_err(|e: UnknownPolicy| e.to_string())
}

impl SaleArgs {
    /// The license terms these arguments describe (the product name is
    /// checked where the terms are used).
    pub fn terms(&self) -> Result<Terms, CliError> {
        Ok(Terms {
            features: feature_list(&self.features),
            customer: self.customer.clone(),
            expires_at: self.expires,
            maintenance_until: self.maintenance_until,
            allow_clone_only: !self.require_hardware_id,
            match_policy: self.match_policy,
            ..Terms::new(self.product.clone(), license_kind(self.kind, self.expires)?)
        })
    }
}

/// `--features a, b,,c` as the list `[a, b, c]`.
pub fn feature_list(raw: &[String]) -> Vec<String> {
    raw.iter()
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_expiry_and_kinds_that_end_need_one() {
        let end = Some(1_800_000_000);
        assert_eq!(license_kind(None, None).unwrap(), LicenseKind::Perpetual);
        assert_eq!(license_kind(None, end).unwrap(), LicenseKind::Subscription);
        assert_eq!(
            license_kind(Some(KindArg::Perpetual), end).unwrap(),
            LicenseKind::Perpetual
        );
        assert_eq!(
            license_kind(Some(KindArg::Trial), end).unwrap(),
            LicenseKind::Trial
        );
        for kind in [KindArg::Subscription, KindArg::Trial] {
            let err = license_kind(Some(kind), None).unwrap_err();
            assert_eq!(err.exit, Exit::Usage);
        }
    }
}
