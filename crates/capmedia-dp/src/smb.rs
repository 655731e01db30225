//! The SMB backend: a DP's `SCCMContentLib$` share read directly over SMB
//! 3 (`smb://dp01/SCCMContentLib$` or `\\dp01\SCCMContentLib$`), with no
//! mount, no root and no `cifs-utils`.
//!
//! `capmedia-smb2` speaks the protocol (signing, encryption, several READs
//! in flight on one connection); this module gives it the logon's tokens:
//! NTLMv2 with a password (or as a guest), from the messages the HTTP
//! backend sends too (`winauth.rs`), or Kerberos from the ticket cache
//! through `capmedia-gssapi`. Why not the `smb` crate, which
//! earlier versions used: it logs on only through `sspi` with a password
//! (no Kerberos from a ticket cache), cannot wait for an interim
//! STATUS_PENDING answer to a READ, and its transport needed replacing for
//! throughput; see `capmedia-smb2`'s crate docs. This module maps the
//! library layout onto share paths, connects lazily (the first request
//! names the file and package it was for, so the errors do too), finds
//! FileLib blobs on the `SCCMContentLib<D..Z>$` shares of a library that
//! spans drives, streams blobs with several READs in flight, and turns NT
//! status codes into the errors an administrator acts on.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use percent_encoding::percent_decode_str;

use capmedia_smb2::{Client, DirEntry, Handle, PendingRead, Tree};
use zeroize::Zeroizing;

use crate::backend::{Backend, Blob, Lib};
use crate::error::BackendError;
use crate::listing::{check_name, ListingEntry, MAX_LISTING_ENTRIES};
use crate::{Credentials, DpOptions};

/// The size of one SMB READ (less if the server negotiated less). Several
/// in flight keep the link busy, so a READ need not be big; and each
/// answer costs a fresh buffer of its size, which at 1 MiB glibc keeps
/// returning to the kernel and faulting in anew (measured on 127.0.0.1,
/// 256 MiB: 0.8 s of system time at 1 MiB, 0.45 s at 256 KiB).
const READ_CHUNK: usize = 256 << 10;

/// READs in flight per blob stream: one READ at a time waits a round trip
/// (and the server's disk) per READ; eight of 256 KiB keep 2 MiB on the
/// way, inside the credits the client asks for (see [`CREDITS`]).
const READS_IN_FLIGHT: usize = 8;

/// Credits the client keeps asking for: a 256 KiB READ costs 4, so 512
/// cover [`READS_IN_FLIGHT`] for 16 fetch threads.
const CREDITS: u16 = 512;

/// Reconnections one blob stream may make in a row without progress, on a
/// READ that failed for a reason other than access.
const READ_RECONNECTS: u32 = 3;

/// The standard SMB port.
const SMB_PORT: u16 = 445;

/// A folder on a share: `\\server[:port]\share[\path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SmbPath {
    pub server: String,
    pub port: u16,
    pub share: String,
    /// Folders below the share root, without separators.
    pub path: Vec<String>,
}

impl SmbPath {
    #[cfg(test)]
    fn unc(&self) -> String {
        let mut s = format!("\\\\{}\\{}", self.server, self.share);
        for p in &self.path {
            s.push('\\');
            s.push_str(p);
        }
        s
    }
}

/// Whether `location` names an SMB share rather than a local path.
pub(crate) fn is_smb(location: &str) -> bool {
    location.to_ascii_lowercase().starts_with("smb://") || location.starts_with("\\\\")
}

