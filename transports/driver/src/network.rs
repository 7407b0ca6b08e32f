//! Where a request's connection goes and whom it trusts, decided once above the wire for every
//! transport: which proxy a URL goes through (curl's rules: `https_proxy`, `http_proxy`,
//! `all_proxy` and `no_proxy`, loopback never proxied unless asked), and which certificates
//! are roots of trust (the platform's, Mozilla's, and the caller's CA files). A wire only
//! applies the answer: it tunnels through [`ProxyRules::proxy_for`]'s proxy with `CONNECT`, and
//! builds its TLS root store from [`root_certificates`].

use crate::Error;
use box_upload_core::{is_loopback_host, Secret, TransportError, TransportErrorKind};
use http::{HeaderValue, Uri};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The port of a proxy URL that names none (curl's).
pub const DEFAULT_PROXY_PORT: u16 = 1080;

/// Which proxy a client uses ([`ClientBuilder::proxy`](crate::ClientBuilder::proxy)).
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxySetting {
    /// curl's environment variables (the default): `https_proxy` / `HTTPS_PROXY` for `https`
    /// URLs, `http_proxy` (lower case only, as curl) for `http` URLs, else `all_proxy` /
    /// `ALL_PROXY`; hosts in `no_proxy` / `NO_PROXY` go direct. Lower case wins.
    #[default]
    Environment,
    /// No proxy at all, whatever the environment says.
    Direct,
    /// This proxy (`http://[user:password@]host[:port]`) for every URL but those in
    /// `no_proxy` / `NO_PROXY`.
    Url(Secret),
}

impl fmt::Debug for ProxySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySetting::Environment => f.write_str("Environment"),
            ProxySetting::Direct => f.write_str("Direct"),
            // The URL may carry a password.
            ProxySetting::Url(url) => match Proxy::parse(url.expose()) {
                Ok(proxy) => write!(f, "Url({proxy})"),
                Err(_) => f.write_str("Url(<invalid>)"),
            },
        }
    }
}

/// An HTTP proxy reached with `CONNECT`: its host and port, and the credentials (if any) that go
/// to it alone, in `Proxy-Authorization`. `Display` and `Debug` never show the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    host: String,
    port: u16,
    username: Option<Secret>,
    password: Option<Secret>,
}

