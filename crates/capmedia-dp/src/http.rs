//! The HTTP(S) backend: a DP's content web site (`http://dp/SMS_DP_SMSPKG$/`)
//! or any web server with directory listings serving a copy of the library.
//!
//! `ureq` with rustls: blocking, small, no async runtime; one agent shared by
//! the download threads keeps connections alive between requests. With an
//! account (`DpOptions::credentials`), requests go through [`WinAuth`]
//! instead: one agent per connection, each authenticated by NTLM on its own.
//! A PKI client certificate (`DpOptions::client_cert`) goes into the TLS
//! configuration of every agent.

use std::fs;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use ureq::http::{Response, StatusCode};
use ureq::tls::{PemItem, RootCerts, TlsConfig};
use ureq::{Agent, Body};

use crate::backend::{Backend, Blob, Lib};
use crate::error::BackendError;
use crate::listing::{parse_html_listing, ListingEntry};
use crate::winauth::{describe_schemes, offered_schemes, KerberosTarget, Lease, Method, WinAuth};
use crate::DpOptions;

/// Characters left as they are in a URL path component.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A listing or INI larger than this is not what a DP serves.
pub(crate) const LISTING_LIMIT: u64 = 64 << 20;

/// The bounds on one request's answer (see [`DpOptions`]).
#[derive(Debug, Clone, Copy)]
struct Pace {
    deadline: Duration,
    min_rate: u64,
    window: Duration,
    read_timeout: Duration,
}

#[derive(Debug)]
pub(crate) struct HttpBackend {
    /// Ends with `/`.
    base: String,
    /// The decoded path of `base`, ending with `/`.
    base_path: String,
    agent: Agent,
    pace: Pace,
    /// Windows authentication, when an account was given or Kerberos may
    /// be used.
    auth: Option<Arc<WinAuth>>,
    /// Every request goes through `auth` (an account was given); without
    /// one, only after the DP answered 401 (`auth_needed`), so that an
    /// anonymous DP keeps the shared agent's pool.
    auth_first: bool,
    auth_needed: AtomicBool,
    /// The client certificate file given, for messages.
    client_cert: Option<PathBuf>,
    https: bool,
}

impl HttpBackend {
    pub(crate) fn new(url: &str, opts: &DpOptions) -> Result<Self, String> {
        let lower = url.to_ascii_lowercase();
        let after_scheme = if lower.starts_with("http://") {
            &url[7..]
        } else if lower.starts_with("https://") {
            &url[8..]
        } else {
            return Err("not an http:// or https:// URL".into());
        };
        if url.contains(['?', '#']) {
            return Err("the DP URL must not have a query or fragment".into());
        }
        let mut base = url.to_owned();
        if !base.ends_with('/') {
            base.push('/');
        }
        let raw_path = match after_scheme.find('/') {
            Some(i) => &after_scheme[i..],
            None => "/",
        };
        if after_scheme.is_empty() || after_scheme.starts_with('/') {
            return Err("the URL has no host".into());
        }
        let mut base_path = percent_decode_str(raw_path)
            .decode_utf8()
            .map_err(|_| "the URL path is not UTF-8".to_string())?
            .into_owned();
        if !base_path.ends_with('/') {
            base_path.push('/');
        }

        let roots = match &opts.ca_file {
            Some(path) => {
                let pem = fs::read(path).map_err(|e| format!("CA file {}: {e}", path.display()))?;
                let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                if certs.is_empty() {
                    return Err(format!(
                        "CA file {} holds no PEM certificate",
                        path.display()
                    ));
                }
                RootCerts::Specific(Arc::new(certs))
            }
            None => RootCerts::PlatformVerifier,
        };
        let client_cert = match &opts.client_cert {
            Some(c) => Some(crate::clientcert::load(c)?),
            None => None,
        };
        let tls = TlsConfig::builder()
            .root_certs(roots)
            .client_cert(client_cert)
            .build();
        let host = after_scheme.split('/').next().unwrap_or("");
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        let loopback = host.starts_with("127.")
            || host.starts_with("[::1]")
            || host.eq_ignore_ascii_case("localhost")
            || host.to_ascii_lowercase().starts_with("localhost:");
        let pace = Pace {
            deadline: opts.request_deadline,
            min_rate: opts.min_rate,
            window: opts.rate_window,
            read_timeout: opts.read_timeout,
        };
        // A read that waits a whole rate window has received nothing in
        // it: below any minimum rate, so it need not wait longer.
        let per_read = if pace.min_rate > 0 && !pace.window.is_zero() {
            opts.read_timeout.min(pace.window)
        } else {
            opts.read_timeout
        };
        let config = |idle_total: usize, idle_per_host: usize| {
            let mut builder = Agent::config_builder();
            if loopback {
                // HTTP(S)_PROXY from the environment is honoured for real DPs,
                // never for this machine's own servers (mirrors, tests).
                builder = builder.proxy(None);
            }
            builder
                .http_status_as_error(false)
                .tls_config(tls.clone())
                .timeout_connect(Some(opts.connect_timeout))
                .timeout_recv_response(Some(opts.read_timeout))
                .timeout_per_read(Some(per_read))
                .max_idle_connections(idle_total)
                .max_idle_connections_per_host(idle_per_host)
                .user_agent(concat!("capmedia-dp/", env!("CARGO_PKG_VERSION")))
                .build()
        };
        let idle = opts.concurrency.max(1) * 2;
        // Kerberos from the ticket cache: with no account given (the
        // cache's default principal) or one written user@REALM; never for
        // DOMAIN\user, which names no principal (see `winauth`).
        let kerberos = opts
            .kerberos
            .then(|| match (&opts.credentials, &opts.kerberos_principal) {
                (_, Some(p)) => Some(Some(p.clone())),
                (None, None) => Some(None),
                (Some(c), None) if c.account.upn => Some(Some(c.account.to_string())),
                (Some(_), None) => None,
            })
            .flatten()
            .map(|principal| KerberosTarget {
                host: url_host(after_scheme),
                principal,
            });
        // One connection per agent: NTLM's three legs cannot be split over
        // connections (see `winauth`).
        let auth = (opts.credentials.is_some() || kerberos.is_some()).then(|| {
            Arc::new(WinAuth::new(
                opts.credentials.clone(),
                kerberos,
                config(1, 1),
                idle,
            ))
        });
        let config = config(idle.max(10), idle);
        Ok(HttpBackend {
            base,
            base_path,
            agent: config.into(),
            pace,
            auth,
            auth_first: opts.credentials.is_some(),
            auth_needed: AtomicBool::new(false),
            client_cert: opts.client_cert.as_ref().map(|c| c.file.clone()),
            https: lower.starts_with("https://"),
        })
    }

