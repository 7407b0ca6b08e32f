//! Arbitrary status, headers and body as the answer to every operation, and to `api_error`,
//! `retry_after` and `Sha1Digest::parse_header`: never a panic, typed errors only.
//! Input format: see `harness::AnswerInput` (seeds in fuzz/seeds/responses).
#![no_main]

use box_upload_fuzz::harness;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| harness::responses(data));
