//! The Linux probe: sysfs and `/etc` reads, one file each, no process spawned.

use std::fs;
use std::path::Path;

use super::{Facts, Interface};

pub(super) fn probe() -> Facts {
    let mut facts = Facts::empty();
    facts.machine_id = machine_id();
    facts.product_uuid = read_trimmed(Path::new("/sys/class/dmi/id/product_uuid"));
    facts.board_serial = read_trimmed(Path::new("/sys/class/dmi/id/board_serial"));
    facts.disk_serials = Some(disk_serials());
    facts.network = Some(interfaces());
    super::descriptive_facts(&mut facts);
    facts
}

fn read_trimmed(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// `/etc/machine-id` first (systemd's), then D-Bus's copy, then whatever
/// `machine-uid` finds. Empty and `uninitialized` values are not ids.
fn machine_id() -> Option<String> {
    let valid = |id: String| {
        let id = id.trim().to_owned();
        (!id.is_empty() && id != "uninitialized").then_some(id)
    };
    read_trimmed(Path::new("/etc/machine-id"))
        .and_then(valid)
        .or_else(|| read_trimmed(Path::new("/var/lib/dbus/machine-id")).and_then(valid))
        .or_else(|| machine_uid::get().ok().and_then(valid))
}

/// Serials of fixed disks: SCSI/SATA (`device/serial`) and NVMe controllers.
/// Removable, loop, RAM and device-mapper devices are skipped, and so are
/// paravirtual disks (virtio `vd*`, Xen `xvd*`): their "serial" is whatever the
/// hypervisor's configuration says, identical across a fleet and copied with
/// every clone (this workplace's VMs all report `overlayblk`).
fn disk_serials() -> Vec<String> {
    let mut serials = Vec::new();
    if let Ok(entries) = fs::read_dir("/sys/block") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if [
                "loop", "ram", "zram", "dm-", "sr", "md", "nbd", "nvme", "vd", "xvd",
            ]
            .iter()
            .any(|p| name.starts_with(p))
            {
                continue;
            }
            let dir = entry.path();
            if read_trimmed(&dir.join("removable")).as_deref() == Some("1") {
                continue;
            }
            if let Some(s) = read_trimmed(&dir.join("device/serial")) {
                serials.push(s);
            }
        }
    }
    if let Ok(entries) = fs::read_dir("/sys/class/nvme") {
        for entry in entries.flatten() {
            if let Some(s) = read_trimmed(&entry.path().join("serial")) {
                serials.push(s);
            }
        }
    }
    serials.sort();
    serials.dedup();
    serials
}

/// Every interface with a MAC. `physical` comes from sysfs (a `device` link
/// means a bus device), never from `mac_address`'s first pick, which on a VM is
/// often a virtual `ifb0` with a MAC that changes at every boot.
fn interfaces() -> Vec<Interface> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/sys/class/net") else {
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let mac = mac_address::mac_address_by_name(&name)
            .ok()
            .flatten()
            .map(|m| m.to_string().to_lowercase())
            .or_else(|| read_trimmed(&entry.path().join("address")));
        let Some(mac) = mac else { continue };
        if mac == "00:00:00:00:00:00" {
            continue;
        }
        let physical = entry.path().join("device").exists();
        out.push(Interface {
            name: Some(name),
            mac: Some(mac),
            physical: Some(physical),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