    fn url(&self, first: &str, rel: &[&str], dir: bool) -> String {
        let mut u = self.base.clone();
        u.push_str(first);
        for c in rel {
            u.push('/');
            u.extend(utf8_percent_encode(c, COMPONENT));
        }
        if dir {
            u.push('/');
        }
        u
    }

    fn blob_url(&self, hash: &str) -> String {
        let prefix = hash.get(..4).unwrap_or(hash);
        self.url("FileLib", &[prefix, hash], false)
    }

    /// The whole request, body included, must end by the deadline.
    fn deadline(&self) -> Option<Duration> {
        (!self.pace.deadline.is_zero()).then_some(self.pace.deadline)
    }

    /// Windows authentication, once requests go through it.
    fn active_auth(&self) -> Option<&Arc<WinAuth>> {
        self.auth
            .as_ref()
            .filter(|_| self.auth_first || self.auth_needed.load(Ordering::Relaxed))
    }

    /// One request, through Windows authentication when an account was
    /// given; the lease (if any) must outlive the response body.
    fn send(
        &self,
        method: Method,
        url: &str,
        range: Option<&str>,
    ) -> Result<(Response<Body>, Option<Lease>), BackendError> {
        let map = |e: ureq::Error| self.map_ureq(e, url);
        if let Some(auth) = self.active_auth() {
            let (resp, lease) = auth.call(method, url, range, self.deadline(), &map)?;
            return Ok((resp, Some(lease)));
        }
        let mut req = match method {
            Method::Get => self.agent.get(url),
            Method::Head => self.agent.head(url),
        }
        .config()
        .timeout_global(self.deadline())
        .build();
        if let Some(r) = range {
            req = req.header("Range", r);
        }
        let resp = req.call().map_err(map)?;
        if let (Some(auth), StatusCode::UNAUTHORIZED) = (&self.auth, resp.status()) {
            // The DP wants Windows authentication: Kerberos from here on.
            self.auth_needed.store(true, Ordering::Relaxed);
            drop(resp);
            let (resp, lease) = auth.call(method, url, range, self.deadline(), &map)?;
            return Ok((resp, Some(lease)));
        }
        Ok((resp, None))
    }

