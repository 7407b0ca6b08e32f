//! Test support: a tiny HTTP `CONNECT` proxy on loopback (std threads), which records every
//! request head it is sent and every byte it relays from the client, so a test can check what a
//! proxy sees. It answers anything but `CONNECT` with 405 and tunnels only to loopback.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy saw.
#[derive(Default)]
struct Seen {
    /// Each request head, line by line (without the CRLF).
    heads: Vec<Vec<String>>,
    /// Every byte relayed from clients to servers after `CONNECT`.
    relayed: Vec<u8>,
}

/// A running proxy; dropping it stops accepting.
pub(crate) struct ConnectProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

impl ConnectProxy {
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (Arc::clone(&seen), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let seen = Arc::clone(&seen2);
                std::thread::spawn(move || handle(stream, &seen));
            }
        });
        Self { addr, seen, stop }
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request head seen, in order.
    pub(crate) fn heads(&self) -> Vec<Vec<String>> {
        self.seen.lock().unwrap().heads.clone()
    }

    /// The first line of every request head.
    pub(crate) fn request_lines(&self) -> Vec<String> {
        self.heads().into_iter().filter_map(|h| h.into_iter().next()).collect()
    }

    /// Whether `needle` appears anywhere in what the proxy saw (heads and relayed bytes).
    pub(crate) fn saw(&self, needle: &str) -> bool {
        let seen = self.seen.lock().unwrap();
        let in_heads = seen.heads.iter().flatten().any(|l| l.contains(needle));
        in_heads || seen.relayed.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    /// Bytes relayed from clients.
    pub(crate) fn relayed_bytes(&self) -> usize {
        self.seen.lock().unwrap().relayed.len()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn handle(mut client: TcpStream, seen: &Mutex<Seen>) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let Some(head) = read_head(&mut client) else { return };
    let lines: Vec<String> = head.split("\r\n").filter(|l| !l.is_empty()).map(str::to_owned).collect();
    let first = lines.first().cloned().unwrap_or_default();
    seen.lock().unwrap().heads.push(lines);
    let mut words = first.split(' ');
    let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let loopback = target.parse::<SocketAddr>().is_ok_and(|a| a.ip().is_loopback());
    if method != "CONNECT" || !loopback {
        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        return;
    }
    let Ok(server) = TcpStream::connect(target) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
        return;
    };
    let _ = client.set_read_timeout(None);
    if client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").is_err() {
        return;
    }
    let (mut from_client, mut to_server) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (mut from_server, mut to_client) = (server, client);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from_client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        seen.lock().unwrap().relayed.extend_from_slice(&buf[..n]);
        if to_server.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to_server.shutdown(Shutdown::Write);
}

/// The request head, up to the blank line (at most 16 KiB).
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 || stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}