impl Proxy {
    /// Parses `http://[user:password@]host[:port][/]` (the scheme may be left out; the port
    /// defaults to 1080, as in curl; user and password are percent-decoded). Other schemes
    /// (`https://`, `socks5://`, ...) are refused. The error never repeats the URL, which may
    /// hold a password.
    ///
    /// ```
    /// use box_upload_driver::Proxy;
    /// let proxy = Proxy::parse("http://alice:p%40ss@proxy.example:3128").unwrap();
    /// assert_eq!((proxy.host(), proxy.port()), ("proxy.example", 3128));
    /// assert_eq!(proxy.password().map(|p| p.expose()), Some("p@ss"));
    /// assert_eq!(proxy.to_string(), "http://proxy.example:3128");
    /// assert!(Proxy::parse("socks5://proxy.example:1080").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<Self, Error> {
        let url = url.trim();
        let rest = match url.find("://") {
            Some(at) if url[..at].eq_ignore_ascii_case("http") => &url[at + 3..],
            Some(at) => {
                return Err(Error::Config(format!(
                    "{}:// proxies are not supported (only http:// proxies, reached with CONNECT)",
                    printable(&url[..at])
                )))
            }
            None => url,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let bad = |why: &str| Error::Config(format!("the proxy URL is not valid: {why}"));
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let end = v6.find(']').ok_or_else(|| bad("an IPv6 address without its closing ']'"))?;
            let host = &v6[..end];
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("the IPv6 address does not parse"));
            }
            let port = match &v6[end + 1..] {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("text after the IPv6 address"))?),
            };
            (format!("[{host}]"), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (hostport.to_owned(), None),
            }
        };
        let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '[' | ']' | ':');
        if host.is_empty() || !host.chars().all(name_ok) {
            return Err(bad("no host name"));
        }
        let port = match port {
            None | Some("") => DEFAULT_PROXY_PORT,
            Some(p) => p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| bad("the port is not a number"))?,
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, pass) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                let decode =
                    |s: &str| percent_decode(s).ok_or_else(|| bad("the credentials are not percent-encoded UTF-8"));
                (Some(Secret::new(decode(user)?)), pass.map(decode).transpose()?.map(Secret::new))
            }
        };
        Ok(Self { host: host.to_ascii_lowercase(), port, username, password })
    }

    /// The proxy's host (an IPv6 address in brackets).
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name for the proxy, if any.
    #[must_use]
    pub fn username(&self) -> Option<&Secret> {
        self.username.as_ref()
    }

    /// The password for the proxy, if any.
    #[must_use]
    pub fn password(&self) -> Option<&Secret> {
        self.password.as_ref()
    }

    /// `http://host:port`, without credentials: where a wire connects to send `CONNECT`.
    #[must_use]
    pub fn uri(&self) -> Uri {
        // The host was checked to hold only URL-safe characters.
        format!("http://{}:{}", self.host, self.port).parse().unwrap_or_else(|_| Uri::from_static("http://invalid"))
    }

    /// The `Proxy-Authorization: Basic` value of the credentials (marked sensitive), if any.
    #[must_use]
    pub fn authorization(&self) -> Option<HeaderValue> {
        if self.username.is_none() && self.password.is_none() {
            return None;
        }
        let user = self.username.as_ref().map_or("", Secret::expose);
        let pass = self.password.as_ref().map_or("", Secret::expose);
        let mut value =
            HeaderValue::from_str(&format!("Basic {}", base64_encode(format!("{user}:{pass}").as_bytes()))).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}:{}", self.host, self.port)
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("credentials", &(self.username.is_some() || self.password.is_some()))
            .finish()
    }
}

/// Hosts that go direct, from `no_proxy` / `NO_PROXY` with curl's meaning: a comma-separated
/// list of names (each also matching every name under it; a leading `.` is ignored), IP
/// addresses and CIDR ranges (`10.0.0.0/8`, `fd00::/8`); `*` alone matches every host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxy {
    all: bool,
    names: Vec<String>,
    nets: Vec<(IpAddr, u8)>,
}

