//! Read a Configuration Manager distribution point's content library and
//! fetch verified content from it.
//!
//! A DP keeps every package as `PkgLib\<PKGID>.INI` (which content versions
//! exist), `DataLib\<ContentID>\` (the package tree, each file replaced by an
//! INI naming its size and SHA-256) and `FileLib\<HASH[0..4]>\<HASH>` (the
//! bytes, shared by every package holding the same file). [`Dp`] reads that
//! layout from a share path or over HTTP(S), resolves a package to its files,
//! checks that FileLib holds them all *before* the caller writes anything, and
//! fetches them into a [`ContentCache`] keyed by SHA-256, verifying every
//! byte on the way in.
//!
//! [`build_library`] writes the same layout from plain folders, for tests and
//! samples.

mod auth;
mod backend;
mod builder;
mod clientcert;
mod error;
mod fetch;
mod http;
mod ini;
mod listing;
mod path;
mod range;
mod smb;
mod winauth;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use capmedia_content::{ContentId, MediaPath, PackageId, PackageKind};

pub use crate::auth::{Account, AccountError, ClientCert, Credentials, Secret};
use crate::backend::{Backend, Lib};
pub use crate::builder::{
    build_library, BuildError, BuildOptions, BuiltLibrary, IniEncoding, PackageSource,
};
use crate::error::BackendError;
pub use crate::error::DpError;
pub use crate::fetch::FetchEvent;
pub use crate::fetch::{ContentCache, FetchedFile, TrustedEntry};
pub use crate::ini::{decode_ini_text, encode_utf16le_crlf, IniDoc, IniError};
pub use crate::listing::{
    check_name, parse_html_listing, ListingEntry, UnsafeEntry, MAX_LISTING_ENTRIES,
};
pub use crate::range::{ContentReader, RemoteReader};

/// How to talk to a DP. The defaults suit a DP on a LAN; tests shorten the
/// timeouts and backoff so fault cases run quickly.
#[derive(Debug, Clone)]
pub struct DpOptions {
    /// Further roots of a library spanning drives: each an `SCCMContentLib`
    /// folder holding a `FileLib`, or a `FileLib` itself; for an SMB DP,
    /// each an `smb://` URL (or `\\server\share` path) on the same server.
    pub extra_filelib_roots: Vec<PathBuf>,
    /// PEM file of CA certificates for HTTPS; `None` uses the system roots.
    pub ca_file: Option<PathBuf>,
    /// Downloads at once; also the byte ranges in flight (at most 8) for
    /// a large HTTP(S) blob ([`DpOptions::range_part`]).
    pub concurrency: usize,
    /// Further attempts after a transient failure (5xx, reset, timeout,
    /// truncated body) of one file.
    pub retries: u32,
    /// First pause before a retry; doubled on each further retry.
    pub backoff: Duration,
    pub connect_timeout: Duration,
    /// Longest silence while waiting for a response or the next bytes.
    pub read_timeout: Duration,
    /// Longest one HTTP request may take, answer and body included
    /// (`Duration::ZERO`: no limit). A request cut by it counts as a
    /// transient failure: the download resumes from where it stopped.
    pub request_deadline: Duration,
    /// Slowest acceptable transfer, in bytes per second averaged over
    /// [`DpOptions::rate_window`] (0: no minimum). A slower answer is cut
    /// and retried (resuming), like a timeout.
    pub min_rate: u64,
    /// The window [`DpOptions::min_rate`] is averaged over; a read that
    /// waits this long for a first byte is cut too.
    pub rate_window: Duration,
    /// Also compute each fetched file's BLAKE3 ([`FetchedFile::blake3`]) in
    /// the pass that verifies its SHA-256, so that a caller building a
    /// capmedia manifest need not read the bytes again.
    pub blake3: bool,
    /// Hash every cache entry again before using it, even one whose sealed
    /// stamp says it is unchanged since it was verified
    /// (`capmedia capture --verify-cache`).
    pub verify_cache: bool,
    /// The Windows account for SMB and for HTTP(S) Negotiate/NTLM; `None`
    /// reads anonymously (or as the current Kerberos ticket, where the
    /// backend supports one). Shared, not copied: a secret has one home.
    pub credentials: Option<std::sync::Arc<Credentials>>,
    /// Kerberos from the ticket cache (`KRB5CCNAME` or krb5.conf's default)
    /// for HTTP(S) DPs that offer `Negotiate`: with no account given, the
    /// cache's default principal; with an account written `user@REALM`,
    /// that principal. Where it cannot be used and a password was given,
    /// NTLM is used. On by default.
    pub kerberos: bool,
    /// The principal (`user@REALM`) whose ticket to use when no password
    /// is given (`credentials` is `None`); the CLI sets it for
    /// `--dp-user user@REALM` when the cache holds that principal's ticket.
    pub kerberos_principal: Option<String>,
    /// A PKI client certificate for HTTPS DPs that require one.
    pub client_cert: Option<std::sync::Arc<ClientCert>>,
    /// Told each retry decided outside a fetch (connecting to an SMB
    /// server), as it is decided, so that a caller can show it; a fetch
    /// reports its own retries as [`FetchEvent::Retry`].
    pub on_retry: Option<RetryNotice>,
    /// Bytes per request when an HTTP(S) blob is fetched as parallel byte
    /// ranges ([`DpOptions::concurrency`] of them in flight, appended in
    /// order); 0 fetches every blob with one request. Memory for the parts
    /// is `2 * concurrency * range_part` (16 MiB by default), whatever the
    /// blob's size. Defaults to 2 MiB, or 0 when the environment has
    /// `CAPMEDIA_DP_RANGES=0` (the benchmark's reference).
    pub range_part: u64,
    /// Blobs smaller than this are fetched with one request.
    pub range_min: u64,
}

