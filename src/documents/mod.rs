//! The documents that cross between workstation and vendor: licenses, and the
//! activation requests, deactivation requests and receipts of the offline
//! challenge/response flow. Each is made by one side and verified by the other.

pub mod activation;
pub mod lease;
pub mod license;
pub mod time;
