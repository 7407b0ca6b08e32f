//! Stable twins of the fuzz targets in `fuzz/`: the same checks (`fuzz/src/harness.rs`, included
//! here) on proptest's inputs, so they run in every `cargo test`. Cases: `PROPTEST_CASES` overrides.
//!
//! `cargo test -p box-upload-core --test proptest_twins -- --ignored write_response_seeds` rewrites
//! `fuzz/seeds/responses/` from the conformance fixtures' recorded answers.
#![allow(clippy::unwrap_used, missing_docs)]

#[allow(dead_code, unreachable_pub, clippy::unwrap_used, missing_docs)]
#[path = "../../fuzz/src/harness.rs"]
mod harness;

use harness::{AnswerInput, ByteChoices, HEADER_NAMES};
use proptest::collection::vec;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

/// `PROPTEST_CASES` when set (e.g. 5000 for a longer run), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

// ---- content_range_planner ---------------------------------------------------------------------

fn file_size() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 20_000_000u64..=400_000_000_000,
        2 => any::<u64>(),
        1 => (0u64..1000).prop_map(|d| u64::MAX - d),
        1 => 0u64..100,
    ]
}

/// (file_size, part_size, total_parts).
fn plan_input() -> impl Strategy<Value = (u64, u64, u64)> {
    file_size()
        .prop_flat_map(|fs| {
            let ps = prop_oneof![
                4 => (1u64..=20_000).prop_map(move |n| fs.div_ceil(n)),
                1 => any::<u64>(),
                1 => 0u64..64,
                1 => (0u64..1000).prop_map(|d| u64::MAX - d),
            ];
            (Just(fs), ps)
        })
        .prop_flat_map(|(fs, ps)| {
            let right = if ps == 0 { 0 } else { fs.div_ceil(ps) };
            let tp = prop_oneof![
                4 => Just(right),
                2 => (-3i64..=3).prop_map(move |d| right.saturating_add_signed(d)),
                1 => any::<u64>(),
            ];
            (Just(fs), Just(ps), tp)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    #[test]
    fn content_range_planner(
        (fs, ps, tp) in plan_input(),
        order in vec(any::<u16>(), 0..300),
        numbers in any::<(u64, u64, u64)>(),
        text in prop_oneof![
            "bytes [0-9]{1,21}-[0-9]{1,21}/[0-9]{1,21}",
            " ?bytes ?[0-9+-]{0,5}-?[0-9]{0,5}/?[0-9]{0,5} ?",
            any::<String>(),
        ],
    ) {
        harness::check_plan(fs, ps, tp, &order);
        harness::check_content_range_numbers(numbers.0, numbers.1, numbers.2);
        harness::check_content_range_text(&text);
    }
}

#[test]
fn planner_edges() {
    let max = u64::MAX;
    for (fs, ps, tp) in [
        (0, 0, 0),
        (0, 1, 1),
        (1, 0, 1),
        (20_000_000, 1, 20_000_000),
        (20_000_000, 20, 1_000_000),
        (20_000_000, 19, 1_052_632),
        (20_000_000, 8_388_608, 3),
        (20_000_000, 8_388_608, 2),
        (20_000_000, 8_388_608, 4),
        (20_000_000, 10_000_000, 2),
        (max, max, 1),
        (max, max / 2, 3),
        (max, 1 << 63, 2),
        (max, max, max),
        (max, 1, max),
        (max - 1, max, 0),
    ] {
        harness::check_plan(fs, ps, tp, &[3, 1, 4, 1, 5]);
    }
    harness::check_content_range_numbers(max, 1, max);
    harness::check_content_range_numbers(max - 1, 1, max);
    harness::check_content_range_numbers(1, max, max);
    harness::check_content_range_text("bytes 0-18446744073709551614/18446744073709551615");
    harness::check_content_range_text("bytes 0-18446744073709551615/18446744073709551615");
    harness::check_content_range_text("bytes 0-99999999999999999999/1");
}

// ---- responses ---------------------------------------------------------------------------------

fn seed_files() -> Vec<Vec<u8>> {
    let dir = repo().join("fuzz/seeds/responses");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.into_iter().map(|f| std::fs::read(f).unwrap()).collect()
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[0-9]{1,25}".prop_map(String::into_bytes),
        "sha=[A-Za-z0-9+/=]{0,32}(,md5=[a-z]{0,4})?".prop_map(String::into_bytes),
        Just(b"Sun, 06 Nov 1994 08:49:37 GMT".to_vec()),
        Just(b"Wed, 21 Oct 2015 07:28:00 GMT".to_vec()),
        "bytes [0-9]{1,8}-[0-9]{1,8}/[0-9]{1,8}".prop_map(String::into_bytes),
        vec(any::<u8>(), 0..40),
    ]
}

fn answer() -> impl Strategy<Value = AnswerInput> {
    let seeds = seed_files();
    let name = prop_oneof![
        3 => (0..HEADER_NAMES.len()).prop_map(|i| HEADER_NAMES[i].as_bytes().to_vec()),
        1 => vec(any::<u8>(), 0..12),
    ];
    let body = prop_oneof![
        // A recorded answer's body, cut or with bytes changed.
        3 => (0..seeds.len(), any::<usize>(), vec((any::<usize>(), any::<u8>()), 0..3), any::<bool>()).prop_map(
            move |(i, cut, flips, truncate)| {
                let mut body = AnswerInput::decode(&seeds[i]).body;
                if !body.is_empty() {
                    for (at, b) in flips {
                        let at = at % body.len();
                        body[at] = b;
                    }
                    if truncate {
                        body.truncate(cut % body.len());
                    }
                }
                body
            }
        ),
        1 => vec(any::<u8>(), 0..200),
        1 => "\\{\"(part|entries|id|total_count|part_size|code|status|message)\": ?(null|-?[0-9]{1,22}|\"[a-z]{0,4}\"|\\[\\]|\\{\\}|true)\\}"
            .prop_map(String::into_bytes),
    ];
    let status = prop_oneof![
        4 => prop::sample::select(vec![200u16, 201, 202, 204, 301, 302, 400, 401, 404, 409, 412, 416, 429, 500, 503]),
        1 => any::<u16>(),
    ];
    (any::<u8>(), status, vec((name, header_value()), 0..5), body).prop_map(|(op, status, headers, body)| AnswerInput {
        op,
        status,
        headers,
        body,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    #[test]
    fn responses(input in answer()) {
        // Through the byte format too, as the fuzz target sees it.
        let bytes = input.encode();
        prop_assert_eq!(&AnswerInput::decode(&bytes), &input);
        harness::check_answer(&input);
    }

    #[test]
    fn responses_from_bytes(bytes in vec(any::<u8>(), 0..300)) {
        harness::responses(&bytes);
    }
}

#[test]
fn responses_seeds() {
    let seeds = seed_files();
    assert!(seeds.len() >= 20, "fuzz/seeds/responses holds {} seeds", seeds.len());
    for seed in seeds {
        harness::responses(&seed);
    }
}

/// Rewrites `fuzz/seeds/responses/` from the conformance fixtures' recorded answers.
#[test]
#[ignore = "writes fuzz/seeds/responses; run by hand when the fixtures change"]
fn write_response_seeds() {
    let out = repo().join("fuzz/seeds/responses");
    std::fs::create_dir_all(&out).unwrap();
    let mut fixtures: Vec<PathBuf> = Vec::new();
    for source in ["emulator", "official-python"] {
        for entry in std::fs::read_dir(repo().join("conformance/fixtures").join(source)).unwrap() {
            fixtures.push(entry.unwrap().path());
        }
    }
    fixtures.sort();
    let mut written = std::collections::BTreeSet::new();
    for path in fixtures {
        let fixture: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for exchange in fixture["exchanges"].as_array().unwrap() {
            let request = &exchange["request"];
            let response = &exchange["response"];
            let method = request["method"].as_str().unwrap_or("");
            let uri = request["uri"].as_str().unwrap_or("");
            // harness::responses runs `op % 4` as a machine: 0 get, 1 commit, 2 abort, 3 list.
            let op = match (method, uri) {
                ("POST", u) if u.ends_with("/commit") => 1,
                ("DELETE", _) => 2,
                (_, u) if u.contains("/parts") => 3,
                _ => 0,
            };
            let headers = response["headers"]
                .as_object()
                .map(|h| {
                    h.iter()
                        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_str().unwrap_or("").as_bytes().to_vec()))
                        .collect()
                })
                .unwrap_or_default();
            let body = match &response["body"] {
                serde_json::Value::Object(b) if b.contains_key("json") => serde_json::to_vec(&b["json"]).unwrap(),
                serde_json::Value::Object(b) if b.contains_key("text") => {
                    b["text"].as_str().unwrap_or("").as_bytes().to_vec()
                }
                _ => Vec::new(),
            };
            let status = response["status"].as_u64().unwrap_or(200) as u16;
            // AnswerInput::status_code maps 100 + status % 900, so store status - 100.
            let input = AnswerInput { op, status: status - 100, headers, body };
            assert_eq!(input.status_code().as_u16(), status);
            let bytes = input.encode();
            let digest = box_upload_core::Sha1Digest::of(&bytes).to_hex();
            if written.insert(digest.clone()) {
                std::fs::write(out.join(&digest[..16]), &bytes).unwrap();
            }
        }
    }
    assert!(written.len() >= 20);
}

// ---- big_upload --------------------------------------------------------------------------------

/// Mostly cooperative choices, so that runs get far; now and then anything.
fn choices() -> impl Strategy<Value = Vec<u8>> {
    vec(prop_oneof![6 => 0u8..170, 3 => any::<u8>()], 0..600)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(48)))]

    #[test]
    fn big_upload(bytes in choices()) {
        harness::big_upload(ByteChoices::new(&bytes));
    }

    #[test]
    fn big_upload_any_bytes(bytes in vec(any::<u8>(), 0..400)) {
        harness::big_upload(ByteChoices::new(&bytes));
    }
}

