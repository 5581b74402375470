//! [`Limits`]: every bound the HTTP side keeps, so a client (slow,
//! malicious or just numerous) can hold only a bounded share of the
//! server.

use std::time::Duration;

/// The HTTP side's bounds. Each is documented with what happens beyond it.
///
/// ```
/// let limits = hotpath_server::Limits::default();
/// assert_eq!(limits.max_body_bytes, 1 << 20);
/// assert_eq!(limits.max_watchers, 64);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body (`POST /v1/telemetry`): 413 beyond, before
    /// the body is read when `Content-Length` says so. 1 MiB.
    pub max_body_bytes: usize,
    /// Most digests in one body: 413 beyond. 10,000.
    pub max_digests: usize,
    /// The connection's read buffer, which the request line and headers
    /// must fit in (at least 8 KiB): 431 beyond. 16 KiB.
    pub max_header_bytes: usize,
    /// Most headers in a request: 431 beyond. 64.
    pub max_headers: usize,
    /// Time for a client to send a request's headers, idle keep-alive
    /// included: the connection is closed after it. 10 s.
    pub header_read_timeout: Duration,
    /// Time for a client to send a request's body: 408 after it. 10 s.
    pub body_read_timeout: Duration,
    /// Time for a handler to answer (the watch stream's answer is its
    /// start): 503 `timeout` after it. 15 s.
    pub request_timeout: Duration,
    /// Open event streams (`/v1/config/watch` and `/v1/events` together)
    /// at most: 503 `too_many_watchers` beyond. 64.
    pub max_watchers: usize,
    /// Open connections at most: further clients wait in the listen
    /// backlog. 256.
    pub max_connections: usize,
    /// Keep-alive comment interval of a watch stream. 15 s.
    pub keep_alive: Duration,
    /// How long shutdown waits for connections to finish after the watch
    /// streams are closed; then the rest are dropped. 5 s.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_digests: 10_000,
            max_header_bytes: 16 << 10,
            max_headers: 64,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(15),
            max_watchers: 64,
            max_connections: 256,
            keep_alive: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}
