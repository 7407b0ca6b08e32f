//! Builder settings a user can observe on the wire, the same in both transports: the
//! `User-Agent` sent (the core's by default, the caller's when set), and `trusted_host`: a
//! `session_endpoints` URL on a host not trusted is refused before anything is sent, and
//! reached once the host is trusted.

use crate::harness::{both, build, call, client, fast_retries, Harness, Kind, Rig, MIB};
use box_upload_conformance::Op;
use box_upload_driver::core::{Error as CoreError, USER_AGENT_VALUE};
use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

both!(the_user_agent_is_the_cores_or_the_callers, a_session_url_on_an_untrusted_host_is_refused_until_trusted,);

/// The `User-Agent` of one `GET` sent to a raw server, with `user_agent` set or not.
fn user_agent_sent(kind: Kind, user_agent: Option<&str>) -> Option<String> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        let Some(head) = crate::network::read_head(&mut stream) else { return };
        let head = String::from_utf8_lossy(&head).into_owned();
        let agent = head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("user-agent").then(|| value.trim().to_owned())
        });
        let body = r#"{"type":"error","status":404,"code":"not_found","message":"no"}"#;
        let _ = write!(
            stream,
            "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = tx.send(agent);
    });
    let rig = Rig::new(kind);
    let base = format!("http://{addr}/api");
    let client = build!(&rig, |b| {
        let b = b.developer_token("t").upload_base(base.as_str()).retry_policy(fast_retries());
        match user_agent {
            Some(ua) => b.user_agent(ua),
            None => b,
        }
    })
    .unwrap();
    let _ = call!(client, get_upload_session_by_id("S1"));
    rx.recv_timeout(Duration::from_secs(10)).expect("the server saw the request")
}

fn the_user_agent_is_the_cores_or_the_callers(kind: Kind) {
    assert_eq!(user_agent_sent(kind, None).as_deref(), Some(USER_AGENT_VALUE));
    assert_eq!(user_agent_sent(kind, Some("acme-backup/2.1")).as_deref(), Some("acme-backup/2.1"));
}

fn a_session_url_on_an_untrusted_host_is_refused_until_trusted(kind: Kind) {
    let h = Harness::with_parts(kind, 8 * MIB);
    let session = call!(h.client, create_upload_session("0", "t.bin", 20 * MIB)).unwrap();
    let status = session.session_endpoints.unwrap().status.unwrap();
    // The same emulator under another name: a host the token was not given to.
    let elsewhere = status.replacen("127.0.0.1", "localhost", 1);
    assert_ne!(elsewhere, status, "the emulator's URL names 127.0.0.1: {status}");
    let before = h.emu.counters().requests(Op::GetSession);

    let err = call!(h.client, get_upload_session_by_url(elsewhere.clone())).unwrap_err();
    assert!(matches!(err.core(), Some(CoreError::UntrustedHost(_))), "{err}");
    assert_eq!(h.emu.counters().requests(Op::GetSession), before, "nothing was sent");

    let trusting = client!(&h, |b| b.trusted_host("localhost"));
    let got = call!(trusting, get_upload_session_by_url(elsewhere)).unwrap();
    assert_eq!(got.id, session.id);
    assert_eq!(h.emu.counters().requests(Op::GetSession), before + 1);
}