/// A callback for [`DpOptions::on_retry`]: it gets a line such as
/// `connecting to dp01:445 (attempt 2 of 5): connection refused`.
#[derive(Clone)]
pub struct RetryNotice(pub std::sync::Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for RetryNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetryNotice")
    }
}

impl Default for DpOptions {
    fn default() -> Self {
        DpOptions {
            extra_filelib_roots: Vec::new(),
            ca_file: None,
            concurrency: 4,
            retries: 4,
            backoff: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            // A boot image package is at most a few GiB: an hour per
            // request leaves a slow WAN link room, and a cut request
            // resumes rather than starting over.
            request_deadline: Duration::from_secs(3600),
            min_rate: 16 << 10,
            rate_window: Duration::from_secs(30),
            blake3: false,
            verify_cache: false,
            credentials: None,
            kerberos: true,
            kerberos_principal: None,
            client_cert: None,
            on_retry: None,
            range_part: if std::env::var_os("CAPMEDIA_DP_RANGES").is_some_and(|v| v == "0") {
                0
            } else {
                2 << 20
            },
            range_min: 16 << 20,
        }
    }
}

/// A package as `dp list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PackageInfo {
    pub id: PackageId,
    /// The newest content version PkgLib lists, if it lists one.
    pub content: Option<ContentId>,
    pub kind: PackageKind,
    /// Sum of the file sizes DataLib records.
    pub size: u64,
    pub files: usize,
    /// Why the package could not be read in full (e.g. still being
    /// distributed), for a listing that goes on with the other packages.
    pub problem: Option<String>,
}

/// One file of a package.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContentFile {
    /// Path inside the package, relative to its root.
    pub path: MediaPath,
    pub size: u64,
    /// SHA-256, 64 upper-case hex digits as DataLib writes it.
    pub sha256: String,
}

/// A package resolved to its files, all present in FileLib when resolved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PackageContent {
    /// The DP it was resolved on (path or URL), for messages.
    pub dp: String,
    pub package: PackageId,
    pub content: ContentId,
    pub kind: PackageKind,
    /// Sorted by path.
    pub files: Vec<ContentFile>,
}