/// Parse `smb://server[:port]/share[/path...]` (percent-decoded) or
/// `\\server\share[\path...]`. Credentials in the URL are refused: a
/// password on the command line would show in `ps` and shell history.
pub(crate) fn parse_location(location: &str) -> Result<SmbPath, String> {
    let (authority, parts): (&str, Vec<String>) = if location.len() >= 6
        && location.is_char_boundary(6)
        && location[..6].eq_ignore_ascii_case("smb://")
    {
        let rest = &location[6..];
        if rest.contains(['?', '#']) {
            return Err("an smb:// URL must not have a query or fragment".into());
        }
        let (auth, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut parts = Vec::new();
        for p in path.split('/').filter(|p| !p.is_empty()) {
            let d = percent_decode_str(p)
                .decode_utf8()
                .map_err(|_| "the URL path is not UTF-8".to_string())?;
            parts.push(d.into_owned());
        }
        (auth, parts)
    } else if let Some(rest) = location.strip_prefix("\\\\") {
        let mut it = rest.split('\\');
        let auth = it.next().unwrap_or("");
        (
            auth,
            it.filter(|p| !p.is_empty()).map(str::to_owned).collect(),
        )
    } else {
        return Err("not an smb:// URL nor a \\\\server\\share path".into());
    };
    if authority.contains('@') {
        return Err(
            "put no account in the location: give it with --dp-user (and the password with \
             --dp-password-file or CAPMEDIA_DP_PASSWORD)"
                .into(),
        );
    }
    let (server, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (
            h,
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{p:?} is not a port number"))?,
        ),
        _ => (authority, SMB_PORT),
    };
    if server.is_empty() {
        return Err("the location has no server".into());
    }
    if server.contains(['\\', '/']) || server.chars().any(|c| c.is_control()) {
        return Err(format!("{server:?} is not a server name"));
    }
    let mut parts = parts.into_iter();
    let share = parts
        .next()
        .ok_or("the location has no share (write smb://server/SCCMContentLib$)")?;
    let path: Vec<String> = parts.collect();
    for p in std::iter::once(&share).chain(&path) {
        check_name(p).map_err(|r| format!("{p:?} in the location: {r}"))?;
    }
    Ok(SmbPath {
        server: server.to_owned(),
        port,
        share,
        path,
    })
}

/// One place FileLib blobs may be: a share and the FileLib folder in it.
#[derive(Debug, Clone)]
struct FileRoot {
    share: String,
    /// The FileLib folder's path on the share.
    filelib: Vec<String>,
    /// Found by probing (`SCCMContentLib<D..Z>$`): a missing share is
    /// skipped, not an error.
    probed: bool,
}

/// A connected share and the connection it lives on.
type Connected = (Arc<Conn>, Tree);

/// Why a request failed: the SMB client's error, the ticket's, or a logon
/// the server refused (with the client's error), for [`SmbBackend::map_err`].
enum SmbErr {
    Client(capmedia_smb2::Error),
    Ticket(capmedia_gssapi::KerberosError),
    Refused(capmedia_smb2::Error),
}

impl From<capmedia_smb2::Error> for SmbErr {
    fn from(e: capmedia_smb2::Error) -> Self {
        SmbErr::Client(e)
    }
}

/// A READ's failure as the stream reports it: an access the server
/// refuses reads as `PermissionDenied`.
fn read_error(e: capmedia_smb2::Error) -> io::Error {
    match e {
        capmedia_smb2::Error::Io(e) => e,
        e if matches!(
            e.status(),
            Some(status::ACCESS_DENIED | status::NETWORK_ACCESS_DENIED)
        ) =>
        {
            io::Error::new(io::ErrorKind::PermissionDenied, e.to_string())
        }
        e => io::Error::other(e.to_string()),
    }
}

/// The live SMB connection, its logon and the trees connected so far.
/// Replaced as a whole after a transport failure, so that a retry starts
/// from a fresh connection.
struct Conn {
    client: Client,
    /// Set once the logon, made with the first tree (the main share's),
    /// succeeded; further shares are connected on it. The mutex makes the
    /// one logon.
    logon: Mutex<bool>,
    /// Share name (lower case) to its tree; `None`: the server has no
    /// such share (remembered for probed drive shares).
    trees: Mutex<HashMap<String, Option<Tree>>>,
    /// The READ size: [`READ_CHUNK`] or the server's maximum if smaller.
    read_chunk: usize,
    /// Set when the connection is no longer fit for use; the next request
    /// makes a new one.
    broken: AtomicBool,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Conn")
    }
}

/// Cheap to clone: the connection and probing state are shared, so that a
/// blob stream can reconnect and reopen its blob by itself.
#[derive(Debug, Clone)]
pub(crate) struct SmbBackend {
    server: String,
    port: u16,
    /// The share and folder holding PkgLib, DataLib and FileLib.
    root: SmbPath,
    filelibs: Vec<FileRoot>,
    credentials: Option<Arc<Credentials>>,
    /// Log on with the ticket cache when no password is given: `Some`
    /// (with the principal asked for, if any) when Kerberos is allowed.
    kerberos: Option<Option<String>>,
    connect_timeout: Duration,
    read_timeout: Duration,
    retries: u32,
    backoff: Duration,
    on_retry: Option<crate::RetryNotice>,
    conn: Arc<Mutex<Option<Arc<Conn>>>>,
    /// Drive shares probing has already added to `filelibs`.
    probed: Arc<Mutex<Option<Vec<FileRoot>>>>,
}

/// NT status codes this backend gives a meaning to ([MS-ERREF] 2.3.1).
mod status {
    pub const NO_SUCH_FILE: u32 = 0xC000_000F;
    pub const ACCESS_DENIED: u32 = 0xC000_0022;
    pub const OBJECT_NAME_NOT_FOUND: u32 = 0xC000_0034;
    pub const OBJECT_PATH_NOT_FOUND: u32 = 0xC000_003A;
    pub const NO_SUCH_USER: u32 = 0xC000_0064;
    pub const WRONG_PASSWORD: u32 = 0xC000_006A;
    pub const LOGON_FAILURE: u32 = 0xC000_006D;
    pub const ACCOUNT_RESTRICTION: u32 = 0xC000_006E;
    pub const PASSWORD_EXPIRED: u32 = 0xC000_0071;
    pub const ACCOUNT_DISABLED: u32 = 0xC000_0072;
    pub const BAD_NETWORK_NAME: u32 = 0xC000_00CC;
    pub const ACCOUNT_LOCKED_OUT: u32 = 0xC000_0234;
    pub const NETWORK_ACCESS_DENIED: u32 = 0xC000_00CA;
}

