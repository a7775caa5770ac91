//! Windows, macOS and the BSDs: what `machine-uid`, `mac_address` and `sysinfo`
//! give there. SMBIOS and disk serials need platform APIs (WMI, IOKit) that this
//! version does not call, so they stay unknown: unknown is never a mismatch.

use super::{Facts, Interface};

pub(super) fn probe() -> Facts {
    let mut facts = Facts::empty();
    facts.machine_id = machine_uid::get()
        .ok()
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty() && id != "uninitialized");
    if let Ok(iter) = mac_address::MacAddressIterator::new() {
        let mut network = Vec::new();
        for mac in iter {
            let bytes = mac.bytes();
            // Without sysfs, a universally administered address is our best
            // sign of real hardware; the fingerprint filters the rest anyway.
            network.push(Interface {
                name: None,
                mac: Some(mac.to_string().to_lowercase()),
                physical: Some(bytes[0] & 0x02 == 0),
            });
        }
        facts.network = Some(network);
    }
    super::descriptive_facts(&mut facts);
    facts
}