impl PackageContent {
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    pub fn file(&self, path: &str) -> Option<&ContentFile> {
        self.files
            .iter()
            .find(|f| f.path.as_str().eq_ignore_ascii_case(path))
    }
}

/// The boot image of a boot image package: `boot.<PKGID>.wim` at its root.
pub fn boot_wim(content: &PackageContent) -> Option<&ContentFile> {
    content.file(&content.package.boot_wim_name())
}

/// INIs are small; anything bigger is not an INI a DP wrote.
const INI_LIMIT: u64 = 1 << 20;
/// Folder depth beyond which a DataLib tree is taken as a loop.
const MAX_DEPTH: usize = 64;

/// A distribution point's content library.
#[derive(Debug)]
pub struct Dp {
    name: String,
    backend: Box<dyn Backend>,
    opts: DpOptions,
    /// A blob is being fetched as parallel ranges: others go as one
    /// request each, so that memory and connections stay bounded when
    /// several large blobs are fetched at once.
    ranged_busy: std::sync::atomic::AtomicBool,
}

impl Dp {
    /// Open `location`: an `http://` or `https://` URL (the DP's
    /// `SMS_DP_SMSPKG$/` or a mirror's base), an SMB share
    /// (`smb://dp01/SCCMContentLib$`, `smb://host:port/share/folder` or
    /// `\\dp01\SCCMContentLib$`; connected on first use), otherwise an
    /// `SCCMContentLib` folder.
    pub fn open(location: &str, opts: DpOptions) -> Result<Dp, DpError> {
        let lower = location.to_ascii_lowercase();
        let bad = |reason: String| DpError::BadLocation {
            location: location.to_owned(),
            reason,
        };
        let backend: Box<dyn Backend> =
            if lower.starts_with("http://") || lower.starts_with("https://") {
                if !opts.extra_filelib_roots.is_empty() {
                    return Err(bad(
                        "extra FileLib roots apply to a share path, not a URL".into()
                    ));
                }
                Box::new(http::HttpBackend::new(location, &opts).map_err(bad)?)
            } else if smb::is_smb(location) {
                Box::new(smb::SmbBackend::new(location, &opts).map_err(bad)?)
            } else if lower.contains("://") {
                return Err(bad(
                    "only smb://, http:// and https:// URLs are supported".into()
                ));
            } else {
                return Dp::open_path(std::path::Path::new(location), opts);
            };
        Ok(Dp {
            name: location.to_owned(),
            backend,
            opts,
            ranged_busy: Default::default(),
        })
    }