    fn get(
        &self,
        url: &str,
        range: Option<String>,
    ) -> Result<(Response<Body>, Option<Lease>), BackendError> {
        let (resp, lease) = self.send(Method::Get, url, range.as_deref())?;
        let resp = self.check(resp, url)?;
        Ok((resp, lease))
    }

    /// `resp` if its status is a success, else the error it means, named
    /// with the URL, the account and the schemes offered.
    fn check(&self, resp: Response<Body>, url: &str) -> Result<Response<Body>, BackendError> {
        let status = resp.status();
        match status.as_u16() {
            401 => Err(BackendError::AuthRequired {
                offered: describe_schemes(&offered_schemes(&resp)),
                account: self.auth.as_ref().and_then(|a| a.given_account()),
                kerberos: None,
            }),
            // nginx answers a missing or refused client certificate with
            // 400 and IIS with 403.7 ("client certificate required"): the
            // body says which; a short read tells them from other 400/403s.
            400 | 403 if self.https => {
                let body = resp
                    .into_body()
                    .into_with_config()
                    .limit(16 << 10)
                    .read_to_string()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if body.contains("certificate") {
                    let detail = format!("{url}: HTTP {}", status.as_u16());
                    Err(self.cert_error(detail))
                } else {
                    Err(self.status_error(status, url))
                }
            }
            _ if status.is_success() => Ok(resp),
            _ => Err(self.status_error(status, url)),
        }
    }

    /// The error a failure status means, naming the URL and, for a 403,
    /// whom the DP refused.
    fn status_error(&self, s: StatusCode, url: &str) -> BackendError {
        let e = match check_status(s) {
            Err(BackendError::Denied(d)) => BackendError::Denied(match self.active_auth() {
                Some(a) => format!("{d} to account {}", a.account()),
                None => format!("{d} to anonymous access (give an account with --dp-user)"),
            }),
            Err(e) => e,
            Ok(()) => BackendError::Status(s.as_u16(), String::new()),
        };
        with_url(e, url)
    }

    fn cert_error(&self, detail: String) -> BackendError {
        BackendError::ClientCert {
            file: self.client_cert.clone(),
            detail,
        }
    }

    fn map_ureq(&self, e: ureq::Error, url: &str) -> BackendError {
        if self.https {
            let text = e.to_string();
            // rustls names the alert the server sent: a server that requires
            // a certificate sends CertificateRequired (TLS 1.3) or
            // HandshakeFailure/BadCertificate/UnknownCA (TLS 1.2).
            let lower = text.to_ascii_lowercase();
            let cert_alert = [
                "certificaterequired",
                "badcertificate",
                "unknownca",
                "certificateunknown",
                "unsupportedcertificate",
                "certificaterevoked",
                "certificateexpired",
            ]
            .iter()
            .any(|a| lower.contains(a))
                || (lower.contains("handshakefailure") && lower.contains("alert"));
            if cert_alert {
                return self.cert_error(format!("{url}: TLS: {text}"));
            }
        }
        map_ureq(e, url)
    }

    /// The body of `resp`, within the deadline and minimum rate, with
    /// errors naming `url` and the limit they hit.
    fn body(
        &self,
        resp: Response<Body>,
        lease: Option<Lease>,
        url: &str,
        started: Instant,
    ) -> Guarded {
        let now = Instant::now();
        Guarded {
            inner: Box::new(resp.into_body().into_with_config().limit(u64::MAX).reader()),
            _lease: lease,
            url: url.to_owned(),
            pace: self.pace,
            started,
            window_start: now,
            window_bytes: 0,
        }
    }
}

/// A response body held to [`Pace`]: the request's deadline and, averaged
/// over each rate window, the minimum rate. ureq enforces the deadline
/// itself (its global timeout); this names it, and checks the rate, which
/// ureq does not know.
struct Guarded {
    inner: Box<dyn Read + Send>,
    /// The authenticated connection the body comes on, back to the pool
    /// when the body is dropped (declared after `inner`: dropped after it).
    _lease: Option<Lease>,
    url: String,
    pace: Pace,
    started: Instant,
    window_start: Instant,
    window_bytes: u64,
}

impl Guarded {
    fn too_slow(&self, bytes: u64, over: Duration) -> io::Error {
        let rate = bytes as f64 / over.as_secs_f64().max(0.001);
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{}: {bytes} bytes in {:.1} s ({rate:.0} B/s), below the minimum rate of {} B/s \
                 averaged over {} s",
                self.url,
                over.as_secs_f64(),
                self.pace.min_rate,
                self.pace.window.as_secs_f64()
            ),
        )
    }

    fn past_deadline(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{}: no complete answer within the request deadline of {} s",
                self.url,
                self.pace.deadline.as_secs_f64()
            ),
        )
    }
}

