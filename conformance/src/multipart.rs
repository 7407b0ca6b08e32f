//! multipart/form-data bodies, read: the boundary from the `Content-Type`, then each part's
//! name, file name, content type and bytes (views of the body, not copies). The emulator's
//! direct upload and the fixtures' request bodies read them the same way.

use bytes::Bytes;

/// One part of a multipart body.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    /// `name` of its `Content-Disposition`.
    pub(crate) name: String,
    /// `filename` of its `Content-Disposition`, if any.
    pub(crate) filename: Option<String>,
    /// Its `Content-Type`, if any.
    pub(crate) content_type: Option<String>,
    /// Its bytes.
    pub(crate) data: Bytes,
}

/// The boundary of `multipart/form-data; boundary=...`; `None` for another type.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';').map(str::trim);
    if !params.next().is_some_and(|t| t.eq_ignore_ascii_case("multipart/form-data")) {
        return None;
    }
    params
        .find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"').to_owned())
        })
        .filter(|b| !b.is_empty() && b.len() <= 200)
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut at = from;
    while at + needle.len() <= haystack.len() {
        let rel = haystack[at..=haystack.len() - needle.len()].iter().position(|&b| b == first)?;
        let i = at + rel;
        if &haystack[i..i + needle.len()] == needle {
            return Some(i);
        }
        at = i + 1;
    }
    None
}

/// A parameter of a header value (`name="x"` in `form-data; name="x"`).
fn param(value: &str, key: &str) -> Option<String> {
    value.split(';').map(str::trim).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The parts of `body`, in order (at most 16); `None` when it is not a well-formed
/// multipart body with this boundary.
pub(crate) fn parse(body: &Bytes, boundary: &str) -> Option<Vec<Part>> {
    let delim = format!("--{boundary}");
    let next = format!("\r\n--{boundary}");
    let mut at = find(body, delim.as_bytes(), 0)? + delim.len();
    let mut out = Vec::new();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Some(out);
        }
        if body.get(at..at + 2) != Some(b"\r\n") || out.len() >= 16 {
            return None;
        }
        at += 2;
        let head_end = find(body, b"\r\n\r\n", at)?;
        let head = std::str::from_utf8(&body[at..head_end]).ok()?;
        let (mut name, mut filename, mut content_type) = (None, None, None);
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else { continue };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                name = param(v, "name");
                filename = param(v, "filename");
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim().to_owned());
            }
        }
        let data_start = head_end + 4;
        let data_end = find(body, next.as_bytes(), data_start)?;
        out.push(Part { name: name?, filename, content_type, data: body.slice(data_start..data_end) });
        at = data_end + next.len();
    }
}
