//! What only the blocking transport has (everything else is in the shared behaviour suite,
//! `transports/driver/tests/behaviour`): a client around a ureq agent of the caller's.
#![allow(clippy::unwrap_used, missing_docs)]

use box_upload_conformance::{Emulator, Op};
use box_upload_ureq::Client;

#[test]
fn a_client_around_the_callers_agent() {
    let emu = Emulator::builder().start_blocking().unwrap();
    let core = Client::builder().upload_base(emu.upload_base_url()).developer_token("test-token").build().unwrap();
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().new_agent();
    let client = Client::from_parts(core.core().clone(), agent);
    let session = client.create_upload_session("0", "p.bin", 20_000_000).unwrap();
    assert_eq!(client.get_upload_session_by_id(session.id.as_str()).unwrap().id, session.id);
    // Box's error statuses come back as answers through this agent too.
    let err = client.get_upload_session_by_id("0000").unwrap_err();
    assert_eq!(err.box_code(), Some("not_found"), "{err}");
    assert_eq!(emu.counters().requests(Op::GetSession), 2);
    let _: &ureq::Agent = client.agent();
}