    /// Open an `SCCMContentLib` folder given as a path (which need not be
    /// UTF-8).
    pub fn open_path(root: &std::path::Path, opts: DpOptions) -> Result<Dp, DpError> {
        let name = root.display().to_string();
        let backend =
            path::PathBackend::new(root, &opts.extra_filelib_roots).map_err(|reason| {
                match std::fs::read_dir(root) {
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                        DpError::NoReadAccess {
                            dp: name.clone(),
                            what: "the content library folder".into(),
                            detail: e.to_string(),
                        }
                    }
                    _ => DpError::BadLocation {
                        location: name.clone(),
                        reason,
                    },
                }
            })?;
        Ok(Dp {
            name,
            backend: Box::new(backend),
            opts,
            ranged_busy: Default::default(),
        })
    }

    /// The path or URL this DP was opened with.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn options(&self) -> &DpOptions {
        &self.opts
    }

    /// Run an idempotent backend request, retrying transient failures with
    /// backoff.
    fn retry<T>(&self, f: impl Fn() -> Result<T, BackendError>) -> Result<T, BackendError> {
        let mut failures = 0;
        loop {
            match f() {
                Err(BackendError::Transient(detail)) => {
                    failures += 1;
                    if failures > self.opts.retries {
                        return Err(BackendError::GaveUp {
                            detail,
                            attempts: failures,
                        });
                    }
                    std::thread::sleep(fetch::backoff(self.opts.backoff, failures));
                }
                r => return r,
            }
        }
    }

    fn err(&self, e: BackendError, what: impl Into<String>) -> DpError {
        e.into_dp(&self.name, what)
    }

    fn no_pkglib(&self) -> DpError {
        DpError::NoPkgLib {
            dp: self.name.clone(),
            location: format!("{}/PkgLib/", self.name.trim_end_matches(['/', '\\'])),
        }
    }

    fn ini_err(&self, file: &str, e: IniError) -> DpError {
        DpError::MalformedIni {
            dp: self.name.clone(),
            file: file.to_owned(),
            line: e.line,
            reason: e.reason,
        }
    }

    /// Read and parse `lib/rel...`, matching the last name case-insensitively
    /// if the exact spelling is absent. `Ok(None)` if there is no such file.
    fn read_ini(&self, lib: Lib, rel: &[&str]) -> Result<Option<(String, IniDoc)>, DpError> {
        let shown = |rel: &[&str]| format!("{}/{}", lib.name(), rel.join("/"));
        let bytes = match self.retry(|| self.backend.read_small(lib, rel, INI_LIMIT)) {
            Ok(b) => Some((shown(rel), b)),
            Err(BackendError::NotFound) => {
                let (last, parent) = rel.split_last().unwrap_or((&"", &[]));
                let listing = match self.retry(|| self.backend.list(lib, parent)) {
                    Ok(l) => l,
                    // Without PkgLib itself this is no content library at
                    // all: "package not distributed" would mislead.
                    Err(BackendError::NotFound) if lib == Lib::PkgLib && parent.is_empty() => {
                        return Err(self.no_pkglib())
                    }
                    Err(BackendError::NotFound) => return Ok(None),
                    Err(e) => {
                        return Err(self.err(e, format!("{}/{}", lib.name(), parent.join("/"))))
                    }
                };
                match listing
                    .iter()
                    .find(|e| !e.is_dir && e.name.eq_ignore_ascii_case(last))
                {
                    Some(entry) => {
                        let mut real: Vec<&str> = parent.to_vec();
                        real.push(&entry.name);
                        let b = self
                            .retry(|| self.backend.read_small(lib, &real, INI_LIMIT))
                            .map_err(|e| self.err(e, shown(&real)))?;
                        Some((shown(&real), b))
                    }
                    None => None,
                }
            }
            Err(e) => return Err(self.err(e, shown(rel))),
        };
        match bytes {
            None => Ok(None),
            Some((name, b)) => {
                let doc = IniDoc::parse(&b).map_err(|e| self.ini_err(&name, e))?;
                Ok(Some((name, doc)))
            }
        }
    }

    /// The ids of the packages PkgLib lists: one request, without reading
    /// DataLib.
    pub fn list_package_ids(&self) -> Result<Vec<PackageId>, DpError> {
        let entries = self
            .retry(|| self.backend.list(Lib::PkgLib, &[]))
            .map_err(|e| match e {
                BackendError::NotFound => self.no_pkglib(),
                e => self.err(e, "PkgLib"),
            })?;
        let mut ids: Vec<PackageId> = entries
            .iter()
            .filter(|e| !e.is_dir)
            .filter_map(|e| ini_stem(&e.name))
            .filter_map(|stem| stem.parse().ok())
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// The packages PkgLib lists, with what DataLib says of each. A package
    /// whose DataLib cannot be read is listed with its `problem`; access
    /// errors on PkgLib itself fail the call.
    pub fn list_packages(&self) -> Result<Vec<PackageInfo>, DpError> {
        let ids = self.list_package_ids()?;
        let results =
            fetch::parallel_map(&ids, self.opts.concurrency, |id| self.resolve_unchecked(id));
        let mut out = Vec::new();
        for (id, result) in ids.into_iter().zip(results) {
            out.push(match result {
                Ok(c) => PackageInfo {
                    id,
                    size: c.total_size(),
                    files: c.files.len(),
                    kind: c.kind,
                    content: Some(c.content),
                    problem: None,
                },
                Err(
                    err @ (DpError::AuthRequired { .. }
                    | DpError::Kerberos { .. }
                    | DpError::LogonFailed { .. }
                    | DpError::ClientCertRequired { .. }
                    | DpError::ClientCertRefused { .. }
                    | DpError::NoReadAccess { .. }),
                ) => return Err(err),
                Err(err) => PackageInfo {
                    kind: default_kind(&id),
                    id,
                    content: None,
                    size: 0,
                    files: 0,
                    problem: Some(err.to_string()),
                },
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Resolve `package` to its files and check that FileLib holds every one
    /// of them with the size DataLib records, so that the caller can refuse
    /// before writing any media.
    pub fn resolve(&self, package: &PackageId) -> Result<PackageContent, DpError> {
        let content = self.resolve_unchecked(package)?;
        self.check_present(&content)?;
        Ok(content)
    }

    /// Check FileLib for every file of `content` (stat, or HEAD over HTTP).
    pub fn check_present(&self, content: &PackageContent) -> Result<(), DpError> {
        let mut unique: BTreeMap<&str, &ContentFile> = BTreeMap::new();
        for f in &content.files {
            unique.entry(f.sha256.as_str()).or_insert(f);
        }
        let files: Vec<&ContentFile> = unique.into_values().collect();
        let threads = self.opts.concurrency.clamp(1, 16);
        fetch::parallel(&files, threads, |f| {
            let missing = |detail: String| DpError::Incomplete {
                dp: self.name.clone(),
                package: content.package.clone(),
                file: f.path.to_string(),
                sha256: f.sha256.clone(),
                detail,
            };
            match self.retry(|| self.backend.stat_blob(&f.sha256)) {
                Ok(Some(n)) if n == f.size => Ok(()),
                Ok(Some(n)) => Err(missing(format!(
                    "FileLib holds {n} bytes where DataLib records {} ({})",
                    f.size,
                    self.backend.blob_location(&f.sha256)
                ))),
                Ok(None) => Err(missing(format!(
                    "FileLib lacks it ({})",
                    self.backend.blob_location(&f.sha256)
                ))),
                Err(e) => Err(self.err(
                    e,
                    format!("FileLib entry of {} in package {}", f.path, content.package),
                )),
            }
        })
    }

    /// What PkgLib and DataLib say of `package` (its files, sizes and
    /// hashes), without checking FileLib: for listings and range reads
    /// that do not fetch it (e.g. `dp list`'s boot image details). A
    /// capture uses [`Dp::resolve`].
    pub fn resolve_listed(&self, package: &PackageId) -> Result<PackageContent, DpError> {
        self.resolve_unchecked(package)
    }

    /// Resolve from PkgLib and DataLib only.
    fn resolve_unchecked(&self, package: &PackageId) -> Result<PackageContent, DpError> {
        let not_distributed = |detail: String| DpError::NotDistributed {
            dp: self.name.clone(),
            package: package.clone(),
            detail,
        };
        let pkg_ini_name = format!("{package}.INI");
        let (pkg_file, pkg_ini) = self
            .read_ini(Lib::PkgLib, &[&pkg_ini_name])?
            .ok_or_else(|| not_distributed(format!("PkgLib has no {pkg_ini_name}")))?;
        // A package's own content is `<PKGID>.<version>`; an application's
        // PkgLib INI lists `Content_<GUID>.<version>` instead (one per
        // deployment type). Take the package's own content if listed, else
        // the first content listed; the newest version of it either way.
        let listed = listed_contents(&pkg_ini).map_err(|e| self.ini_err(&pkg_file, e))?;
        let chosen = listed
            .iter()
            .find(|c| &c.package == package)
            .or(listed.first())
            .map(|c| c.package.clone());
        let best = chosen.and_then(|p| {
            listed
                .iter()
                .filter(|c| c.package == p)
                .max_by_key(|c| c.version)
                .cloned()
        });
        let content = best.ok_or_else(|| {
            not_distributed(format!(
                "{pkg_file} lists no content version of it in [Packages]"
            ))
        })?;
        let cid = content.to_string();
        let content_ini = format!("{cid}.INI");
        if self.read_ini(Lib::DataLib, &[&content_ini])?.is_none() {
            return Err(not_distributed(format!(
                "DataLib has no {content_ini} (content still being distributed, or removed)"
            )));
        }
        let mut pending: Vec<(Vec<String>, MediaPath)> = Vec::new();
        let mut dirs: Vec<(Vec<String>, usize)> = vec![(Vec::new(), 0)];
        while let Some((rel, depth)) = dirs.pop() {
            let mut full: Vec<&str> = vec![&cid];
            full.extend(rel.iter().map(String::as_str));
            let shown = format!("DataLib/{}", full.join("/"));
            let entries = match self.retry(|| self.backend.list(Lib::DataLib, &full)) {
                Ok(e) => e,
                Err(BackendError::NotFound) if rel.is_empty() => {
                    return Err(not_distributed(format!("DataLib has no folder {cid}")))
                }
                Err(e) => return Err(self.err(e, shown)),
            };
            // Folder names, to skip `<folder>.INI` beside `<folder>\` in
            // constant time per entry (DataLib folders can be large).
            let dir_names: std::collections::HashSet<String> = entries
                .iter()
                .filter(|d| d.is_dir)
                .map(|d| d.name.to_ascii_lowercase())
                .collect();
            for e in &entries {
                if e.is_dir {
                    if depth >= MAX_DEPTH {
                        return Err(DpError::UnsafeName {
                            dp: self.name.clone(),
                            location: shown.clone(),
                            name: e.name.clone(),
                            reason: format!("folders nest deeper than {MAX_DEPTH}"),
                        });
                    }
                    let mut r = rel.clone();
                    r.push(e.name.clone());
                    dirs.push((r, depth + 1));
                    continue;
                }
                let Some(stem) = ini_stem(&e.name) else {
                    continue; // not a DataLib entry (e.g. a stray file)
                };
                // `<folder>.INI` beside `<folder>\` describes the folder.
                if dir_names.contains(&stem.to_ascii_lowercase()) {
                    continue;
                }
                let mut parts: Vec<&str> = rel.iter().map(String::as_str).collect();
                parts.push(stem);
                let media =
                    MediaPath::new(&parts.join("/")).map_err(|err| DpError::UnsafeName {
                        dp: self.name.clone(),
                        location: shown.clone(),
                        name: e.name.clone(),
                        reason: err.to_string(),
                    })?;
                if pending.len() >= MAX_LISTING_ENTRIES {
                    return Err(DpError::Request {
                        dp: self.name.clone(),
                        what: format!("DataLib/{cid}"),
                        detail: format!(
                            "the package lists more than {MAX_LISTING_ENTRIES} files; \
                             no boot image holds that many"
                        ),
                    });
                }
                let mut ini_path: Vec<String> = full.iter().map(|c| (*c).to_owned()).collect();
                ini_path.push(e.name.clone());
                pending.push((ini_path, media));
            }
        }
        let read = fetch::parallel_map(&pending, self.opts.concurrency, |(ini_path, media)| {
            let parts: Vec<&str> = ini_path.iter().map(String::as_str).collect();
            let ini_shown = format!("DataLib/{}", parts.join("/"));
            let bytes = self
                .retry(|| self.backend.read_small(Lib::DataLib, &parts, INI_LIMIT))
                .map_err(|err| self.err(err, ini_shown.clone()))?;
            let doc = IniDoc::parse(&bytes).map_err(|err| self.ini_err(&ini_shown, err))?;
            self.file_entry(&ini_shown, &doc, media.clone())
        });
        let mut files = read.into_iter().collect::<Result<Vec<_>, _>>()?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let kind = if files.iter().any(|f| {
            f.path
                .as_str()
                .eq_ignore_ascii_case(&package.boot_wim_name())
        }) {
            PackageKind::BootImage
        } else {
            default_kind(&content.package)
        };
        Ok(PackageContent {
            dp: self.name.clone(),
            package: package.clone(),
            content,
            kind,
            files,
        })
    }

    fn file_entry(
        &self,
        file: &str,
        doc: &IniDoc,
        path: MediaPath,
    ) -> Result<ContentFile, DpError> {
        let (size, sha256) = file_fields(doc).map_err(|e| self.ini_err(file, e))?;
        Ok(ContentFile { path, size, sha256 })
    }
}

/// Size and SHA-256 (upper-case) from a DataLib file INI's `[File]`.
fn file_fields(doc: &IniDoc) -> Result<(u64, String), IniError> {
    let bad = |key: &str, reason: String| IniError {
        line: doc.line_of("File", key),
        reason,
    };
    if !doc.has_section("File") {
        return Err(bad("", "no [File] section".into()));
    }
    let size = doc.require("File", "Size")?;
    let size: u64 = size
        .parse()
        .map_err(|_| bad("Size", format!("Size={size:?} is not a byte count")))?;
    let hash = doc.require("File", "Hash")?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(
            "Hash",
            format!("Hash={hash:?} is not a SHA-256 (64 hex digits)"),
        ));
    }
    Ok((size, hash.to_ascii_uppercase()))
}

/// The content versions a PkgLib INI lists in `[Packages]`.
fn listed_contents(doc: &IniDoc) -> Result<Vec<ContentId>, IniError> {
    doc.keys("Packages")
        .into_iter()
        .map(|key| {
            key.parse().map_err(|_| IniError {
                line: doc.line_of("Packages", key),
                reason: format!("[Packages] key {key:?} is not a content id such as PS100005.1"),
            })
        })
        .collect()
}

/// Entry points for the fuzz targets in `fuzz/`; not an API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::{file_fields, listed_contents, parse_html_listing, IniDoc};

    /// Parse `bytes` as each INI a DP has: PkgLib (content versions) and
    /// DataLib file INIs. Errors are fine; panics are the bugs looked for.
    pub fn ini(bytes: &[u8]) {
        if let Ok(doc) = IniDoc::parse(bytes) {
            let _ = listed_contents(&doc);
            let _ = file_fields(&doc);
            let _ = doc.get("Packages", "x");
        }
    }

    /// Answer `bytes` as the NTLM challenge of an HTTP DP (what a hostile
    /// server sends in `WWW-Authenticate`). Errors are fine; panics are
    /// the bugs looked for.
    pub fn ntlm_challenge(bytes: &[u8]) {
        crate::winauth::answer_for_fuzzing(bytes);
    }

    /// Parse `html` as a listing of a few folders; every entry accepted
    /// must be a plain name (a panic otherwise, for the fuzzer to find).
    pub fn listing(html: &str) {
        for dir in ["/SMS_DP_SMSPKG$/DataLib/PS100005.3/", "/", "/a%20b/\u{e9}/"] {
            if let Ok(entries) = parse_html_listing(html, dir) {
                for e in entries {
                    assert!(crate::check_name(&e.name).is_ok(), "{:?} accepted", e.name);
                }
            }
        }
    }
}

/// `name` without a final `.INI` (any case), if it has one.
fn ini_stem(name: &str) -> Option<&str> {
    let i = name.len().checked_sub(4)?;
    (name.is_char_boundary(i) && name[i..].eq_ignore_ascii_case(".ini")).then(|| &name[..i])
}

fn default_kind(id: &PackageId) -> PackageKind {
    if id.as_str().starts_with("Content_") {
        PackageKind::Application
    } else {
        PackageKind::Unknown
    }
}