impl NoProxy {
    /// Parses a `NO_PROXY` value.
    ///
    /// ```
    /// use box_upload_driver::NoProxy;
    /// let list = NoProxy::parse(" .example.com, 10.0.0.0/8 ,intranet");
    /// assert!(list.matches("example.com") && list.matches("a.b.example.com") && list.matches("10.1.2.3"));
    /// assert!(!list.matches("notexample.com") && !list.matches("11.0.0.1"));
    /// assert!(NoProxy::parse("*").matches("upload.box.com"));
    /// ```
    #[must_use]
    pub fn parse(value: &str) -> Self {
        let mut list = Self::default();
        if value.trim() == "*" {
            list.all = true;
            return list;
        }
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bare = entry.strip_prefix('[').and_then(|e| e.split_once(']')).map_or(entry, |(ip, _)| ip);
            if let Some((ip, bits)) = bare.split_once('/') {
                if let (Ok(ip), Ok(bits)) = (ip.parse::<IpAddr>(), bits.parse::<u8>()) {
                    list.nets.push((ip, bits));
                }
            } else if let Ok(ip) = bare.parse::<IpAddr>() {
                list.nets.push((ip, if ip.is_ipv4() { 32 } else { 128 }));
            } else {
                let name = entry.trim_start_matches("*.").trim_start_matches('.').trim_end_matches('.');
                if !name.is_empty() {
                    list.names.push(name.to_ascii_lowercase());
                }
            }
        }
        list
    }

    /// Whether `host` (a URL's host) goes direct.
    #[must_use]
    pub fn matches(&self, host: &str) -> bool {
        if self.all {
            return true;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(&host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self.nets.iter().any(|&(net, bits)| in_net(ip, net, bits));
        }
        self.names.iter().any(|name| {
            host == *name
                || (host.len() > name.len() && host.ends_with(name.as_str()) && {
                    let dot = host.len() - name.len() - 1;
                    host.as_bytes()[dot] == b'.'
                })
        })
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let bits = u32::from(bits.min(32));
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let bits = u32::from(bits.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Which proxy, if any, each URL goes through: decided here for every transport.
///
/// ```
/// use box_upload_driver::ProxyRules;
/// let env = |name: &str| match name {
///     "HTTPS_PROXY" => Some("http://proxy.corp:3128".to_owned()),
///     "NO_PROXY" => Some("internal.corp".to_owned()),
///     _ => None,
/// };
/// let rules = ProxyRules::from_env(env).unwrap();
/// let via = |url: &str| rules.proxy_for(&url.parse().unwrap()).map(ToString::to_string);
/// assert_eq!(via("https://upload.box.com/api").as_deref(), Some("http://proxy.corp:3128"));
/// assert_eq!(via("https://files.internal.corp/api"), None, "NO_PROXY");
/// assert_eq!(via("https://127.0.0.1:8443/api"), None, "loopback is never proxied");
/// assert_eq!(via("http://uploads.example/api"), None, "HTTPS_PROXY is for https URLs");
/// ```
#[derive(Clone, Debug, Default)]
pub struct ProxyRules {
    http: Option<Proxy>,
    https: Option<Proxy>,
    no_proxy: NoProxy,
    proxy_loopback: bool,
}

impl ProxyRules {
    /// No proxy for any URL.
    #[must_use]
    pub fn direct() -> Self {
        Self::default()
    }

    /// curl's rules over environment values given by `lookup` (a variable's value, or `None`;
    /// an empty value counts as unset): `https_proxy`, then `HTTPS_PROXY`, for `https` URLs;
    /// `http_proxy` (never `HTTP_PROXY`, which a CGI server would set from a request's `Proxy`
    /// header) for `http` URLs; `all_proxy`, then `ALL_PROXY`, for either when the one for its
    /// scheme is unset; `no_proxy`, then `NO_PROXY`, for the hosts that go direct.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let get = |names: &[&'static str]| {
            names.iter().find_map(|&n| lookup(n).filter(|v| !v.trim().is_empty()).map(|v| (n, v)))
        };
        let parse = |found: Option<(&'static str, String)>| {
            found
                .map(|(name, value)| {
                    Proxy::parse(&value).map_err(|e| match e {
                        Error::Config(why) => Error::Config(format!("{name}: {why}")),
                        other => other,
                    })
                })
                .transpose()
        };
        let all = get(&["all_proxy", "ALL_PROXY"]);
        Ok(Self {
            https: parse(get(&["https_proxy", "HTTPS_PROXY"]).or_else(|| all.clone()))?,
            http: parse(get(&["http_proxy"]).or(all))?,
            no_proxy: get(&["no_proxy", "NO_PROXY"]).map(|(_, v)| NoProxy::parse(&v)).unwrap_or_default(),
            proxy_loopback: false,
        })
    }

    /// `proxy` for every URL, but those `no_proxy` lists.
    #[must_use]
    pub fn all_through(proxy: Proxy, no_proxy: NoProxy) -> Self {
        Self { http: Some(proxy.clone()), https: Some(proxy), no_proxy, proxy_loopback: false }
    }

    /// Whether loopback hosts (`localhost`, `127.0.0.0/8`, `::1`) go through the proxy too
    /// (default no: a local server is never reached through a proxy unless asked).
    #[must_use]
    pub fn with_loopback_proxied(mut self, proxied: bool) -> Self {
        self.proxy_loopback = proxied;
        self
    }

    /// The proxy `uri` goes through, or `None` to connect directly.
    #[must_use]
    pub fn proxy_for(&self, uri: &Uri) -> Option<&Proxy> {
        let host = uri.host()?;
        let proxy = match uri.scheme_str()? {
            s if s.eq_ignore_ascii_case("https") => self.https.as_ref()?,
            s if s.eq_ignore_ascii_case("http") => self.http.as_ref()?,
            _ => return None,
        };
        if (!self.proxy_loopback && is_loopback_host(host)) || self.no_proxy.matches(host) {
            return None;
        }
        Some(proxy)
    }

    /// Every proxy some URL may go through (one or two), for a wire that sets each up ahead.
    #[must_use]
    pub fn proxies(&self) -> Vec<&Proxy> {
        let mut all: Vec<&Proxy> = self.https.iter().collect();
        if let Some(http) = &self.http {
            if !all.contains(&http) {
                all.push(http);
            }
        }
        all
    }
}

/// The TLS algorithms both wires use: rustls' *ring* provider with AES-128-GCM preferred over
/// AES-256-GCM and ChaCha20 (as browsers and Go's TLS do): with AES-NI it costs about a third less
/// CPU per byte than AES-256-GCM, which a server that follows the client's order (rustls' default)
/// would otherwise pick, and a big upload encrypts every byte.
#[must_use]
pub fn tls_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    use rustls::CipherSuite as S;
    let mut provider = rustls::crypto::ring::default_provider();
    // A stable sort: TLS 1.3 before 1.2 stays, AES-128-GCM first within each.
    provider.cipher_suites.sort_by_key(|suite| {
        let aes128 = matches!(
            suite.suite(),
            S::TLS13_AES_128_GCM_SHA256
                | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        );
        (suite.version().version != rustls::ProtocolVersion::TLSv1_3, !aes128)
    });
    std::sync::Arc::new(provider)
}

