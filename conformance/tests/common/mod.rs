//! A small HTTP client for the conformance tests (hyper client connections over loopback).
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::net::SocketAddr;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use tokio::net::TcpStream;

pub type ReqBody = BoxBody<Bytes, std::io::Error>;

pub fn full(b: impl Into<Bytes>) -> ReqBody {
    Full::new(b.into()).map_err(|n| match n {}).boxed()
}

#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    /// The Box error code of an error answer.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_string())
    }
}

/// One HTTP/1.1 connection (keep-alive) to the emulator.
pub struct Conn {
    sender: SendRequest<ReqBody>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender })
    }

    pub async fn send(&mut self, req: Request<ReqBody>) -> Result<Resp, hyper::Error> {
        self.sender.ready().await?;
        let res = self.sender.send_request(req).await?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Resp { status: parts.status, headers: parts.headers, body })
    }
}

/// A client for one emulator: a fresh connection per request unless told otherwise.
#[derive(Clone)]
pub struct Client {
    pub addr: SocketAddr,
    pub token: String,
}

pub fn sha1_b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha1::digest(data))
}

pub fn sha1_hex(data: &[u8]) -> String {
    Sha1::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    out
}

pub struct Builder {
    pub req: http::request::Builder,
}

impl Client {
    pub fn new(addr: SocketAddr, token: &str) -> Client {
        Client { addr, token: token.to_string() }
    }

    /// A request builder for `path` (e.g. `/api/2.0/files/upload_sessions`) with auth.
    pub fn req(&self, method: Method, path: &str) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("authorization", format!("Bearer {}", self.token))
    }

    pub async fn send(&self, req: Request<ReqBody>) -> Resp {
        self.try_send(req).await.unwrap()
    }

    /// Sends on a fresh connection; `Err` when the connection was closed without an answer.
    pub async fn try_send(&self, req: Request<ReqBody>) -> Result<Resp, hyper::Error> {
        let mut conn = Conn::open(self.addr).await.unwrap();
        conn.send(req).await
    }

    pub fn part_req(&self, session_id: &str, offset: u64, part: &[u8], total: u64) -> Request<ReqBody> {
        let last = offset + part.len() as u64 - 1;
        self.req(Method::PUT, &format!("/api/2.0/files/upload_sessions/{session_id}"))
            .header("content-type", "application/octet-stream")
            .header("digest", format!("sha={}", sha1_b64(part)))
            .header("content-range", format!("bytes {offset}-{last}/{total}"))
            .body(full(Bytes::copy_from_slice(part)))
            .unwrap()
    }

    pub async fn json(&self, method: Method, path: &str, body: &Value) -> Resp {
        let req =
            self.req(method, path).header("content-type", "application/json").body(full(body.to_string())).unwrap();
        self.send(req).await
    }

    pub async fn create_session(&self, folder_id: &str, size: u64, name: &str) -> Resp {
        self.json(
            Method::POST,
            "/api/2.0/files/upload_sessions",
            &json!({"folder_id": folder_id, "file_size": size, "file_name": name}),
        )
        .await
    }

    /// Creates a session and asserts 201.
    pub async fn session(&self, folder_id: &str, size: u64, name: &str) -> Value {
        let r = self.create_session(folder_id, size, name).await;
        assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.req(Method::GET, path).body(full(Bytes::new())).unwrap()).await
    }

    pub async fn put_part(&self, session_id: &str, offset: u64, part: &[u8], total: u64) -> Resp {
        let digest = format!("sha={}", sha1_b64(part));
        self.put_part_with(session_id, offset, part, total, &digest).await
    }

    pub async fn put_part_with(&self, session_id: &str, offset: u64, part: &[u8], total: u64, digest: &str) -> Resp {
        let last = offset + part.len() as u64 - 1;
        let req = self
            .req(Method::PUT, &format!("/api/2.0/files/upload_sessions/{session_id}"))
            .header("content-type", "application/octet-stream")
            .header("digest", digest)
            .header("content-range", format!("bytes {offset}-{last}/{total}"))
            .body(full(Bytes::copy_from_slice(part)))
            .unwrap();
        self.send(req).await
    }

    /// Uploads every part of `content` (sequentially) and returns the echoed parts.
    pub async fn upload_all(&self, session: &Value, content: &[u8]) -> Vec<Value> {
        let id = session["id"].as_str().unwrap();
        let part_size = session["part_size"].as_u64().unwrap() as usize;
        let mut parts = Vec::new();
        for (i, chunk) in content.chunks(part_size).enumerate() {
            let r = self.put_part(id, (i * part_size) as u64, chunk, content.len() as u64).await;
            assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
            parts.push(r.json()["part"].clone());
        }
        parts
    }

    pub async fn commit(&self, session_id: &str, parts: &[Value], whole_digest: &str, extra: &[(&str, &str)]) -> Resp {
        let mut b = self
            .req(Method::POST, &format!("/api/2.0/files/upload_sessions/{session_id}/commit"))
            .header("content-type", "application/json")
            .header("digest", whole_digest);
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        self.send(b.body(full(json!({"parts": parts}).to_string())).unwrap()).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(self.req(Method::DELETE, path).body(full(Bytes::new())).unwrap()).await
    }
}

/// Uploads `content` as a new file `name` in folder "0" and commits; returns the commit answer.
pub async fn upload_file(client: &Client, folder: &str, name: &str, content: &[u8]) -> Resp {
    let session = client.session(folder, content.len() as u64, name).await;
    let parts = client.upload_all(&session, content).await;
    client.commit(session["id"].as_str().unwrap(), &parts, &format!("sha={}", sha1_b64(content)), &[]).await
}
