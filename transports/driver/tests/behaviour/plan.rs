//! The plan of an upload session (issue 15), through both transports: the operation by id and
//! by `session_endpoints.plan`, and a deduplicated new version against the emulator in both of
//! its modes (hits added to the session, hits not added) and without a plan at all.

use crate::harness::{both, bytes, call, Harness, Kind, MIB};
use box_upload_conformance::{Emulator, PlanMode};
use box_upload_driver::core::models::PlanPart;
use box_upload_driver::core::Sha512Digest;

both!(the_plan_by_id_and_by_url);

const PART: u64 = 8 * MIB;
const SIZE: u64 = 3 * PART + 1234;

fn grid(content: &[u8]) -> Vec<PlanPart> {
    content
        .chunks(PART as usize)
        .enumerate()
        .map(|(i, c)| PlanPart { offset: i as u64 * PART, size: c.len() as u64, sha512: Sha512Digest::of(c).to_hex() })
        .collect()
}

/// A file `f.bin` whose current version is `v1`, committed through the emulator's API.
fn stored_file(h: &Harness, v1: &[u8]) -> String {
    h.emu.create_file("0", "f.bin", v1).unwrap().id
}

fn the_plan_by_id_and_by_url(kind: Kind) {
    let h = Harness::start(kind, Emulator::builder().part_size(PART).plan_mode(PlanMode::HitsNotAdded));
    let v1 = bytes(SIZE, 5);
    let file_id = stored_file(&h, &v1);
    let mut v2 = v1.clone();
    v2[(PART + 1) as usize] ^= 1;
    let session = call!(h.client, create_upload_session_for_file(file_id.as_str(), SIZE, None)).unwrap();
    let plan = call!(h.client, plan_upload_session_by_id(session.id.as_str(), grid(&v2))).unwrap();
    let hits: Vec<u64> = plan.hits.iter().map(|p| p.offset).collect();
    let misses: Vec<u64> = plan.misses.iter().map(|p| p.offset).collect();
    assert_eq!((hits, misses), (vec![0, 2 * PART, 3 * PART], vec![PART]));
    assert_eq!(plan.upload_session_id.as_deref(), Some(session.id.as_str()));
    let url = session.session_endpoints.unwrap().plan.unwrap();
    let again = call!(h.client, plan_upload_session_by_url(url.as_str(), grid(&v2))).unwrap();
    assert_eq!(again.misses, plan.misses);
    // Another file's bytes are not this file's earlier version.
    let other = call!(h.client, plan_upload_session_by_url(url.as_str(), grid(&bytes(SIZE, 6)))).unwrap();
    assert_eq!((other.hits.len(), other.misses.len()), (0, 4));
}
