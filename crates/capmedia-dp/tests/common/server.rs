//! A small HTTP/1.1 file server on 127.0.0.1 serving a content library as an
//! IIS DP does (IIS-style listings, `Range`), with faults injected per
//! request by the test.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

pub const PREFIX: &str = "/SMS_DP_SMSPKG$/";

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Decoded path below `PREFIX`, e.g. `FileLib/ABCD/ABCD...`.
    pub path: String,
    pub range: Option<String>,
}

/// What to do with one request.
#[derive(Debug, Clone)]
pub enum Fault {
    None,
    Status(u16),
    /// Serve the file with one byte flipped.
    Corrupt,
    /// Send the headers of the full answer and half of the body, then close.
    Truncate,
    /// Send the headers and half of the body, then say nothing for this long.
    Stall(Duration),
    /// Say nothing at all for this long, then close.
    StallHead(Duration),
    /// Answer 200 with this HTML.
    Html(String),
    /// Ignore `Range` and send the whole file.
    IgnoreRange,
    /// Send the headers, then `chunk` bytes of the body every `every`
    /// until the body is sent or the client hangs up.
    Drip {
        every: Duration,
        chunk: usize,
    },
}

type Policy = dyn Fn(&Request, usize) -> Fault + Send + Sync;

pub struct Server {
    pub port: u16,
    pub log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}{PREFIX}", self.port)
    }

    /// Requests whose path contains `needle`.
    pub fn hits(&self, needle: &str) -> Vec<Request> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.contains(needle))
            .cloned()
            .collect()
    }

    /// Serve `root` (an `SCCMContentLib`) under [`PREFIX`]; `policy` gets
    /// each request and how many earlier requests had the same method and path.
    pub fn start(
        root: PathBuf,
        policy: impl Fn(&Request, usize) -> Fault + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let policy: Arc<Policy> = Arc::new(policy);
        let counts = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
        {
            let log = log.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (root, log, policy, counts) =
                        (root.clone(), log.clone(), policy.clone(), counts.clone());
                    thread::spawn(move || {
                        let _ = serve(conn, &root, &log, &*policy, &counts);
                    });
                }
            });
        }
        Server { port, log, stop }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/$".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An IIS 10 directory-browsing page, as a DP's web site serves it.
pub fn iis_listing(host: &str, url_dir: &str, entries: &[(String, bool, u64)]) -> String {
    let mut s = format!(
        "<html><head><title>{host} - {url_dir}</title></head><body><H1>{host} - {url_dir}</H1><hr>\r\n\r\n<pre>"
    );
    if url_dir != "/" {
        let parent = &url_dir[..url_dir[..url_dir.len() - 1].rfind('/').unwrap() + 1];
        s.push_str(&format!(
            "<A HREF=\"{}\">[To Parent Directory]</A><br><br>",
            encode(parent)
        ));
    }
    for (name, is_dir, size) in entries {
        let size_col = if *is_dir {
            "&lt;dir&gt;".to_string()
        } else {
            size.to_string()
        };
        let slash = if *is_dir { "/" } else { "" };
        s.push_str(&format!(
            " 3/14/2024  9:26 AM {size_col:>12} <A HREF=\"{}{slash}\">{}</A><br>",
            encode(&format!("{url_dir}{name}")),
            name.replace('&', "&amp;").replace('<', "&lt;")
        ));
    }
    s.push_str("</pre><hr></body></html>");
    s
}