/// The roots of trust for TLS, as DER certificates for a wire's root store: the platform's
/// (through `rustls-native-certs`, which reads `SSL_CERT_FILE` and `SSL_CERT_DIR` instead when
/// they are set), Mozilla's (`webpki-root-certs`), and every PEM file in `ca_files`. A CA file
/// that cannot be read or holds no certificate is an [`Error::Tls`] naming it; so is an
/// `SSL_CERT_FILE` that cannot be read.
pub fn root_certificates(ca_files: &[PathBuf]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let mut roots: Vec<CertificateDer<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS.to_vec();
    let native = rustls_native_certs::load_native_certs();
    if let (Some(path), Some(error)) = (std::env::var_os("SSL_CERT_FILE"), native.errors.first()) {
        return Err(Error::Tls(format!("SSL_CERT_FILE {}: {error}", Path::new(&path).display())));
    }
    if !native.errors.is_empty() {
        tracing::debug!(errors = native.errors.len(), "some of the platform's certificates could not be loaded");
    }
    roots.extend(native.certs);
    for path in ca_files {
        roots.extend(ca_file(path)?);
    }
    Ok(roots)
}

/// The certificates of the PEM file at `path` (at least one).
pub fn ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let failed = |why: String| Error::Tls(format!("CA file {}: {why}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| failed(pem_error(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(pem_error(&e)))?;
    if certs.is_empty() {
        return Err(failed("it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
    }
    Ok(certs)
}

fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not a PEM file ({other:?})"),
    }
}

/// The transport error for a server certificate the wire refused: which host and why, and where
/// trust comes from. Not retried.
#[must_use]
pub fn certificate_refused(host: &str, why: &str) -> TransportError {
    TransportError::new(
        TransportErrorKind::Certificate,
        format!(
            "the TLS certificate of {} was refused: {} (trusted: the platform's roots, Mozilla's roots, \
             SSL_CERT_FILE, and CA files given to the client, e.g. --ca-file)",
            printable(host),
            printable(why)
        ),
    )
}

/// The first `T` among `error` and its causes, looking inside `io::Error`s too (an
/// `io::Error`'s `source()` skips the error it wraps, and TLS libraries wrap theirs in one or
/// two): how a wire finds the TLS library's error behind a refused certificate.
#[must_use]
pub fn find_cause<'a, T: std::error::Error + 'static>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a T> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            if let Some(found) = find_cause::<T>(inner) {
                return Some(found);
            }
        }
        next = e.source();
    }
    None
}

