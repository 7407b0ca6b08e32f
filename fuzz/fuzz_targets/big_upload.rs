//! The whole big-upload machine driven by arbitrary answers, reads and time, in arbitrary order;
//! then by a cooperative Box, which must see it finish. See `harness::big_upload`.
#![no_main]

use box_upload_fuzz::{harness, Unstructured};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _outcome = harness::big_upload(Unstructured(arbitrary::Unstructured::new(data)));
});