impl SmbBackend {
    pub(crate) fn new(location: &str, opts: &DpOptions) -> Result<Self, String> {
        let root = parse_location(location)?;
        let mut main_filelib = root.path.clone();
        main_filelib.push("FileLib".into());
        let mut filelibs = vec![FileRoot {
            share: root.share.clone(),
            filelib: main_filelib,
            probed: false,
        }];
        for extra in &opts.extra_filelib_roots {
            let s = extra.to_str().ok_or_else(|| {
                format!(
                    "extra FileLib root {} is not an smb:// URL",
                    extra.display()
                )
            })?;
            let p = parse_location(s).map_err(|e| format!("extra FileLib root {s:?}: {e}"))?;
            if !p.server.eq_ignore_ascii_case(&root.server) || p.port != root.port {
                return Err(format!(
                    "extra FileLib root {s:?} is on another server than the DP; a library \
                     spans the drives of one server"
                ));
            }
            let mut filelib = p.path.clone();
            if !filelib
                .last()
                .is_some_and(|l| l.eq_ignore_ascii_case("FileLib"))
            {
                filelib.push("FileLib".into());
            }
            filelibs.push(FileRoot {
                share: p.share,
                filelib,
                probed: false,
            });
        }
        Ok(SmbBackend {
            server: root.server.clone(),
            port: root.port,
            root,
            filelibs,
            credentials: opts.credentials.clone(),
            kerberos: (opts.kerberos && opts.credentials.is_none())
                .then(|| opts.kerberos_principal.clone()),
            connect_timeout: opts.connect_timeout,
            read_timeout: opts.read_timeout,
            retries: opts.retries,
            backoff: opts.backoff,
            on_retry: opts.on_retry.clone(),
            conn: Arc::new(Mutex::new(None)),
            probed: Arc::new(Mutex::new(None)),
        })
    }

    /// The account as messages show it.
    fn account(&self) -> String {
        match (&self.credentials, &self.kerberos) {
            (Some(c), _) => c.account.to_string(),
            (None, Some(Some(p))) => p.clone(),
            (None, Some(None)) if self.use_kerberos() => {
                capmedia_gssapi::describe_default_principal()
            }
            _ => "anonymous (guest)".into(),
        }
    }

    /// Whether to log on with a Kerberos ticket: no password given,
    /// Kerberos allowed, and a valid ticket in the cache (the asked-for
    /// principal's, which must then be there; else the default one's,
    /// without which the logon is a guest's, as before).
    fn use_kerberos(&self) -> bool {
        match &self.kerberos {
            Some(Some(_)) => true,
            Some(None) => capmedia_gssapi::have_ticket(None).is_ok(),
            None => false,
        }
    }

    fn unc_of(&self, share: &str, rel: &[&str]) -> String {
        let mut s = format!("\\\\{}\\{share}", self.server);
        for r in rel {
            s.push('\\');
            s.push_str(r);
        }
        s
    }

