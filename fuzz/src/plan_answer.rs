//! The plan of an upload session's answer (issue 15), checked against the parts asked about:
//! never a panic, and an answer that parses names every part asked about exactly once, as a hit
//! (with a `part_id` of Box's form) or a miss, with the offset, size and SHA-512 sent.
//!
//! Input: the first byte says how many parts are asked about (1 to 8) and how the body is made:
//! the rest of the bytes as the body itself, or a well-formed answer with edits the bytes choose
//! (a part dropped, answered twice, moved, resized, rehashed, its `part_id` changed).

use box_upload_core::bytes::Bytes;
use box_upload_core::http::{Response, StatusCode};
use box_upload_core::models::PlanPart;
use box_upload_core::operations::{Operation, PlanUploadSession};
use box_upload_core::{Error, ProtocolError, Sha512Digest};
use serde_json::{json, Value};

const PART: u64 = 8 << 20;

/// Runs the check on `data`.
pub fn plan_answer(data: &[u8]) {
    let (&head, rest) = data.split_first().unwrap_or((&0, &[]));
    let count = usize::from(head % 8) + 1;
    let asked: Vec<PlanPart> = (0..count as u64)
        .map(|i| PlanPart { offset: i * PART, size: PART, sha512: Sha512Digest::of(&i.to_le_bytes()).to_hex() })
        .collect();
    let body = if head & 0x80 == 0 { rest.to_vec() } else { edited_answer(&asked, rest) };
    let status = if head & 0x40 == 0 {
        StatusCode::OK
    } else {
        StatusCode::from_u16(200 + u16::from(head % 7)).unwrap_or(StatusCode::OK)
    };
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    let op = PlanUploadSession::by_id("S1", asked.clone()).expect("a valid plan request");
    match op.parse(response) {
        Ok(plan) => {
            let mut seen = std::collections::HashSet::new();
            for hit in &plan.hits {
                let ours = asked.iter().find(|p| p.offset == hit.offset).expect("a hit not asked about");
                assert_eq!(hit.size, ours.size, "hit size");
                assert_eq!(Sha512Digest::from_hex(&hit.sha512).ok(), Sha512Digest::from_hex(&ours.sha512).ok());
                assert!(!hit.part_id.is_empty() && hit.part_id.len() <= 128, "part_id");
                assert!(seen.insert(hit.offset), "answered twice");
            }
            for miss in &plan.misses {
                let ours = asked.iter().find(|p| p.offset == miss.offset).expect("a miss not asked about");
                assert_eq!(miss.size, ours.size, "miss size");
                assert!(seen.insert(miss.offset), "answered twice");
            }
            assert_eq!(seen.len(), asked.len(), "a part left unanswered");
        }
        Err(Error::Protocol(ProtocolError::BadPlan { detail })) => assert!(detail.len() < 1000, "bounded detail"),
        Err(Error::Protocol(ProtocolError::BadJson { .. } | ProtocolError::UnexpectedStatus { .. })) => {}
        Err(Error::Api(_)) => assert!(!status.is_success()),
        Err(other) => panic!("unexpected error for a plan answer: {other:?}"),
    }
}

/// A well-formed answer for `asked`, then edits chosen by `bytes`.
fn edited_answer(asked: &[PlanPart], bytes: &[u8]) -> Vec<u8> {
    let mut hits = Vec::new();
    let mut misses = Vec::new();
    for (i, p) in asked.iter().enumerate() {
        let choice = bytes.get(i).copied().unwrap_or(0);
        let mut entry = json!({"offset": p.offset, "size": p.size, "sha512": p.sha512});
        match choice % 8 {
            0 => {}
            1 => entry["offset"] = json!(p.offset + u64::from(choice)),
            2 => entry["size"] = json!(p.size.wrapping_sub(u64::from(choice))),
            3 => entry["sha512"] = json!(Sha512Digest::of(&[choice]).to_hex()),
            4 => continue,
            5 => misses.push(entry.clone()),
            6 => entry["sha512"] = json!(p.sha512.to_uppercase()),
            _ => entry["offset"] = json!(-1),
        }
        if choice & 0x80 != 0 {
            let id = match (choice >> 3) % 4 {
                0 => json!("6F2D3486"),
                1 => json!(""),
                2 => json!("../x"),
                _ => json!(7),
            };
            entry["part_id"] = id;
            hits.push(entry);
        } else {
            misses.push(entry);
        }
    }
    let session = match bytes.get(asked.len()).copied().unwrap_or(0) % 3 {
        0 => Value::Null,
        1 => json!("S1"),
        _ => json!("OTHER"),
    };
    serde_json::to_vec(&json!({"upload_session_id": session, "hits": hits, "misses": misses})).unwrap_or_default()
}