impl Read for Guarded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.inner.read(buf);
        let now = Instant::now();
        let late =
            !self.pace.deadline.is_zero() && now.duration_since(self.started) >= self.pace.deadline;
        let rated = self.pace.min_rate > 0 && !self.pace.window.is_zero();
        match r {
            Err(_) if late => Err(self.past_deadline()),
            Err(e)
                if rated
                    && e.kind() == io::ErrorKind::TimedOut
                    && self.pace.window < self.pace.read_timeout =>
            {
                // The per-read timeout is the window: nothing came in it.
                Err(self.too_slow(self.window_bytes, now.duration_since(self.window_start)))
            }
            Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", self.url))),
            Ok(n) => {
                if late && n > 0 {
                    return Err(self.past_deadline());
                }
                self.window_bytes += n as u64;
                let over = now.duration_since(self.window_start);
                if rated && n > 0 && over >= self.pace.window {
                    let need = self.pace.min_rate as f64 * over.as_secs_f64();
                    if (self.window_bytes as f64) < need {
                        return Err(self.too_slow(self.window_bytes, over));
                    }
                    self.window_start = now;
                    self.window_bytes = 0;
                }
                Ok(n)
            }
        }
    }
}

fn map_ureq(e: ureq::Error, url: &str) -> BackendError {
    use ureq::Error as E;
    match e {
        // rustls reports a refused certificate or handshake as InvalidData:
        // asking again will not change the answer.
        E::Io(ref io) if io.kind() == std::io::ErrorKind::InvalidData => {
            BackendError::Other(format!("{url}: TLS: {io}"))
        }
        E::Io(_) | E::Timeout(_) | E::ConnectionFailed | E::Protocol(_) => {
            BackendError::Transient(format!("{url}: {e}"))
        }
        other => BackendError::Other(format!("{url}: {other}")),
    }
}

fn check_status(s: StatusCode) -> Result<(), BackendError> {
    match s.as_u16() {
        200..=299 => Ok(()),
        // The caller reads the offered schemes from the response.
        401 => Err(BackendError::AuthRequired {
            offered: String::new(),
            account: None,
            kerberos: None,
        }),
        403 => Err(BackendError::Denied("HTTP 403 Forbidden".into())),
        404 | 410 => Err(BackendError::NotFound),
        408 | 429 | 500..=599 => Err(BackendError::Transient(format!("HTTP status {s}"))),
        n => Err(BackendError::Status(n, String::new())),
    }
}

/// The host of a URL's authority (`after_scheme`: the URL after `://`),
/// for the DP's SPN `HTTP/<host>`: no user info, port or IPv6 brackets.
fn url_host(after_scheme: &str) -> String {
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(rest) = hostport.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        hostport.split(':').next().unwrap_or(hostport)
    };
    host.to_ascii_lowercase()
}

/// Status errors name the URL they came from.
fn with_url(e: BackendError, url: &str) -> BackendError {
    match e {
        BackendError::Transient(d) => BackendError::Transient(format!("{url}: {d}")),
        BackendError::Denied(d) => BackendError::Denied(format!("{url}: {d}")),
        BackendError::Status(n, _) => BackendError::Status(n, url.to_owned()),
        e => e,
    }
}

impl HttpBackend {
    fn read_limited(&self, url: &str, limit: u64) -> Result<Vec<u8>, BackendError> {
        let started = Instant::now();
        let (resp, lease) = self.get(url, None)?;
        let mut buf = Vec::new();
        self.body(resp, lease, url, started)
            .take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| BackendError::Transient(e.to_string()))?;
        if buf.len() as u64 > limit {
            return Err(BackendError::Other(format!(
                "{url}: answer larger than {limit} bytes"
            )));
        }
        Ok(buf)
    }
}

fn header_u64(resp: &Response<Body>, name: &str) -> Option<u64> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// `bytes START-END/TOTAL` → (START, TOTAL).
fn content_range(resp: &Response<Body>) -> Option<(u64, Option<u64>)> {
    content_range_end(resp).map(|(start, _, total)| (start, total))
}

/// `bytes START-END/TOTAL` → (START, END, TOTAL).
fn content_range_end(resp: &Response<Body>) -> Option<(u64, Option<u64>, Option<u64>)> {
    let v = resp.headers().get("content-range")?.to_str().ok()?;
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    Some((
        start.trim().parse().ok()?,
        end.trim().parse().ok(),
        total.trim().parse().ok(),
    ))
}