#[test]
fn big_upload_cooperative_box_commits() {
    // No choices: a well-behaved Box and source; the run must commit.
    let outcome = harness::big_upload(ByteChoices::new(&[]));
    assert!(outcome.committed, "{outcome:?}");
    // Setup bytes: file size (3), parts (2..=4), parts in flight (1..=4), endpoints (trusted,
    // none, another upload host under box.com).
    for (size, parts, in_flight, endpoints) in
        [(0, 0, 0, 0), (1, 1, 1, 205), (2, 2, 3, 225), (1, 2, 0, 0), (2, 0, 2, 0)]
    {
        let outcome = harness::big_upload(ByteChoices::new(&[size, parts, in_flight, endpoints]));
        assert!(outcome.committed, "{:?}: {outcome:?}", (size, parts, in_flight, endpoints));
    }
    // Resumes (5th byte >= 192) of a session holding the parts of the 6th byte's bit mask.
    for mask in [0u8, 1, 2, 5, 0xff] {
        let outcome = harness::big_upload(ByteChoices::new(&[1, 2, 1, 0, 200, mask]));
        assert!(outcome.committed, "resume with parts {mask:#b}: {outcome:?}");
    }
}

#[test]
fn big_upload_seeds() {
    // Inputs the fuzzer found (fuzz/seeds/big_upload), kept as regressions.
    let dir = repo().join("fuzz/seeds/big_upload");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 4);
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let outcome = harness::big_upload(ByteChoices::new(&bytes));
        // The resumed session answered with an id that is not Box's must be aborted, not left open.
        if f.ends_with("resume_get_session_hostile_id") {
            assert!(!outcome.committed, "{outcome:?}");
        }
    }
}

#[test]
fn big_upload_hostile_endpoints_never_commit() {
    // The 4th setup byte picks the session's endpoints: 230..=255 are foreign, plain http or garbage.
    for endpoints in 230..=255u8 {
        let outcome = harness::big_upload(ByteChoices::new(&[0, 0, 0, endpoints]));
        assert!(!outcome.committed, "{endpoints}: {outcome:?}");
        assert!(outcome.error.is_some());
    }
}
