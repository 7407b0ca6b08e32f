//! The core's network rules (issue 14): plain `http://` only to loopback unless allowed, Box's
//! hosts only as `https` on port 443, the token request never in cleartext off loopback, and
//! secrets that never show in `Debug`.
#![allow(clippy::unwrap_used, missing_docs)]

use box_upload_core::operations::GetUploadSession;
use box_upload_core::{
    is_loopback_host, BoxSubject, Client, ClientCredentials, ClientSettings, Config, DeveloperToken, Error, InputError,
    Machine, Secret, TransportErrorKind,
};
use http::Uri;
use std::time::Instant;

fn uri(s: &str) -> Uri {
    s.parse().unwrap()
}

#[test]
fn loopback_hosts_are_localhost_127_and_ipv6_one() {
    for host in ["localhost", "LOCALHOST", "a.localhost", "localhost.", "127.0.0.1", "127.255.0.9", "[::1]", "::1"] {
        assert!(is_loopback_host(host), "{host}");
    }
    for host in ["localhost.example.com", "127.example", "128.0.0.1", "10.0.0.1", "[::2]", "upload.box.com", ""] {
        assert!(!is_loopback_host(host), "{host}");
    }
}

#[test]
fn plain_http_bases_are_refused_off_loopback_unless_allowed() {
    assert!(Config::new().with_upload_base("http://127.0.0.1:8080/api").is_ok());
    assert!(Config::new().with_upload_base("http://localhost:8080/api").is_ok());
    assert!(Config::new().with_upload_base("http://[::1]:8080/api").is_ok());
    for base in ["http://uploads.example.org/api", "http://10.1.2.3:8080/api", "HTTP://upload.box.com/api"] {
        let err = Config::new().with_upload_base(base).unwrap_err();
        assert!(matches!(&err, InputError::InsecureHttp(url) if url.to_ascii_lowercase().contains("/api")), "{err}");
        assert!(err.to_string().contains("cleartext"), "{err}");
        assert!(Config::new().with_insecure_http_allowed(true).with_upload_base(base).is_ok(), "{base}");
    }
    assert!(matches!(Config::new().with_api_base("http://api.example.org"), Err(InputError::InsecureHttp(_))));
    // Through the settings every transport's builder fills.
    let settings = ClientSettings { upload_base: Some("http://uploads.example.org/api".into()), ..Default::default() };
    assert!(matches!(settings.config(1), Err(InputError::InsecureHttp(_))));
    let allowed = ClientSettings { allow_insecure_http: true, ..settings };
    assert_eq!(allowed.config(1).unwrap().upload_base(), "http://uploads.example.org/api");
}

#[test]
fn the_token_goes_to_box_hosts_only_over_https_on_port_443() {
    let config = Config::new();
    let trusted = |c: &Config, u: &str| c.check_trusted(&uri(u), "test").is_ok();
    assert!(trusted(&config, "https://upload.box.com/api/2.0/files"));
    assert!(trusted(&config, "https://upload.box.com:443/api/2.0/files"));
    assert!(trusted(&config, "https://dl.box.com/x"));
    assert!(!trusted(&config, "https://upload.box.com:8443/api/2.0/files"), "another port");
    assert!(!trusted(&config, "http://upload.box.com/api/2.0/files"), "cleartext");
    assert!(!trusted(&config, "http://upload.box.com:443/api"), "cleartext on 443");
    // An allow-listed host never gets plain http off loopback either.
    let listed = Config::new().with_trusted_host("uploads.example.org").with_trusted_host("localhost");
    assert!(trusted(&listed, "https://uploads.example.org/x"));
    assert!(!trusted(&listed, "http://uploads.example.org/x"));
    assert!(trusted(&listed, "http://localhost:9/x"));
    let insecure = Config::new().with_insecure_http_allowed(true).with_trusted_host("uploads.example.org");
    assert!(trusted(&insecure, "http://uploads.example.org/x"));
}

#[test]
fn the_client_secret_is_never_sent_in_cleartext_off_loopback() {
    let now = Instant::now();
    let credentials = |url: &str| {
        ClientCredentials::new("id", "the-client-secret", BoxSubject::Enterprise("1".into()))
            .with_token_url(url)
            .unwrap()
    };
    // Over plain http to another host: nothing is sent, the call fails with the typed error.
    let client = Client::new(Config::new(), credentials("http://auth.example.org/oauth2/token"));
    let mut call = client.call(GetUploadSession::by_id("ABC"));
    assert!(call.poll_transmit(now).is_none(), "no request may leave");
    let err = call.poll_output().expect("failed at once").unwrap_err();
    assert!(matches!(err, Error::Input(InputError::InsecureHttp(_))), "{err}");
    // To loopback it goes, and with insecure http allowed too.
    for (config, url) in [
        (Config::new(), "http://127.0.0.1:9/oauth2/token"),
        (Config::new().with_insecure_http_allowed(true), "http://auth.example.org/oauth2/token"),
    ] {
        let client = Client::new(config, credentials(url));
        let mut call = client.call(GetUploadSession::by_id("ABC"));
        let transmit = call.poll_transmit(now).expect("the token request");
        assert_eq!(transmit.request.uri(), &uri(url));
    }
}

#[test]
fn a_certificate_error_is_not_retried() {
    let e = box_upload_core::TransportError::new(TransportErrorKind::Certificate, "bad certificate");
    assert!(!e.is_retryable());
    assert!(box_upload_core::TransportError::new(TransportErrorKind::Connect, "refused").is_retryable());
}

#[test]
fn secrets_never_show_in_debug() {
    let secret = Secret::new("s3cr3t-value");
    assert!(!format!("{secret:?} {secret}").contains("s3cr3t"));
    assert_eq!(secret.expose(), "s3cr3t-value");
    let dev = DeveloperToken::new("s3cr3t-token");
    assert!(!format!("{dev:?}").contains("s3cr3t"));
    let ccg = ClientCredentials::new("id", "s3cr3t-secret", BoxSubject::User("2".into()));
    assert!(!format!("{ccg:?}").contains("s3cr3t"));
}
