//! The `box-upload` command.
fn main() {}
