//! Placeholder until the criterion benches land.
fn main() {}
