//! An HTTP/1.1 load generator: `connections` keep-alive connections, each
//! sending one request after the other for a fixed time.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// One request, sent again and again.
///
/// ```
/// let r = hotpath_bench::load::Request::get("/v1/config");
/// assert_eq!(r.path, "/v1/config");
/// ```
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET` or `POST`.
    pub method: hyper::Method,
    /// The path.
    pub path: String,
    /// Headers (name, value).
    pub headers: Vec<(&'static str, String)>,
    /// The body (empty for a GET).
    pub body: Bytes,
}

impl Request {
    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Self {
            method: hyper::Method::GET,
            path: path.to_string(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// `POST path` with `body` and headers.
    pub fn post(path: &str, headers: Vec<(&'static str, String)>, body: Bytes) -> Self {
        Self {
            method: hyper::Method::POST,
            path: path.to_string(),
            headers,
            body,
        }
    }
}

/// What a load run did.
///
/// ```
/// # use hotpath_bench::load::Report;
/// fn rate(r: &Report) -> f64 { r.ok as f64 / r.elapsed.as_secs_f64() }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Report {
    /// Responses with the expected status.
    pub ok: u64,
    /// Other responses, and failed requests.
    pub failed: u64,
    /// Response body bytes received.
    pub bytes: u64,
    /// How long the run took.
    pub elapsed: Duration,
}

impl Report {
    /// Responses with the expected status per second.
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Sends `request` to `addr` over `connections` connections for
/// `duration`, counting the responses whose status is `expect`.
///
/// # Errors
///
/// A connection that cannot be opened.
pub async fn run(
    addr: SocketAddr,
    request: &Request,
    expect: u16,
    connections: usize,
    duration: Duration,
) -> std::io::Result<Report> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let request = request.clone();
        tasks.spawn(async move { connection(stream, &request, expect, deadline).await });
    }
    let mut report = Report::default();
    while let Some(done) = tasks.join_next().await {
        let one = done.unwrap_or_default();
        report.ok += one.ok;
        report.failed += one.failed;
        report.bytes += one.bytes;
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

async fn connection(
    stream: tokio::net::TcpStream,
    request: &Request,
    expect: u16,
    deadline: Instant,
) -> Report {
    let mut report = Report::default();
    let Ok((mut sender, conn)) = http1::handshake(TokioIo::new(stream)).await else {
        report.failed += 1;
        return report;
    };
    let driver = tokio::spawn(conn);
    while Instant::now() < deadline {
        let mut builder = hyper::Request::builder()
            .method(request.method.clone())
            .uri(&request.path)
            .header("host", "bench");
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let Ok(req) = builder.body(Full::new(request.body.clone())) else {
            report.failed += 1;
            break;
        };
        match sender.send_request(req).await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.into_body().collect().await {
                    Ok(body) if status == expect => {
                        report.ok += 1;
                        report.bytes += body.to_bytes().len() as u64;
                    }
                    _ => report.failed += 1,
                }
            }
            Err(_) => {
                report.failed += 1;
                break;
            }
        }
    }
    driver.abort();
    report
}
