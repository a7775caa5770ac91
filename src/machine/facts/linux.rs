//! The Linux probe: sysfs and `/etc` reads, one file each, no process spawned.

use std::fs;
use std::path::Path;

use super::{Facts, Interface, UserNamespace};

pub(super) fn probe() -> Facts {
    let mut facts = Facts::empty();
    facts.machine_id = machine_id();
    facts.product_uuid = read_trimmed(Path::new("/sys/class/dmi/id/product_uuid"));
    facts.board_serial = read_trimmed(Path::new("/sys/class/dmi/id/board_serial"));
    facts.disk_serials = disk_serials();
    facts.network = interfaces();
    facts.user_namespace = Some(user_namespace());
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

/// Serials of fixed disks: eMMC/virtio-style `device/serial`, SCSI and SATA
/// disks through their unit serial number page (`device/vpd_pg80`, which
/// libata fills with the ATA serial and the kernel makes world-readable; SATA
/// disks have no `device/serial`), and NVMe controllers. Removable, USB, loop,
/// RAM and device-mapper devices are skipped, and so are paravirtual disks
/// (virtio `vd*`, Xen `xvd*`): their "serial" is whatever the hypervisor's
/// configuration says, identical across a fleet and copied with every clone.
/// `None` when `/sys/block` cannot be listed: an empty list is evidence that
/// the machine has no such disk, an unreadable one is not.
fn disk_serials() -> Option<Vec<String>> {
    let mut serials = Vec::new();
    let entries = fs::read_dir("/sys/block").ok()?;
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
        let on_usb = fs::canonicalize(&dir).is_ok_and(|p| p.to_string_lossy().contains("/usb"));
        if on_usb || read_trimmed(&dir.join("removable")).as_deref() == Some("1") {
            continue;
        }
        let serial = read_trimmed(&dir.join("device/serial")).or_else(|| {
            fs::read(dir.join("device/vpd_pg80"))
                .ok()
                .and_then(|page| unit_serial(&page))
        });
        serials.extend(serial);
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
    Some(serials)
}

/// The serial in a SCSI "Unit Serial Number" VPD page (SPC-4 7.8.19): a
/// 4-byte header whose byte 1 is the page code 0x80 and bytes 2..4 the length,
/// then that many ASCII bytes, space- or NUL-padded.
fn unit_serial(page: &[u8]) -> Option<String> {
    let [_, 0x80, hi, lo, rest @ ..] = page else {
        return None;
    };
    let len = usize::from(u16::from_be_bytes([*hi, *lo]));
    let text = String::from_utf8_lossy(rest.get(..len)?);
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!text.is_empty()).then(|| text.to_owned())
}

/// Whether this process sees the host's own user namespace. The kernel writes
/// `/proc/self/uid_map` for the reader; only the initial namespace (or one
/// root made with the same full mapping) maps every id to itself. The file is
/// opened from a descriptor proved to be procfs and without crossing a mount,
/// so a bind mount over `/proc` or over the file in a namespace the user owns
/// reads as [`UserNamespace::Nested`], as does anything that cannot be proved.
fn user_namespace() -> UserNamespace {
    match uid_map() {
        Ok(map) if map.split_whitespace().eq(["0", "0", "4294967295"]) => UserNamespace::Initial,
        Ok(_) => UserNamespace::Nested,
        Err(Probe::Unsupported) => namespace_inode(),
        Err(Probe::Unproved) => UserNamespace::Nested,
    }
}

/// Why `uid_map` gave no answer.
enum Probe {
    /// `openat2` is missing (kernels before 5.6) or filtered (older container
    /// seccomp profiles): ask another way.
    Unsupported,
    /// Something is in the way that the host would not have put there.
    Unproved,
}

