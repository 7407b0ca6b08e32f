//! Arbitrary answers to the plan of an upload session: never a panic, never a hit or a miss for
//! a part not asked about. Input format: see `plan_answer::plan_answer`.
#![no_main]

use box_upload_fuzz::plan_answer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| plan_answer::plan_answer(data));