impl Backend for HttpBackend {
    fn list(&self, lib: Lib, rel: &[&str]) -> Result<Vec<ListingEntry>, BackendError> {
        let url = self.url(lib.name(), rel, true);
        let bytes = self.read_limited(&url, LISTING_LIMIT)?;
        let html = String::from_utf8_lossy(&bytes);
        let mut dir_path = format!("{}{}/", self.base_path, lib.name());
        for c in rel {
            dir_path.push_str(c);
            dir_path.push('/');
        }
        parse_html_listing(&html, &dir_path).map_err(|u| BackendError::Unsafe {
            name: u.name,
            reason: u.reason,
        })
    }

    fn read_small(&self, lib: Lib, rel: &[&str], limit: u64) -> Result<Vec<u8>, BackendError> {
        self.read_limited(&self.url(lib.name(), rel, false), limit)
    }

    fn stat_blob(&self, hash: &str) -> Result<Option<u64>, BackendError> {
        let url = self.blob_url(hash);
        let (resp, _lease) = self.send(Method::Head, &url, None)?;
        match resp.status().as_u16() {
            404 | 410 => return Ok(None),
            405 | 501 => {}
            _ => {
                let resp = self.check(resp, &url)?;
                if let Some(n) = header_u64(&resp, "content-length") {
                    return Ok(Some(n));
                }
            }
        }
        // No HEAD (or no length): ask for the first byte.
        match self.get(&url, Some("bytes=0-0".into())) {
            Ok((resp, _lease)) => {
                let total = content_range(&resp)
                    .and_then(|(_, t)| t)
                    .or_else(|| header_u64(&resp, "content-length"));
                Ok(total)
            }
            Err(BackendError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn open_blob(&self, hash: &str, offset: u64, len: Option<u64>) -> Result<Blob, BackendError> {
        let range = match (offset, len) {
            (0, None) => None,
            (o, None) => Some(format!("bytes={o}-")),
            (o, Some(n)) => Some(format!("bytes={o}-{}", o + n.max(1) - 1)),
        };
        let url = self.blob_url(hash);
        let started = Instant::now();
        let (resp, lease) = match self.get(&url, range) {
            Err(BackendError::Status(416, _)) if offset > 0 => {
                return Err(BackendError::Short(format!(
                    "{url} ends before byte {offset} (HTTP 416 to a request from there)"
                )))
            }
            r => r?,
        };
        let ranged = resp.status() == StatusCode::PARTIAL_CONTENT;
        // The answer ends where asked: its body (whose length ureq holds
        // to Content-Length) needs no limit of ours, and a reader that
        // reads it to its end hands the connection back for the next
        // request (an authenticated one stays authenticated).
        let exact = ranged
            && len.is_some_and(|n| {
                content_range_end(&resp).and_then(|(_, e, _)| e) == Some(offset + n.max(1) - 1)
                    && header_u64(&resp, "content-length") == Some(n.max(1))
            });
        let start = if ranged {
            match content_range(&resp) {
                Some((s, _)) if s == offset => offset,
                _ => {
                    return Err(BackendError::Transient(format!(
                        "{url}: the server answered a different byte range than asked \
                         (from byte {offset})"
                    )))
                }
            }
        } else {
            // The server ignored `Range` (200): the body is the whole blob,
            // which `Blob::offset` and `Blob::whole` tell the caller.
            0
        };
        let reader = self.body(resp, lease, &url, started);
        let reader: Box<dyn Read + Send> = match len {
            Some(n) if ranged && !exact => Box::new(reader.take(n)),
            _ => Box::new(reader),
        };
        Ok(Blob {
            reader,
            offset: start,
            whole: !ranged,
        })
    }

    fn parallel_ranges(&self) -> bool {
        true
    }

    fn blob_location(&self, hash: &str) -> String {
        self.blob_url(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::url_host;

    #[test]
    fn the_spn_host_is_the_urls_host_alone() {
        for (after, host) in [
            ("dp01.contoso.com/SMS_DP_SMSPKG$/", "dp01.contoso.com"),
            ("DP01:8443/x", "dp01"),
            ("user@dp01:80/", "dp01"),
            ("[fe80::1]:443/", "fe80::1"),
            ("127.0.0.1:8080", "127.0.0.1"),
            ("dp01?x", "dp01"),
        ] {
            assert_eq!(url_host(after), host, "{after}");
        }
    }
}
