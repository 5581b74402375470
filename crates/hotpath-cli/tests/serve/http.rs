//! A minimal HTTP/1.1 client over `std::net::TcpStream`, enough to test
//! the server byte for byte: requests with `Connection: close`, chunked
//! or sized responses, and Server-Sent Events read incrementally.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The error code of a typed JSON error.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not a typed error: {}", self.text()))
            .to_string()
    }
}

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
}

fn head(method: &str, path: &str, headers: &[(&str, &str)], body_len: usize) -> String {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if body_len > 0 || method == "POST" {
        text.push_str(&format!("Content-Length: {body_len}\r\n"));
    }
    text.push_str("\r\n");
    text
}

/// One request, the whole response.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    exchange(
        addr,
        head(method, path, headers, body.len()).as_bytes(),
        body,
    )
}

/// A POST whose `Content-Length` says `declared` bytes, with no body sent.
pub fn post_declaring(addr: &str, path: &str, token: &str, declared: usize) -> Response {
    let auth = format!("Bearer {token}");
    let text = head("POST", path, &[("Authorization", &auth)], declared);
    exchange(addr, text.as_bytes(), b"")
}

/// A request the server may cut off while it is still being sent: the
/// response if one arrived before the connection was reset.
pub fn request_lossy(addr: &str, path: &str, headers: &[(&str, &str)]) -> Option<Response> {
    let mut stream = connect(addr);
    let _ = stream.write_all(head("GET", path, headers, 0).as_bytes());
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    raw.windows(4)
        .any(|w| w == b"\r\n\r\n")
        .then(|| parse(&raw))
}

/// A GET to a server that may not be there (a killed process): `None`
/// if it does not accept the connection or answers nothing whole within
/// `timeout`. (Used by `tests/fleet`, which shares this module.)
#[allow(dead_code)]
pub fn try_get(addr: &str, path: &str, timeout: Duration) -> Option<Response> {
    let socket = addr.parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&socket, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream
        .write_all(head("GET", path, &[], 0).as_bytes())
        .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    raw.windows(4)
        .any(|w| w == b"\r\n\r\n")
        .then(|| parse(&raw))
}

fn exchange(addr: &str, head: &[u8], body: &[u8]) -> Response {
    let mut stream = connect(addr);
    stream
        .write_all(head)
        .and_then(|()| stream.write_all(body))
        .expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    parse(&raw)
}

pub fn get(addr: &str, path: &str) -> Response {
    request(addr, "GET", path, &[], b"")
}

pub fn post(addr: &str, path: &str, token: &str, content_type: &str, body: &[u8]) -> Response {
    let auth = format!("Bearer {token}");
    request(
        addr,
        "POST",
        path,
        &[("Authorization", &auth), ("Content-Type", content_type)],
        body,
    )
}

fn parse(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return body;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&rest[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return body;
        }
        let start = end + 2;
        body.extend_from_slice(&rest[start..(start + size).min(rest.len())]);
        rest = &rest[(start + size + 2).min(rest.len())..];
    }
}

/// An open `GET /v1/config/watch` stream.
pub struct Watch {
    reader: BufReader<TcpStream>,
    pub status: u16,
    /// The response's headers, names in lower case.
    pub headers: Vec<(String, String)>,
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub id: Option<u64>,
    pub data: String,
}

impl Watch {
    /// Opens the stream (with `Last-Event-ID: last` if given) and reads
    /// the response head.
    pub fn open(addr: &str, last: Option<u64>) -> Watch {
        Watch::open_path(addr, "/v1/config/watch", last)
    }

    /// Opens the event stream at `path` (with `Last-Event-ID: last` if
    /// given) and reads the response head.
    pub fn open_path(addr: &str, path: &str, last: Option<u64>) -> Watch {
        let mut stream = connect(addr);
        let id = last.map(|l| l.to_string());
        let headers: Vec<(&str, &str)> = id.iter().map(|v| ("Last-Event-ID", v.as_str())).collect();
        let text = head("GET", path, &headers, 0).replace("Connection: close\r\n", "");
        stream.write_all(text.as_bytes()).expect("send");
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).expect("status");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).expect("head") == 0 || line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.trim_end().split_once(':') {
                headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        Watch {
            reader,
            status,
            headers,
        }
    }

    /// The value of the header `name` (lower case), if the response had it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next event within `wait` (keep-alive comments skipped), or
    /// `None` at the stream's end (the body's last chunk, or the
    /// connection closed) or after `wait`.
    pub fn next_event(&mut self, wait: Duration) -> Option<Event> {
        let deadline = Instant::now() + wait;
        let mut event = Event {
            name: String::new(),
            id: None,
            data: String::new(),
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.reader.get_ref().set_read_timeout(Some(left)).ok()?;
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            // Chunk-size lines of the chunked body and blank lines are
            // skipped; the last chunk (size 0) ends the body while the
            // connection may stay open.
            let line = line.trim_end_matches(['\r', '\n']);
            if line == "0" {
                return None;
            } else if let Some(v) = line.strip_prefix("event: ") {
                event.name = v.to_string();
            } else if let Some(v) = line.strip_prefix("id: ") {
                event.id = v.parse().ok();
            } else if let Some(v) = line.strip_prefix("data: ") {
                event.data = v.to_string();
                if !event.name.is_empty() {
                    return Some(event);
                }
            }
        }
    }

    /// The data of the next event named `name` whose data contains
    /// `needle`, reading for at most `wait` in all; panics after it.
    pub fn wait_for(&mut self, name: &str, needle: &str, wait: Duration) -> String {
        let deadline = Instant::now() + wait;
        while let Some(event) = self.next_event(deadline.saturating_duration_since(Instant::now()))
        {
            if event.name == name && event.data.contains(needle) {
                return event.data;
            }
        }
        panic!("no {name} event with {needle:?} within {wait:?}");
    }

    /// `true` if the server closes the stream within `wait`.
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = self.reader.get_ref().set_read_timeout(Some(left));
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// The value of the metric line `series value` in the exposition `text`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}