    /// Connect to the server over TCP, retrying with backoff: an
    /// unreachable DP is reported in bounded time (`(retries + 1) ×
    /// connect_timeout` plus the pauses).
    fn reach(&self) -> Result<TcpStream, BackendError> {
        let addrs: Vec<SocketAddr> = match (self.server.as_str(), self.port).to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(e) => {
                return Err(BackendError::Unreachable {
                    server: self.server.clone(),
                    detail: format!("cannot resolve the name: {e}"),
                    attempts: 1,
                })
            }
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut last = String::from("no address");
            for a in &addrs {
                match TcpStream::connect_timeout(a, self.connect_timeout) {
                    Ok(s) => return Ok(s),
                    Err(e) => last = format!("{a}: {e}"),
                }
            }
            if attempts > self.retries {
                return Err(BackendError::Unreachable {
                    server: format!("{}:{}", self.server, self.port),
                    detail: last,
                    attempts,
                });
            }
            if let Some(notice) = &self.on_retry {
                (notice.0)(&format!(
                    "connecting to {}:{} (attempt {} of {}): {last}",
                    self.server,
                    self.port,
                    attempts + 1,
                    self.retries + 1
                ));
            }
            std::thread::sleep(crate::fetch::backoff(self.backoff, attempts));
        }
    }

    fn conn(&self) -> Result<Arc<Conn>, BackendError> {
        let mut guard = self.conn.lock().map_err(|_| poisoned())?;
        if let Some(c) = guard.as_ref() {
            if !c.broken.load(Ordering::Relaxed) {
                return Ok(c.clone());
            }
        }
        *guard = None;
        let stream = self.reach()?;
        let timeout = self.read_timeout.max(self.connect_timeout);
        let what = format!("\\\\{}", self.server);
        let client = Client::connect(
            stream,
            capmedia_smb2::Config {
                timeout,
                credits: CREDITS,
            },
        )
        .map_err(|e| self.map_err(e, &what))?;
        let c = Arc::new(Conn {
            read_chunk: usize::try_from(client.max_read())
                .unwrap_or(READ_CHUNK)
                .clamp(64 << 10, READ_CHUNK),
            client,
            logon: Mutex::new(false),
            trees: Mutex::new(HashMap::new()),
            broken: AtomicBool::new(false),
        });
        *guard = Some(c.clone());
        Ok(c)
    }

    /// Forget the connection after a transport failure.
    fn reset(&self, failed: &Arc<Conn>) {
        if let Ok(mut g) = self.conn.lock() {
            if g.as_ref().is_some_and(|c| Arc::ptr_eq(c, failed)) {
                *g = None;
            }
        }
    }

    /// The tree of `share`, connecting (and logging on) on first use.
    /// `Ok(None)` if the server has no such share and `probing`.
    fn tree(&self, share: &str, probing: bool) -> Result<Option<Connected>, BackendError> {
        let conn = self.conn()?;
        let key = share.to_ascii_lowercase();
        if let Some(t) = conn.trees.lock().map_err(|_| poisoned())?.get(&key) {
            return Ok(t.clone().map(|t| (conn.clone(), t)));
        }
        let main = &self.root.share;
        let connected: Result<Tree, SmbErr> = if share.eq_ignore_ascii_case(main) {
            self.logon_tree(&conn, share)
        } else {
            // Further shares (FileLib on other drives) share the main
            // share's session: one logon, and a missing share costs one
            // TREE_CONNECT, not a logon.
            self.tree(main, false)?;
            if !*conn.logon.lock().map_err(|_| poisoned())? {
                // The main share was connected on a newer connection
                // meanwhile: start over on that one.
                return Err(BackendError::Transient(format!(
                    "\\\\{}\\{share}: the connection was replaced",
                    self.server
                )));
            }
            conn.client
                .tree_connect(&self.server, share)
                .map_err(SmbErr::from)
        };
        match connected {
            Ok(t) => {
                conn.trees
                    .lock()
                    .map_err(|_| poisoned())?
                    .insert(key, Some(t.clone()));
                Ok(Some((conn, t)))
            }
            Err(e) => match self.map_err(e, &format!("\\\\{}\\{share}", self.server)) {
                BackendError::NoShare { .. } if probing => {
                    conn.trees.lock().map_err(|_| poisoned())?.insert(key, None);
                    Ok(None)
                }
                err => {
                    if matches!(err, BackendError::Transient(_)) {
                        self.reset(&conn);
                    }
                    Err(err)
                }
            },
        }
    }

    /// Log on (with the Kerberos ticket, the password, or as a guest) and
    /// connect the main share.
    fn logon_tree(&self, conn: &Conn, share: &str) -> Result<Tree, SmbErr> {
        let mut done = conn.logon.lock().map_err(|_| {
            SmbErr::Client(capmedia_smb2::Error::Io(io::Error::other(
                "a thread panicked while logging on",
            )))
        })?;
        if !*done {
            if self.use_kerberos() {
                let principal = self.kerberos.clone().flatten();
                let mut ctx = capmedia_gssapi::ClientContext::new(
                    "cifs",
                    &self.server,
                    principal.as_deref(),
                    capmedia_gssapi::FLAG_MUTUAL | capmedia_gssapi::FLAG_INTEG,
                )
                .map_err(SmbErr::Ticket)?;
                let mut gss = Gss {
                    ctx: &mut ctx,
                    failed: None,
                };
                let r = conn.client.logon(&mut gss, false);
                if let Some(e) = gss.failed {
                    return Err(SmbErr::Ticket(e));
                }
                r.map_err(|e| match e.status() {
                    Some(_) => SmbErr::Refused(e),
                    None => SmbErr::Client(e),
                })?;
            } else {
                // No account: `Guest` with no password, which a DP that
                // lets guests in (or maps unknown accounts to its guest)
                // takes as a guest session.
                let guest;
                let creds = match &self.credentials {
                    Some(c) => c.as_ref(),
                    None => {
                        guest = Credentials {
                            account: crate::Account {
                                user: "Guest".into(),
                                domain: String::new(),
                                upn: false,
                            },
                            password: crate::Secret::new(String::new()),
                        };
                        &guest
                    }
                };
                let mut ntlm = Ntlm { creds, key: None };
                conn.client
                    .logon(&mut ntlm, self.credentials.is_none())
                    .map_err(SmbErr::Client)?;
            }
            *done = true;
        }
        Ok(conn.client.tree_connect(&self.server, share)?)
    }

    /// Open `rel` (relative to the share root) on `share`.
    fn open(&self, share: &str, rel: &[&str]) -> Result<(Arc<Conn>, Handle), BackendError> {
        let (conn, tree) = self
            .tree(share, false)?
            .ok_or_else(|| BackendError::NoShare {
                share: self.unc_of(share, &[]),
                account: self.account(),
            })?;
        let path = rel.join("\\");
        match tree.open(&path) {
            Ok(h) => Ok((conn, h)),
            Err(e) => {
                let err = self.map_err(e, &self.unc_of(share, rel));
                if matches!(err, BackendError::Transient(_)) {
                    self.reset(&conn);
                }
                Err(err)
            }
        }
    }

    /// `lib/rel...` below the library root, as share-relative components.
    fn lib_path<'a>(&'a self, lib: Lib, rel: &[&'a str]) -> Vec<&'a str> {
        let mut p: Vec<&str> = self.root.path.iter().map(String::as_str).collect();
        p.push(lib.name());
        p.extend_from_slice(rel);
        p
    }

    /// NT status and transport failures as the DP layer understands them.
    fn map_err(&self, e: impl Into<SmbErr>, what: &str) -> BackendError {
        use capmedia_smb2::Error as E;
        let e = match e.into() {
            SmbErr::Client(e) => e,
            SmbErr::Ticket(e) => return kerberos_error(e),
            SmbErr::Refused(e) => {
                return BackendError::Kerberos(format!(
                    "{what} refused the logon of {} ({e}): the principal has no account \
                     on the DP, or no right to reach it over the network",
                    self.account()
                ))
            }
        };
        if let Some(code) = e.status() {
            return self.map_status(code, e.to_string(), what);
        }
        match e {
            e if e.is_transient() => BackendError::Transient(format!("{what}: {e}")),
            // (`.` and `..` are two of what the client counted.)
            E::TooManyEntries(_) => BackendError::Other(format!(
                "{what} has more than {MAX_LISTING_ENTRIES} entries; no DP folder holds that many"
            )),
            E::Auth(detail) if self.use_kerberos() => BackendError::Kerberos(format!(
                "the Kerberos logon to {what} as {} failed: {detail}",
                self.account()
            )),
            // NTLM refused before the server could say why (e.g. a guest
            // session where an account was given).
            E::Auth(detail) => BackendError::Logon {
                account: self.account(),
                detail,
            },
            e => BackendError::Other(format!("{what}: {e}")),
        }
    }

    /// An NT status as the DP layer understands it.
    fn map_status(&self, code: u32, text: String, what: &str) -> BackendError {
        let account = self.account();
        match code {
            status::LOGON_FAILURE
            | status::WRONG_PASSWORD
            | status::NO_SUCH_USER
            | status::ACCOUNT_RESTRICTION
            | status::PASSWORD_EXPIRED
            | status::ACCOUNT_DISABLED
            | status::ACCOUNT_LOCKED_OUT => BackendError::Logon {
                account,
                detail: text,
            },
            status::ACCESS_DENIED | status::NETWORK_ACCESS_DENIED => {
                BackendError::Denied(format!("{what}: access denied to account {account}"))
            }
            status::BAD_NETWORK_NAME => BackendError::NoShare {
                share: what.to_owned(),
                account,
            },
            status::OBJECT_NAME_NOT_FOUND
            | status::OBJECT_PATH_NOT_FOUND
            | status::NO_SUCH_FILE => BackendError::NotFound,
            _ => BackendError::Other(format!("{what}: {text}")),
        }
    }

    fn io_err(&self, e: io::Error, what: &str) -> BackendError {
        if e.kind() == io::ErrorKind::PermissionDenied {
            return BackendError::Denied(format!(
                "{what}: access denied to account {}",
                self.account()
            ));
        }
        BackendError::Transient(format!("{what}: {e}"))
    }

    /// Every FileLib root: the given ones, then (once, on the first blob
    /// they lack) the `SCCMContentLib<D..Z>$` shares the server has.
    fn filelib_roots(&self, with_probed: bool) -> Result<Vec<FileRoot>, BackendError> {
        let mut roots = self.filelibs.clone();
        if !with_probed || !self.root.share.eq_ignore_ascii_case("SCCMContentLib$") {
            return Ok(roots);
        }
        let mut probed = self.probed.lock().map_err(|_| poisoned())?;
        if probed.is_none() {
            let mut found = Vec::new();
            for d in b'D'..=b'Z' {
                let share = format!("SCCMContentLib{}$", d as char);
                if roots.iter().any(|r| r.share.eq_ignore_ascii_case(&share)) {
                    continue;
                }
                match self.tree(&share, true) {
                    Ok(Some(_)) => found.push(FileRoot {
                        share,
                        filelib: vec!["FileLib".into()],
                        probed: true,
                    }),
                    Ok(None) => {}
                    // A share we may not enter is skipped here; the
                    // blob's absence is reported with where it was sought.
                    Err(BackendError::Denied(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            *probed = Some(found);
        }
        roots.extend(probed.iter().flatten().cloned());
        Ok(roots)
    }

    /// Open blob `hash` on the first FileLib root holding it.
    fn open_blob_file(&self, hash: &str) -> Result<Option<(Arc<Conn>, Handle)>, BackendError> {
        let prefix = hash.get(..4).ok_or(BackendError::NotFound)?;
        for with_probed in [false, true] {
            let roots = self.filelib_roots(with_probed)?;
            let skip = if with_probed { self.filelibs.len() } else { 0 };
            for root in roots.iter().skip(skip) {
                let mut rel: Vec<&str> = root.filelib.iter().map(String::as_str).collect();
                rel.push(prefix);
                rel.push(hash);
                match self.open(&root.share, &rel) {
                    Ok((conn, f)) if !f.is_dir() => return Ok(Some((conn, f))),
                    Ok((_, other)) => {
                        let _ = other.close();
                        return Err(BackendError::Other(format!(
                            "{} is not a file",
                            self.unc_of(&root.share, &rel)
                        )));
                    }
                    Err(BackendError::NotFound) => {}
                    Err(BackendError::NoShare { .. }) if root.probed => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(None)
    }
}

fn poisoned() -> BackendError {
    BackendError::Other("SMB connection state poisoned by a panicked thread".into())
}

/// The Kerberos logon's security context for `capmedia-smb2`, keeping the
/// ticket's own error (no ticket, expired, no SPN...) to report it by name.
struct Gss<'a> {
    ctx: &'a mut capmedia_gssapi::ClientContext,
    failed: Option<capmedia_gssapi::KerberosError>,
}

impl capmedia_smb2::SecurityContext for Gss<'_> {
    fn step(&mut self, input: Option<&[u8]>) -> Result<Option<Vec<u8>>, String> {
        self.ctx.step(input).map_err(|e| {
            let text = e.to_string();
            self.failed = Some(e);
            text
        })
    }

    fn is_complete(&self) -> bool {
        self.ctx.is_complete()
    }

    fn session_key(&self) -> Result<Vec<u8>, String> {
        self.ctx.session_key().map_err(|e| e.to_string())
    }
}

/// A ticket that cannot be used, as the DP layer reports it.
fn kerberos_error(e: capmedia_gssapi::KerberosError) -> BackendError {
    BackendError::Kerberos(e.to_string())
}

/// The NTLM logon's security context for `capmedia-smb2`: raw NTLMSSP
/// (NTLMv2, as SMB servers take it without SPNEGO around it) from the
/// messages the HTTP backend also sends (`winauth.rs`, `ntlmclient`).
/// Complete once it has answered the challenge: NTLM has no mutual
/// authentication, so the server's last token is not checked.
struct Ntlm<'a> {
    creds: &'a Credentials,
    key: Option<Zeroizing<Vec<u8>>>,
}

impl capmedia_smb2::SecurityContext for Ntlm<'_> {
    fn step(&mut self, input: Option<&[u8]>) -> Result<Option<Vec<u8>>, String> {
        match (input, &self.key) {
            (_, Some(_)) => Ok(None),
            (None, None) => {
                crate::winauth::negotiate_message_with(crate::winauth::SMB_FLAGS).map(Some)
            }
            (Some(challenge), None) => {
                let (msg, key) =
                    crate::winauth::ntlm_answer(challenge, self.creds, crate::winauth::SMB_FLAGS)?;
                self.key = Some(key);
                Ok(Some(msg))
            }
        }
    }

    fn is_complete(&self) -> bool {
        self.key.is_some()
    }

    fn session_key(&self) -> Result<Vec<u8>, String> {
        self.key
            .as_ref()
            .map(|k| k.to_vec())
            .ok_or_else(|| "no NTLM session key before the challenge is answered".into())
    }
}

/// One READ on its way: the range asked for, and its answer to come (or
/// why it could not be asked). One dropped unanswered costs nothing: the
/// client drops the answer when it comes.
struct InFlight {
    offset: u64,
    len: usize,
    read: io::Result<PendingRead>,
}

/// A blob streamed by SMB READs, [`READS_IN_FLIGHT`] at a time, in order;
/// closed on drop. A READ that fails for a reason other than access is
/// asked again on a new connection (the blob reopened), a few times in a
/// row at most.
struct SmbReader {
    /// To reconnect and reopen the blob.
    backend: SmbBackend,
    /// The blob, if this is one (a small library file is not reopened).
    hash: Option<String>,
    /// Keeps the connection (and its reader thread) alive while reading.
    conn: Arc<Conn>,
    file: Handle,
    /// The next offset to ask for.
    ask: u64,
    /// The offset of the next byte handed out.
    pos: u64,
    end: u64,
    inflight: VecDeque<InFlight>,
    /// The answer being handed out, and how much of it is left.
    cur: Vec<u8>,
    cur_at: usize,
    cur_len: usize,
    /// Buffers to reuse (at most [`READS_IN_FLIGHT`] + 1 exist).
    spare: Vec<Vec<u8>>,
    /// Reconnections since the last READ that succeeded.
    reconnects: u32,
}

impl SmbReader {
    fn new(
        backend: SmbBackend,
        hash: Option<&str>,
        conn: Arc<Conn>,
        file: Handle,
        pos: u64,
        end: u64,
    ) -> Self {
        SmbReader {
            backend,
            hash: hash.map(str::to_owned),
            conn,
            file,
            ask: pos,
            pos,
            end,
            inflight: VecDeque::new(),
            cur: Vec::new(),
            cur_at: 0,
            cur_len: 0,
            spare: Vec::new(),
            reconnects: 0,
        }
    }

    /// Ask for more until [`READS_IN_FLIGHT`] are on their way or the
    /// range is covered.
    fn fill(&mut self) -> io::Result<()> {
        let chunk = self.conn.read_chunk;
        while self.inflight.len() < READS_IN_FLIGHT && self.ask < self.end {
            let len = usize::try_from(self.end - self.ask)
                .unwrap_or(usize::MAX)
                .min(chunk);
            let offset = self.ask;
            // `len` is at most READ_CHUNK.
            let read = self
                .file
                .start_read(offset, u32::try_from(len).unwrap_or(u32::MAX))
                .map_err(read_error);
            self.inflight.push_back(InFlight { offset, len, read });
            self.ask += len as u64;
        }
        Ok(())
    }

    /// Forget every READ on its way (their answers are dropped as they
    /// come).
    fn drain(&mut self) {
        self.inflight.clear();
        self.ask = self.pos;
    }

    /// After a failed READ: a new connection, the blob opened again on it,
    /// and the READs asked again from where the stream is.
    fn reconnect(&mut self, why: io::Error) -> io::Result<()> {
        self.drain();
        self.conn.broken.store(true, Ordering::Relaxed);
        let Some(hash) = self.hash.clone() else {
            return Err(why);
        };
        if let Some(notice) = &self.backend.on_retry {
            (notice.0)(&format!(
                "reading blob {hash} from {}: {why}; reconnecting",
                self.backend.server
            ));
        }
        // Not closed: the old connection goes as a whole (its handles
        // with it), and a request on it might wait for credits it lost.
        match self.backend.open_blob_file(&hash) {
            Ok(Some((conn, file))) => {
                self.conn = conn;
                self.file = file;
                Ok(())
            }
            Ok(None) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the blob is gone from the DP",
            )),
            Err(BackendError::Denied(why)) => {
                Err(io::Error::new(io::ErrorKind::PermissionDenied, why))
            }
            Err(e) => Err(io::Error::other(format!(
                "reopening after a failed READ: {e:?}"
            ))),
        }
    }
}

impl Read for SmbReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.cur_at < self.cur_len {
                let have = self.cur.get(self.cur_at..self.cur_len).unwrap_or_default();
                let n = have.len().min(buf.len());
                if let (Some(to), Some(from)) = (buf.get_mut(..n), have.get(..n)) {
                    to.copy_from_slice(from);
                }
                self.cur_at += n;
                self.pos += n as u64;
                return Ok(n);
            }
            if self.pos >= self.end || buf.is_empty() {
                return Ok(0);
            }
            self.fill()?;
            let Some(next) = self.inflight.pop_front() else {
                return Ok(0);
            };
            let mut data = self.spare.pop().unwrap_or_default();
            data.resize(next.len, 0);
            let got = next
                .read
                .and_then(|r| r.wait_into(&mut data).map_err(read_error));
            match got {
                Ok(n) => {
                    self.reconnects = 0;
                    let n = n.min(next.len);
                    self.spare.push(std::mem::replace(&mut self.cur, data));
                    self.cur_at = 0;
                    self.cur_len = n;
                    if n == 0 {
                        // The file ended early: report the end, the
                        // fetch checks the length.
                        self.drain();
                        self.end = self.pos;
                    } else if n < next.len {
                        // A short answer: what was asked after it is at
                        // the wrong offsets.
                        self.drain();
                        self.ask = next.offset + n as u64;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    self.spare.push(data);
                    return Err(e);
                }
                Err(e) => {
                    self.spare.push(data);
                    self.reconnects += 1;
                    if self.reconnects > READ_RECONNECTS {
                        self.drain();
                        self.conn.broken.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                    self.reconnect(e)?;
                }
            }
        }
    }
}