/// The transport error for a request not over within its deadline
/// ([`Settings::request_deadline`](crate::Settings::request_deadline)).
#[must_use]
pub fn deadline_passed(deadline: std::time::Duration) -> TransportError {
    TransportError::new(
        TransportErrorKind::Timeout,
        format!(
            "no complete answer within the request's deadline of {deadline:.1?} (the idle timeout plus the body at the \
             minimum transfer rate, or the overall timeout)"
        ),
    )
}

/// The transport error for a proxy that did not open the tunnel.
#[must_use]
pub fn proxy_failed(proxy: &Proxy, why: &str) -> TransportError {
    TransportError::new(TransportErrorKind::Connect, format!("through proxy {proxy}: {}", printable(why)))
}

/// `text` with control characters escaped (`\n`, `\u{1b}`, ...), for text that came from a
/// server or a user and is about to be printed: no terminal escape sequence gets through.
///
/// ```
/// assert_eq!(box_upload_driver::printable("bad\x1b[2Jname\n"), "bad\\u{1b}[2Jname\\n");
/// ```
#[must_use]
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        // Bidirectional overrides can make printed text read differently than it is.
        if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn base64_encode(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tls_prefers_aes_128_gcm_and_keeps_every_suite() {
        use rustls::CipherSuite as S;
        let ours: Vec<S> = tls_provider().cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(ours[0], S::TLS13_AES_128_GCM_SHA256);
        let tls13 = ours.iter().take_while(|s| format!("{s:?}").starts_with("TLS13")).count();
        assert_eq!(tls13, 3, "TLS 1.3 suites first: {ours:?}");
        assert_eq!(ours[tls13], S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256);
        let mut defaults: Vec<S> =
            rustls::crypto::ring::default_provider().cipher_suites.iter().map(|s| s.suite()).collect();
        let mut sorted = ours.clone();
        defaults.sort_by_key(|s| u16::from(*s));
        sorted.sort_by_key(|s| u16::from(*s));
        assert_eq!(sorted, defaults, "the same suites, reordered");
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
    }

    fn via(rules: &ProxyRules, url: &str) -> Option<String> {
        rules.proxy_for(&url.parse().unwrap()).map(ToString::to_string)
    }

    #[test]
    fn curl_variables_and_their_precedence() {
        let rules = ProxyRules::from_env(env(&[
            ("https_proxy", "lower:1"),
            ("HTTPS_PROXY", "upper:2"),
            ("ALL_PROXY", "all:3"),
            ("HTTP_PROXY", "ignored:4"),
        ]))
        .unwrap();
        assert_eq!(via(&rules, "https://upload.box.com/api").as_deref(), Some("http://lower:1"), "lower case wins");
        assert_eq!(via(&rules, "http://example.org/").as_deref(), Some("http://all:3"), "HTTP_PROXY is ignored");
        let rules = ProxyRules::from_env(env(&[("http_proxy", "h:8080"), ("all_proxy", "a:9")])).unwrap();
        assert_eq!(via(&rules, "http://example.org/").as_deref(), Some("http://h:8080"));
        assert_eq!(via(&rules, "https://example.org/").as_deref(), Some("http://a:9"));
        let rules = ProxyRules::from_env(env(&[("HTTPS_PROXY", "  "), ("no_proxy", "*")])).unwrap();
        assert_eq!(via(&rules, "https://example.org/"), None, "empty is unset");
        let rules = ProxyRules::from_env(env(&[("HTTPS_PROXY", "p:1"), ("NO_PROXY", "*")])).unwrap();
        assert_eq!(via(&rules, "https://example.org/"), None, "* matches all");
        let rules =
            ProxyRules::from_env(env(&[("HTTPS_PROXY", "p:1"), ("no_proxy", "a.org"), ("NO_PROXY", "*")])).unwrap();
        assert_eq!(via(&rules, "https://b.org/").as_deref(), Some("http://p:1"), "lower-case no_proxy wins");
        assert_eq!(via(&rules, "https://x.a.org/"), None);
    }

    #[test]
    fn loopback_goes_direct_unless_asked() {
        let rules = ProxyRules::from_env(env(&[("ALL_PROXY", "http://127.0.0.1:9")])).unwrap();
        for url in ["https://localhost:1/", "http://127.0.0.1:2/api", "https://[::1]:3/", "http://a.localhost/"] {
            assert_eq!(via(&rules, url), None, "{url}");
        }
        let rules = rules.with_loopback_proxied(true);
        assert_eq!(via(&rules, "https://127.0.0.1:2/").as_deref(), Some("http://127.0.0.1:9"));
    }

    #[test]
    fn no_proxy_forms() {
        let list = NoProxy::parse("example.com, .corp.example, 192.168.0.0/16, ::ffff:0:0/96, [fd00::1], 10.1.2.3,");
        for host in ["example.com", "EXAMPLE.com.", "x.example.com", "corp.example", "a.corp.example", "192.168.4.5"] {
            assert!(list.matches(host), "{host}");
        }
        assert!(list.matches("[fd00::1]") && list.matches("10.1.2.3"));
        for host in ["myexample.com", "example.com.evil", "192.169.0.1", "10.1.2.4", "[fd00::2]", "com"] {
            assert!(!list.matches(host), "{host}");
        }
        assert!(!NoProxy::parse("").matches("a"));
    }

    #[test]
    fn proxy_urls() {
        let p = Proxy::parse("proxy.example").unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.example", DEFAULT_PROXY_PORT));
        assert!(p.authorization().is_none());
        let p = Proxy::parse("HTTP://u%3Aser:pa%20ss@[::1]:3128/ignored").unwrap();
        assert_eq!((p.host(), p.port()), ("[::1]", 3128));
        assert_eq!(p.username().unwrap().expose(), "u:ser");
        assert_eq!(p.password().unwrap().expose(), "pa ss");
        let auth = p.authorization().unwrap();
        assert!(auth.is_sensitive());
        assert_eq!(auth.to_str().unwrap(), format!("Basic {}", base64_encode(b"u:ser:pa ss")));
        assert_eq!(p.uri(), "http://[::1]:3128/".parse::<Uri>().unwrap());
        for bad in ["https://p:1", "socks5://p:1", "http://:80", "http://p:http", "http://p:0", "http://u:%zz@p:1"] {
            assert!(Proxy::parse(bad).is_err(), "{bad}");
        }
        let err = Proxy::parse("http://user:hunter2@p:nope").unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let p = Proxy::parse("http://user:hunter2@p:1").unwrap();
        assert!(
            !format!("{p} {p:?} {:?}", ProxySetting::Url(Secret::new("http://user:hunter2@p:1"))).contains("hunter2")
        );
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (input, out) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64_encode(input.as_bytes()), out);
        }
    }

    #[test]
    fn ca_files_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("box-upload-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = ca_file(&empty).unwrap_err().to_string();
        assert!(err.contains("empty.pem") && err.contains("no PEM certificate"), "{err}");
        let err = ca_file(&dir.join("missing.pem")).unwrap_err().to_string();
        assert!(err.contains("missing.pem"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
