//! What the server's integration tests share: a control over an in-memory
//! host, the router served on a loopback port, raw HTTP exchanges.

#![allow(dead_code)] // each test file uses its own part

use hotpath::{AdaptiveEngineConfig, ParamSpace};
use hotpath_host::{Host, HostOptions};
use hotpath_server::{Background, Control, ControlHandle, ControlOptions, Limits, Token};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The token the served routers check.
pub const TOKEN: &str = "in-process-test-token";

/// An in-memory host on the system clock.
pub fn host(space: ParamSpace, settings: AdaptiveEngineConfig) -> Host {
    Host::open(
        Arc::new(space),
        settings,
        HostOptions::in_memory(),
        hotpath::SystemClock::new(),
    )
    .expect("host")
}

/// A control thread over an in-memory host on the system clock.
pub fn control(
    space: ParamSpace,
    settings: AdaptiveEngineConfig,
    options: ControlOptions,
) -> Control {
    Control::start(host(space, settings), options).expect("control")
}

/// The router over `handle`, served on a free loopback port until
/// dropped.
pub struct Listening {
    pub addr: String,
    _server: Background,
}

impl Listening {
    pub fn start(handle: ControlHandle, limits: Limits) -> Listening {
        let listen = "127.0.0.1:0".parse().expect("address");
        let server = Background::start(handle, Token::new(TOKEN), limits, listen).expect("serve");
        Listening {
            addr: server.local_addr().to_string(),
            _server: server,
        }
    }

    /// Sends `raw` on a new connection and reads until it closes.
    pub fn exchange(&self, raw: &[u8]) -> String {
        let mut stream = TcpStream::connect(&self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.write_all(raw).expect("send");
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// `GET path`, the connection closed after it.
    pub fn get(&self, path: &str) -> String {
        self.exchange(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    }

    /// `POST path` with the token and an empty body.
    pub fn post(&self, path: &str) -> String {
        self.exchange(
            format!("POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    }

    /// Opens an event stream on `path` with `headers` (each ending in CRLF).
    pub fn stream(&self, path: &str, headers: &str) -> Stream {
        let mut stream = TcpStream::connect(&self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let head = format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n");
        stream.write_all(head.as_bytes()).expect("send");
        Stream {
            stream,
            seen: String::new(),
        }
    }
}

/// An open event stream and what it has received so far.
pub struct Stream {
    stream: TcpStream,
    pub seen: String,
}

impl Stream {
    /// Reads until what was received contains `needle` (true) or `wait`
    /// passes (false).
    pub fn wait_for(&mut self, needle: &str, wait: Duration) -> bool {
        let started = Instant::now();
        let mut buf = [0u8; 4096];
        while !self.seen.contains(needle) {
            if started.elapsed() > wait {
                return false;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return self.seen.contains(needle),
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(_) => {}
            }
        }
        true
    }
}

/// The body of a whole response.
pub fn body_of(response: &str) -> &str {
    response.split("\r\n\r\n").nth(1).unwrap_or("")
}

/// A header's value in a whole response (case-insensitive name).
pub fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}
