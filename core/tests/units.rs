//! The small public helpers: digests, Content-Range, Retry-After, token caching and redaction,
//! trusted hosts, and parsing of Box's answers.
#![allow(clippy::unwrap_used, missing_docs)]

use box_upload_core::bytes::Bytes;
use box_upload_core::http::{HeaderMap, HeaderValue, Response, Uri};
use box_upload_core::models::FileFull;
use box_upload_core::operations::{CommitResponse, CommitUploadSession, GetUploadSession, Operation};
use box_upload_core::*;
use std::time::{Duration, Instant};

#[test]
fn digest_header_round_trip_and_errors() {
    let d = Sha1Digest::of(b"abc");
    assert_eq!(d.to_hex(), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(d.header_value(), "sha=qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
    assert_eq!(Sha1Digest::parse_header(&d.header_value()).unwrap(), d);
    assert_eq!(Sha1Digest::parse_header("SHA=qZk+NkcGgWq6PiVxeFDCbJzQ2J0=, md5=xyz").unwrap(), d);
    assert_eq!(Sha1Digest::from_hex("A9993E364706816ABA3E25717850C26C9CD0D89D").unwrap(), d);
    assert_eq!(Sha1Digest::parse_header("md5=abc"), Err(DigestError::NoSha));
    assert_eq!(Sha1Digest::parse_header("sha=!!!"), Err(DigestError::BadBase64));
    assert_eq!(Sha1Digest::parse_header("sha=YWJj"), Err(DigestError::WrongLength));
    assert_eq!(Sha1Digest::from_hex("xyz"), Err(DigestError::BadHex));
    assert_eq!(Sha1Digest::from_hex(&"g".repeat(40)), Err(DigestError::BadHex));
}

#[test]
fn content_range_round_trip_and_errors() {
    let r = ContentRange::new(8_388_608, 8_388_608, 20_000_000).unwrap();
    assert_eq!(r.to_string(), "bytes 8388608-16777215/20000000");
    assert_eq!(r.to_string().parse::<ContentRange>().unwrap(), r);
    assert_eq!(r.size(), 8_388_608);
    assert_eq!(ContentRange::new(0, 0, 10), Err(ContentRangeError::Empty));
    assert_eq!(ContentRange::new(5, 6, 10), Err(ContentRangeError::OutOfBounds));
    assert_eq!(ContentRange::new(u64::MAX, 2, u64::MAX), Err(ContentRangeError::OutOfBounds));
    for bad in ["bytes 1-2", "bytes -2/3", "items 0-1/5", "bytes 0-+1/5", "bytes a-1/5", ""] {
        assert_eq!(bad.parse::<ContentRange>(), Err(ContentRangeError::Syntax), "{bad}");
    }
    assert_eq!("bytes 5-4/10".parse::<ContentRange>(), Err(ContentRangeError::OutOfBounds));
    assert_eq!("bytes 0-10/10".parse::<ContentRange>(), Err(ContentRangeError::OutOfBounds));
}

#[test]
fn planner_uses_the_session_numbers() {
    let plan = PartPlan::new(20_000_001, 8 << 20).unwrap();
    assert_eq!(plan.len(), 3);
    assert_eq!(plan.part(2).unwrap().size, 20_000_001 - 2 * (8 << 20));
    assert_eq!(plan.part_at(8 << 20).unwrap().index, 1);
    assert!(plan.part_at(1).is_none());
    assert_eq!(PartPlan::new(10, 0), Err(PlanError::ZeroPartSize));
    assert!(matches!(PartPlan::new(u64::MAX, 1), Err(PlanError::TooManyParts { .. })));
    let session = models::UploadSession { part_size: Some(8 << 20), total_parts: Some(2), ..Default::default() };
    assert!(matches!(PartPlan::for_session(20_000_001, &session), Err(PlanError::SessionTooSmall { .. })));
    let session = models::UploadSession { part_size: Some(8 << 20), total_parts: Some(4), ..Default::default() };
    assert!(matches!(PartPlan::for_session(20_000_001, &session), Err(PlanError::TotalPartsMismatch { .. })));
    let session = models::UploadSession { part_size: None, total_parts: Some(4), ..Default::default() };
    assert_eq!(PartPlan::for_session(20_000_001, &session), Err(PlanError::MissingPartSize));
}

#[test]
fn retry_after_seconds_and_dates() {
    let mut h = HeaderMap::new();
    assert_eq!(retry_after(&h), None);
    h.insert("retry-after", HeaderValue::from_static("17"));
    assert_eq!(retry_after(&h), Some(Duration::from_secs(17)));
    h.insert("retry-after", HeaderValue::from_static("Wed, 25 Nov 2026 06:01:00 GMT"));
    assert_eq!(retry_after(&h), None, "a date without the answer's Date cannot be placed");
    h.insert("date", HeaderValue::from_static("Wed, 25 Nov 2026 06:00:00 GMT"));
    assert_eq!(retry_after(&h), Some(Duration::from_secs(60)));
    h.insert("date", HeaderValue::from_static("Wed, 25 Nov 2026 07:00:00 GMT"));
    assert_eq!(retry_after(&h), Some(Duration::ZERO), "a date in the past means now");
    h.insert("retry-after", HeaderValue::from_static("soon"));
    assert_eq!(retry_after(&h), None);
}

#[test]
fn backoff_is_exponential_bounded_and_jittered() {
    let policy = RetryPolicy::default();
    let mut j = Jitter::new(1);
    for retry in 1..=40 {
        let d = policy.backoff(retry, &mut j);
        let base = Duration::from_secs(1).saturating_mul(1 << (retry - 1).min(30)).min(policy.max_backoff);
        assert!(d >= base / 2 && d < base * 3 / 2, "retry {retry}: {d:?} vs {base:?}");
    }
}

fn token_answer(body: &str, status: u16) -> Response<Bytes> {
    Response::builder().status(status).body(Bytes::from(body.to_owned())).unwrap()
}

#[test]
fn client_credentials_cache_until_shortly_before_expiry() {
    let mut ccg = ClientCredentials::new("id", "s3cret", BoxSubject::User("7".into()))
        .with_token_url("http://127.0.0.1:9/oauth2/token")
        .unwrap();
    let t0 = Instant::now();
    assert!(matches!(ccg.poll_token(t0).unwrap(), TokenPoll::Fetch(_)));
    ccg.handle_token_response(token_answer(r#"{"access_token":"T1","expires_in":600,"token_type":"bearer"}"#, 200), t0)
        .unwrap();
    match ccg.poll_token(t0 + Duration::from_secs(539)).unwrap() {
        TokenPoll::Ready(t) => {
            assert_eq!(t.secret(), "T1");
            assert_eq!(format!("{t:?}"), "AccessToken(<redacted>)");
            assert_eq!(t.to_string(), "<redacted>");
        }
        other => panic!("{other:?}"),
    }
    // 60 s before expiry it fetches again.
    assert!(matches!(ccg.poll_token(t0 + Duration::from_secs(541)).unwrap(), TokenPoll::Fetch(_)));
    // A 401 drops the cached token.
    ccg.handle_token_response(token_answer(r#"{"access_token":"T2","expires_in":600}"#, 200), t0).unwrap();
    assert!(ccg.invalidate(&AccessToken::new("T2")));
    assert!(matches!(ccg.poll_token(t0).unwrap(), TokenPoll::Fetch(_)));
    assert!(!format!("{ccg:?}").contains("s3cret"));
}

#[test]
fn client_credentials_errors_are_typed() {
    let mut ccg = ClientCredentials::new("id", "s", BoxSubject::Enterprise("1".into()));
    let t0 = Instant::now();
    let refused = ccg
        .handle_token_response(token_answer(r#"{"error":"invalid_client","error_description":"bad"}"#, 400), t0)
        .unwrap_err();
    assert!(matches!(refused, AuthError::Refused(ref e) if e.status == 400));
    let bad = ccg.handle_token_response(token_answer("{not json", 200), t0).unwrap_err();
    assert!(matches!(bad, AuthError::BadTokenResponse(_)));
    assert!(matches!(
        ClientCredentials::new("a", "b", BoxSubject::User("1".into())).with_token_url("ftp://x"),
        Err(AuthError::BadTokenUrl(_))
    ));
}

#[test]
fn trusted_hosts() {
    let config =
        Config::new().with_upload_base("http://127.0.0.1:8080/api").unwrap().with_trusted_host("uploads.example.org");
    let ok = |u: &str| config.check_trusted(&u.parse::<Uri>().unwrap(), "test").is_ok();
    assert!(ok("http://127.0.0.1:8080/api/2.0/files/upload_sessions/1"));
    assert!(!ok("http://127.0.0.1:8081/api"), "another port of the base host is another service");
    assert!(!ok("https://127.0.0.1:8080/api"));
    assert!(ok("https://upload.box.com/api"));
    assert!(ok("https://dl.upload.box.com/api"));
    assert!(!ok("http://upload.box.com/api"), "box.com only over https");
    assert!(!ok("https://upload.box.com.evil.net/api"));
    assert!(!ok("https://evilbox.com/api"));
    assert!(ok("https://uploads.example.org/x"));
    let strict = Config::new().with_box_hosts_trusted(false);
    assert!(strict.check_trusted(&"https://upload.box.com/api".parse::<Uri>().unwrap(), "t").is_ok());
    assert!(strict.check_trusted(&"https://dl.box.com/api".parse::<Uri>().unwrap(), "t").is_err());
    assert!(Config::new().with_upload_base("ftp://x").is_err());
    assert!(Config::new().with_upload_base("not a url").is_err());
}

#[test]
fn errors_keep_boxs_fields() {
    let op = GetUploadSession::by_id("abc");
    let body = r#"{"type":"error","status":404,"code":"not_found","message":"Not Found","request_id":"r-9","help_url":"https://developer.box.com","context_info":{"x":1},"extra":true}"#;
    let err = op.parse(token_answer(body, 404)).unwrap_err();
    let Error::Api(e) = &err else { panic!("{err:?}") };
    assert_eq!(
        (e.status, e.code(), e.message(), e.request_id()),
        (404, Some("not_found"), Some("Not Found"), Some("r-9"))
    );
    assert_eq!(err.to_string(), "get upload session: Box answered 404 not_found: Not Found (request id r-9)");
    // A body that is not Box's error still gives the status and a message.
    let err = op.parse(token_answer("<html>bad gateway</html>", 502)).unwrap_err();
    assert!(matches!(&err, Error::Api(e) if e.status == 502 && e.message() == Some("<html>bad gateway</html>")));
    // Truncated JSON on a 200 is a protocol error.
    let err = op.parse(token_answer(r#"{"id":"abc","part_size":"#, 200)).unwrap_err();
    assert!(matches!(err, Error::Protocol(ProtocolError::BadJson { status: 200, .. })));
    // Unknown fields never fail; missing ones are None.
    let s = op.parse(token_answer(r#"{"id":"abc","brand_new":[1,2]}"#, 200)).unwrap();
    assert_eq!((s.id.as_str(), s.part_size), ("abc", None));
    // A redirect is never followed, and is an error.
    let r = Response::builder().status(302).header("location", "https://evil.example").body(Bytes::new()).unwrap();
    assert!(matches!(op.parse(r), Err(Error::Protocol(ProtocolError::UnexpectedStatus { status: 302, .. }))));
}

#[test]
fn commit_answers() {
    let op = CommitUploadSession::by_id("abc", vec![], Sha1Digest::of(b""));
    let r = Response::builder().status(202).header("retry-after", "5").body(Bytes::new()).unwrap();
    assert_eq!(op.parse(r).unwrap(), CommitResponse::NotReady { retry_after: Some(Duration::from_secs(5)) });
    let r = Response::builder().status(202).body(Bytes::new()).unwrap();
    assert_eq!(op.parse(r).unwrap(), CommitResponse::NotReady { retry_after: None });
    let body = r#"{"entries":[{"id":"9","type":"file","etag":"1","size":20000000,"sha1":"ab","file_version":{"type":"file_version","id":"3"},"parent":null,"shared_link":null}],"total_count":1}"#;
    let CommitResponse::Committed(files) = op.parse(token_answer(body, 201)).unwrap() else { panic!() };
    let file: &FileFull = &files.entries[0];
    assert_eq!((file.id.as_str(), file.etag.as_deref(), file.size), ("9", Some("1"), Some(20_000_000)));
    assert!(file.parent.is_none());
    assert!(file.extra.contains_key("shared_link"));
}

#[test]
fn input_is_checked_before_any_request() {
    use box_upload_core::operations::*;
    assert_eq!(
        CreateUploadSession::new("0", "f", 19_999_999).unwrap_err(),
        InputError::FileTooSmall { size: 19_999_999 }
    );
    assert!(CreateUploadSession::new("0", "f", 20_000_000).is_ok());
    for bad in ["", ".", "..", "a/b", "a\\b", "trailing ", "nul\u{0}"] {
        assert!(matches!(CreateUploadSession::new("0", bad, 20_000_000), Err(InputError::BadName { .. })), "{bad:?}");
    }
    assert!(CreateUploadSession::new("0", "é".repeat(255), 20_000_000).is_ok());
    assert!(CreateUploadSession::new("0", "é".repeat(256), 20_000_000).is_err());
    assert!(matches!(CreateUploadSession::new("../0", "f", 20_000_000), Err(InputError::BadId { .. })));
    assert!(matches!(ListUploadSessionParts::by_id("a").with_limit(1001), Err(InputError::LimitTooLarge(1001))));
    // A bad session id or URL comes out of the machine with no request sent.
    let client = Client::new(Config::new(), DeveloperToken::new("t"));
    let mut call = client.call(GetUploadSession::by_id("a/../b"));
    assert!(call.poll_transmit(Instant::now()).is_none());
    assert!(matches!(call.poll_output(), Some(Err(Error::Input(InputError::BadId { .. })))));
    let mut call = client.call(GetUploadSession::by_url("https://evil.example.com/x"));
    assert!(call.poll_transmit(Instant::now()).is_none());
    assert!(matches!(call.poll_output(), Some(Err(Error::UntrustedHost(_)))));
}

#[test]
fn commit_sends_attributes_when_given() {
    let mut attributes = serde_json::Map::new();
    attributes.insert("content_modified_at".into(), serde_json::json!("2017-04-08T00:58:08Z"));
    let op = CommitUploadSession::by_id("abc", vec![], Sha1Digest::of(b"")).with_attributes(attributes);
    let request = op.request(&Config::new()).unwrap();
    let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
    assert_eq!(body, serde_json::json!({"parts": [], "attributes": {"content_modified_at": "2017-04-08T00:58:08Z"}}));
    let plain = CommitUploadSession::by_id("abc", vec![], Sha1Digest::of(b"")).request(&Config::new()).unwrap();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(plain.body()).unwrap(), serde_json::json!({"parts": []}));
}

#[test]
fn file_fingerprints_round_trip() {
    let at = std::time::UNIX_EPOCH + Duration::new(1_700_000_000, 5);
    let fp = FileFingerprint::new("/data/a b/c path=d.bin", 20_000_001, Some(at));
    let text = fp.to_string();
    assert_eq!(text, "file/1 size=20000001 mtime=1700000000.000000005 path=/data/a b/c path=d.bin");
    assert_eq!(text.parse::<FileFingerprint>().unwrap(), fp);
    let unknown = FileFingerprint::new("/x", 1, None);
    assert_eq!(unknown.to_string().parse::<FileFingerprint>().unwrap(), unknown);
    for bad in ["", "file:/x:size=1", "file/1 size=x mtime=unknown path=/x", "file/1 size=1 mtime=1.2000000000 path=/x"]
    {
        assert_eq!(bad.parse::<FileFingerprint>(), Err(FingerprintError), "{bad:?}");
    }
}

#[test]
fn client_settings_make_the_config_and_seeds_differ() {
    use box_upload_core::{random_jitter_seed, ClientSettings, InputError, RetryPolicy};
    let settings = ClientSettings {
        upload_base: Some("http://127.0.0.1:9/api/".into()),
        api_base: None,
        trusted_hosts: vec!["proxy.example".into()],
        allow_insecure_http: false,
        user_agent: Some("ua/1".into()),
        retry: Some(RetryPolicy { max_retries: 2, ..RetryPolicy::default() }),
        max_response_bytes: Some(1234),
        max_part_size: Some(64 << 20),
        parts_in_flight: Some(3),
    };
    let config = settings.config(42).unwrap();
    assert_eq!(config.upload_base(), "http://127.0.0.1:9/api");
    // No API base given: the upload base's origin.
    assert_eq!(config.api_base(), "http://127.0.0.1:9");
    assert_eq!(config.retry.max_retries, 2);
    assert_eq!(config.max_response_bytes, 1234);
    assert_eq!(config.max_part_size, 64 << 20);
    assert_eq!(ClientSettings::default().config(1).unwrap().max_part_size, box_upload_core::DEFAULT_MAX_PART_SIZE);
    assert_eq!(config.jitter_seed, 42);
    let uri: box_upload_core::http::Uri = "https://proxy.example/x".parse().unwrap();
    assert!(config.check_trusted(&uri, "test").is_ok());
    let bad = ClientSettings { upload_base: Some("ftp://x".into()), ..ClientSettings::default() };
    assert!(matches!(bad.config(1), Err(InputError::BadUrl(_))));
    let bad = ClientSettings { user_agent: Some("bad\nua".into()), ..ClientSettings::default() };
    assert!(bad.config(1).is_err());
    assert_ne!(random_jitter_seed(), random_jitter_seed());
}
