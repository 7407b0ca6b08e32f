//! The checks behind the fuzz targets. `harness.rs` depends only on box-upload-core (and its
//! dependencies), so `core/tests/proptest_twins.rs` includes the same file and runs the same checks
//! on stable under `cargo test`.

#[allow(clippy::unwrap_used, missing_docs)]
pub mod harness;
/// The plan answer's checks (issue 15), also run by `core/tests/plan_answer_twin.rs`.
#[allow(clippy::unwrap_used, missing_docs)]
pub mod plan_answer;

/// Feeds the harness's choices from libFuzzer's bytes through `arbitrary`.
pub struct Unstructured<'a>(pub arbitrary::Unstructured<'a>);

impl harness::Choices for Unstructured<'_> {
    fn next_byte(&mut self) -> Option<u8> {
        if self.0.is_empty() {
            None
        } else {
            self.0.arbitrary::<u8>().ok()
        }
    }
}
