//! Criterion benchmark of the core per part (filled in below).
fn main() {}