fn serve(
    mut conn: TcpStream,
    root: &std::path::Path,
    log: &Mutex<Vec<Request>>,
    policy: &Policy,
    counts: &Mutex<HashMap<String, usize>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_owned());
            }
        }
    }
    let Some(rel) = target.strip_prefix(PREFIX) else {
        return respond(&mut conn, 404, &[], b"", &method);
    };
    let path = decode(rel);
    let req = Request {
        method: method.clone(),
        path: path.clone(),
        range: range.clone(),
    };
    log.lock().unwrap().push(req.clone());
    let nth = {
        let mut c = counts.lock().unwrap();
        let n = c.entry(format!("{method} {path}")).or_insert(0);
        *n += 1;
        *n - 1
    };
    let fault = policy(&req, nth);
    match &fault {
        Fault::StallHead(d) => {
            thread::sleep(*d);
            return Ok(());
        }
        Fault::Status(s) => return respond(&mut conn, *s, &[], b"error", &method),
        Fault::Html(h) => {
            return respond(
                &mut conn,
                200,
                &[("Content-Type", "text/html".into())],
                h.as_bytes(),
                &method,
            )
        }
        _ => {}
    }
    let fs_path = root.join(path.trim_end_matches('/'));
    if path.split('/').any(|c| c == "..") {
        return respond(&mut conn, 400, &[], b"", &method);
    }
    if fs_path.is_dir() {
        let mut entries: Vec<(String, bool, u64)> = fs::read_dir(&fs_path)?
            .flatten()
            .map(|e| {
                let m = e.metadata().unwrap();
                (e.file_name().into_string().unwrap(), m.is_dir(), m.len())
            })
            .collect();
        entries.sort();
        let url_dir = format!(
            "{PREFIX}{}",
            if path.is_empty() || path.ends_with('/') {
                path.clone()
            } else {
                format!("{path}/")
            }
        );
        let html = iis_listing("dp01.contoso.com", &url_dir, &entries);
        return respond(
            &mut conn,
            200,
            &[("Content-Type", "text/html".into())],
            html.as_bytes(),
            &method,
        );
    }
    let Ok(mut data) = fs::read(&fs_path) else {
        return respond(&mut conn, 404, &[], b"not found", &method);
    };
    let total = data.len();
    if let Fault::Corrupt = fault {
        if !data.is_empty() {
            let i = data.len() / 2;
            data[i] ^= 0x55;
        }
    }
    let mut status = 200;
    let mut headers = vec![("Accept-Ranges", "bytes".to_string())];
    let mut body: &[u8] = &data;
    if let (Some(r), false) = (&range, matches!(fault, Fault::IgnoreRange)) {
        let spec = r.trim_start_matches("bytes=");
        let (a, b) = spec.split_once('-').unwrap();
        let start: usize = a.parse().unwrap();
        if start >= total {
            let headers = [("Content-Range", format!("bytes */{total}"))];
            return respond(&mut conn, 416, &headers, b"", &method);
        }
        let end: usize = if b.is_empty() {
            total - 1
        } else {
            b.parse::<usize>().unwrap().min(total - 1)
        };
        status = 206;
        headers.push(("Content-Range", format!("bytes {start}-{end}/{total}")));
        body = &data[start..=end];
    }
    match fault {
        Fault::Truncate => {
            write_head(&mut conn, status, &headers, body.len())?;
            conn.write_all(&body[..body.len() / 2])?;
            conn.flush()?;
            Ok(())
        }
        Fault::Stall(d) => {
            write_head(&mut conn, status, &headers, body.len())?;
            conn.write_all(&body[..body.len() / 2])?;
            conn.flush()?;
            thread::sleep(d);
            Ok(())
        }
        Fault::Drip { every, chunk } => {
            write_head(&mut conn, status, &headers, body.len())?;
            for piece in body.chunks(chunk.max(1)) {
                conn.write_all(piece)?;
                conn.flush()?;
                thread::sleep(every);
            }
            Ok(())
        }
        _ => respond(&mut conn, status, &headers, body, &method),
    }
}

fn write_head(
    conn: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    len: usize,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {len}\r\nConnection: close\r\n");
    if status == 401 {
        head.push_str("WWW-Authenticate: Negotiate\r\nWWW-Authenticate: NTLM\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())
}

fn respond(
    conn: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
    method: &str,
) -> std::io::Result<()> {
    write_head(conn, status, headers, body.len())?;
    if method != "HEAD" {
        conn.write_all(body)?;
    }
    conn.flush()?;
    // Drain so the client sees a clean close.
    let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
    let _ = conn.read(&mut [0u8; 64]);
    Ok(())
}