fn uid_map() -> Result<String, Probe> {
    use rustix::fs::{Mode, OFlags, PROC_SUPER_MAGIC, ResolveFlags, fstatfs, openat2};
    use rustix::io::Errno;
    use std::io::Read as _;

    let classify = |e: Errno| {
        if e == Errno::NOSYS || e == Errno::PERM {
            Probe::Unsupported
        } else {
            Probe::Unproved
        }
    };
    let is_procfs = |fd: &std::os::fd::OwnedFd| fstatfs(fd).is_ok_and(|st| st.f_type == PROC_SUPER_MAGIC);
    let proc_dir = openat2(
        rustix::fs::CWD,
        "/proc",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::empty(),
    )
    .map_err(classify)?;
    if !is_procfs(&proc_dir) {
        return Err(Probe::Unproved);
    }
    let map = openat2(
        &proc_dir,
        "self/uid_map",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_XDEV,
    )
    .map_err(classify)?;
    if !is_procfs(&map) {
        return Err(Probe::Unproved);
    }
    let mut text = String::new();
    fs::File::from(map)
        .take(4096)
        .read_to_string(&mut text)
        .map_err(|_| Probe::Unproved)?;
    Ok(text)
}

/// The fallback without `openat2`: `/proc/self/ns/user` is a file of the
/// namespace filesystem whose inode number names the namespace, and the
/// initial user namespace's is fixed (`PROC_USER_INIT_INO`, 0xEFFFFFFD). A
/// bind mount would have to sit on this very process's `/proc/<pid>`, which
/// did not exist before it started.
#[allow(
    clippy::useless_conversion,
    reason = "statfs and stat field types differ between architectures"
)]
fn namespace_inode() -> UserNamespace {
    use rustix::fs::{Mode, OFlags, fstat, fstatfs, open};

    const NSFS_MAGIC: i64 = 0x6e73_6673;
    const PROC_USER_INIT_INO: u64 = 0xEFFF_FFFD;
    let Ok(fd) = open(
        "/proc/self/ns/user",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return UserNamespace::Nested;
    };
    let on_nsfs = fstatfs(&fd).is_ok_and(|st| i64::from(st.f_type) == NSFS_MAGIC);
    let initial = fstat(&fd).is_ok_and(|st| u64::from(st.st_ino) == PROC_USER_INIT_INO);
    if on_nsfs && initial {
        UserNamespace::Initial
    } else {
        UserNamespace::Nested
    }
}

/// Every interface with a MAC. `physical` comes from sysfs (a `device` link
/// means a bus device), never from `mac_address`'s first pick, which on a VM is
/// often a virtual `ifb0` with a MAC that changes at every boot.
fn interfaces() -> Option<Vec<Interface>> {
    let mut out = Vec::new();
    let entries = fs::read_dir("/sys/class/net").ok()?;
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
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_serial_page_is_read_by_its_length() {
        let mut page = vec![0x00, 0x80, 0x00, 0x14];
        page.extend_from_slice(b"   WD-WCC4N1234567\0\0");
        assert_eq!(unit_serial(&page).as_deref(), Some("WD-WCC4N1234567"));
        // Another page, a short page, an empty serial: nothing.
        assert_eq!(unit_serial(&[0x00, 0x83, 0x00, 0x02, b'a', b'b']), None);
        assert_eq!(unit_serial(&[0x00, 0x80, 0x00, 0x09, b'a']), None);
        assert_eq!(unit_serial(&[0x00, 0x80, 0x00, 0x02, b' ', 0]), None);
    }

    #[test]
    fn the_fallback_without_openat2_agrees_with_the_uid_map() {
        assert_eq!(namespace_inode(), user_namespace());
    }

    #[test]
    fn this_process_is_in_the_namespace_the_test_runs_in() {
        // CI runs in the host's namespace; under `unshare -r` this must say nested.
        let expected = match fs::read_to_string("/proc/self/uid_map") {
            Ok(map) if map.split_whitespace().eq(["0", "0", "4294967295"]) => UserNamespace::Initial,
            _ => UserNamespace::Nested,
        };
        assert_eq!(user_namespace(), expected);
    }
}
