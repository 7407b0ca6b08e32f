//! The stable twin of the `plan_answer` fuzz target (`fuzz/src/plan_answer.rs`, included here):
//! the same checks on proptest's inputs, in every `cargo test`.
#![allow(clippy::unwrap_used, missing_docs)]

#[allow(dead_code, unreachable_pub, clippy::unwrap_used, missing_docs)]
#[path = "../../fuzz/src/plan_answer.rs"]
mod plan_answer;

use proptest::collection::vec;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn plan_answers(bytes in vec(any::<u8>(), 0..64)) {
        plan_answer::plan_answer(&bytes);
    }

    #[test]
    fn edited_plan_answers(head in 0x80u8..=0xff, edits in vec(any::<u8>(), 0..16)) {
        let mut input = vec![head];
        input.extend(edits);
        plan_answer::plan_answer(&input);
    }
}

#[test]
fn plan_answer_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/plan_answer");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        plan_answer::plan_answer(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 3, "seeds in fuzz/seeds/plan_answer");
}