impl Drop for SmbReader {
    fn drop(&mut self) {
        self.drain();
        if !self.conn.broken.load(Ordering::Relaxed) {
            let _ = self.file.close();
        }
    }
}

impl Backend for SmbBackend {
    fn list(&self, lib: Lib, rel: &[&str]) -> Result<Vec<ListingEntry>, BackendError> {
        let path = self.lib_path(lib, rel);
        let shown = self.unc_of(&self.root.share, &path);
        let (conn, dir) = self.open(&self.root.share, &path)?;
        if !dir.is_dir() {
            let _ = dir.close();
            return Err(BackendError::Other(format!("{shown} is not a folder")));
        }
        let result = (|| {
            let mut out = Vec::new();
            // Two more for `.` and `..`.
            let entries = dir
                .list(MAX_LISTING_ENTRIES.saturating_add(2))
                .map_err(|e| self.map_err(e, &shown))?;
            for DirEntry { name, is_dir, size } in entries {
                if name == "." || name == ".." {
                    continue;
                }
                if out.len() >= MAX_LISTING_ENTRIES {
                    return Err(self.map_err(
                        capmedia_smb2::Error::TooManyEntries(MAX_LISTING_ENTRIES),
                        &shown,
                    ));
                }
                check_name(&name).map_err(|r| BackendError::Unsafe {
                    name: name.clone(),
                    reason: r.into(),
                })?;
                out.push(ListingEntry {
                    name,
                    is_dir,
                    size: (!is_dir).then_some(size),
                });
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })();
        let _ = dir.close();
        if matches!(result, Err(BackendError::Transient(_))) {
            self.reset(&conn);
        }
        result
    }

    fn read_small(&self, lib: Lib, rel: &[&str], limit: u64) -> Result<Vec<u8>, BackendError> {
        let path = self.lib_path(lib, rel);
        let shown = self.unc_of(&self.root.share, &path);
        let (conn, file) = self.open(&self.root.share, &path)?;
        if file.is_dir() {
            let _ = file.close();
            return Err(BackendError::Other(format!("{shown} is not a file")));
        }
        let len = file.size();
        if len > limit {
            let _ = file.close();
            return Err(BackendError::Other(format!(
                "{shown} is larger than {limit} bytes"
            )));
        }
        let mut reader = SmbReader::new(self.clone(), None, conn.clone(), file, 0, len);
        // `len` <= limit, itself small (an INI limit).
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        match reader.read_to_end(&mut buf) {
            Ok(_) => Ok(buf),
            Err(e) => {
                let err = self.io_err(e, &shown);
                if matches!(err, BackendError::Transient(_)) {
                    self.reset(&conn);
                }
                Err(err)
            }
        }
    }

    fn stat_blob(&self, hash: &str) -> Result<Option<u64>, BackendError> {
        match self.open_blob_file(hash)? {
            Some((_, f)) => {
                let len = f.size();
                let _ = f.close();
                Ok(Some(len))
            }
            None => Ok(None),
        }
    }

    fn open_blob(&self, hash: &str, offset: u64, len: Option<u64>) -> Result<Blob, BackendError> {
        let (conn, file) = self.open_blob_file(hash)?.ok_or(BackendError::NotFound)?;
        let size = file.size();
        let end = match len {
            Some(n) => offset.saturating_add(n).min(size),
            None => size,
        };
        let reader = SmbReader::new(self.clone(), Some(hash), conn, file, offset, end);
        Ok(Blob {
            reader: Box::new(ReadErr {
                inner: reader,
                what: self.blob_location(hash),
                account: self.account(),
            }),
            offset,
            whole: false,
        })
    }

    fn blob_location(&self, hash: &str) -> String {
        let prefix = hash.get(..4).unwrap_or(hash);
        let mut shown: Vec<String> = self
            .filelibs
            .iter()
            .map(|r| {
                let mut rel: Vec<&str> = r.filelib.iter().map(String::as_str).collect();
                rel.push(prefix);
                rel.push(hash);
                self.unc_of(&r.share, &rel)
            })
            .collect();
        if self.root.share.eq_ignore_ascii_case("SCCMContentLib$") {
            shown.push(format!(
                "\\\\{}\\SCCMContentLib<D..Z>$\\FileLib\\{prefix}\\{hash}",
                self.server
            ));
        }
        shown.join(" or ")
    }
}

/// Names the blob and account in a read error (an SMB READ refused for
/// want of access reads as "No read permission" otherwise).
struct ReadErr {
    inner: SmbReader,
    what: String,
    account: String,
}

impl Read for ReadErr {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{}: {e} (account {})", self.what, self.account),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_in_both_spellings() {
        let a = parse_location("smb://dp01/SCCMContentLib$").unwrap();
        assert_eq!(
            (a.server.as_str(), a.port, a.share.as_str(), a.path.len()),
            ("dp01", 445, "SCCMContentLib$", 0)
        );
        let b = parse_location("\\\\dp01\\SCCMContentLib$").unwrap();
        assert_eq!(a, b);
        let c = parse_location("smb://127.0.0.1:4450/E%24/SCCMContentLib/").unwrap();
        assert_eq!(
            (c.server.as_str(), c.port, c.share.as_str()),
            ("127.0.0.1", 4450, "E$")
        );
        assert_eq!(c.path, vec!["SCCMContentLib".to_string()]);
        assert_eq!(c.unc(), "\\\\127.0.0.1\\E$\\SCCMContentLib");
        for bad in [
            "smb://dp01",
            "smb:///share",
            "smb://u:p@dp01/share",
            "smb://dp01:0/s",
            "smb://dp01:x/s",
            "smb://dp01/s/..",
            "\\\\dp01",
            "smb://dp01/s?x",
        ] {
            assert!(parse_location(bad).is_err(), "{bad}");
        }
        assert!(is_smb("SMB://x/y") && is_smb("\\\\x\\y") && !is_smb("/mnt/x"));
    }
}
