//! The host side: find plugin libraries, check them, and call them through
//! the safe [`MediaSink`] trait.
//!
//! A library in a plugin folder is foreign code that runs inside capmedia as
//! soon as it is loaded. One bad library (truncated, crashing or hanging in
//! `describe`, a lying vtable) must not take every command down with it, so
//! [`PluginRegistry::load_probed`] first loads each library in a child
//! process ([`probe`]; the child runs [`probe_report`]) with a timeout, and
//! loads in-process only the libraries whose probe succeeded. What is read
//! from a vtable is bounded and NULL-checked ([`PluginSink::load`]) in both
//! processes.

use std::ffi::{c_void, OsString};
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::abi::{
    bytes, CallFn, EntryFn, HostCallbacks, SinkVTable, ABI_MAGIC, ABI_MAJOR, ABI_MINOR,
    ENTRY_SYMBOL, STATUS_BAD_HOST, STATUS_BAD_REQUEST, STATUS_ERROR, STATUS_OK, STATUS_PANIC,
};
use crate::content::MediaPlan;
use crate::{
    Cancel, CheckReport, ErrorKind, MediaSink, NeverCancel, NoProgress, Progress, SinkError,
    SinkInfo, VerifyReport, VerifyRequest, WriteReport,
};

/// The environment variable listing extra plugin folders (`:`-separated).
pub const PLUGIN_PATH_ENV: &str = "CAPMEDIA_PLUGIN_PATH";

/// The longest SDK version string read from a vtable; a longer one is a
/// broken or hostile vtable, refused before a byte of it is read.
pub const MAX_SDK_VERSION_LEN: usize = 256;
/// The largest vtable `size` accepted. Fields are only appended, one pointer
/// at a time; a size past this is garbage, not a future ABI minor.
pub const MAX_VTABLE_SIZE: u32 = 4096;
/// The largest JSON value accepted from a plugin (a result or an error), and
/// the most a probe may print.
pub const MAX_JSON_LEN: usize = 16 << 20;
/// How long a probe may take to load a library and describe it.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most probes run at once (each is a child process, mostly waiting).
const MAX_PARALLEL_PROBES: usize = 8;
/// What a probe child prints before its JSON report, on a line of its own,
/// so a plugin that writes to stdout while loading does not spoil it.
const PROBE_MARKER: &str = "capmedia-probe-report: ";

/// The sinks shipped with capmedia, by sink name and library name (without
/// the platform's `lib` prefix and extension). Only the library of that name
/// may provide the sink; see [`PluginRegistry`].
pub const FIRST_PARTY: &[(&str, &str)] = &[
    ("iso-set", "capmedia_plugin_iso_set"),
    ("usb-raw", "capmedia_plugin_usb_raw"),
    ("vhd", "capmedia_plugin_vhd"),
    ("vhdx", "capmedia_plugin_vhdx"),
];

/// Why a plugin file was not loaded. Every variant names the file.
///
/// Serializable because a probe child sends it to the host as JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LoadError {
    #[error("{path}: cannot load library: {message}")]
    Load { path: PathBuf, message: String },
    #[error("{path}: not a capmedia sink plugin ({reason})")]
    NotAPlugin { path: PathBuf, reason: String },
    #[error("{path}: plugin ABI {plugin_major}.{plugin_minor} is not supported by this capmedia (ABI {host_major}.{host_minor}); rebuild the plugin against capmedia-sink {host_major}.x")]
    AbiMismatch {
        path: PathBuf,
        plugin_major: u16,
        plugin_minor: u16,
        host_major: u16,
        host_minor: u16,
    },
    #[error("{path}: plugin was built with panic = \"abort\"; a panic in it would kill capmedia, so it is refused (build it with panic = \"unwind\")")]
    PanicAbort { path: PathBuf },
    #[error("{path}: the plugin failed to describe itself: {message}")]
    Describe { path: PathBuf, message: String },
    #[error("{path}: the plugin's {function} function pointer is NULL")]
    NullFunction { path: PathBuf, function: String },
    #[error("{path}: the plugin's vtable says it is {size} bytes; ABI {ABI_MAJOR}.x needs {min} to {max}")]
    VTableSize {
        path: PathBuf,
        size: u32,
        min: u32,
        max: u32,
    },
    #[error(
        "{path}: the plugin's SDK version string is {len} bytes long (at most {max} are accepted)"
    )]
    SdkVersionTooLong { path: PathBuf, len: u64, max: u64 },
    #[error("{path}: killed by signal {signal} ({signal_name}) {when}")]
    ProbeSignal {
        path: PathBuf,
        signal: i32,
        signal_name: String,
        /// "while describing itself" or "after describing itself".
        when: String,
    },
    #[error("{path}: did not answer within {seconds} s (loading it and asking it to describe itself); the probe was killed")]
    ProbeTimeout { path: PathBuf, seconds: u64 },
    #[error("{path}: probing the plugin failed: {message}")]
    Probe { path: PathBuf, message: String },
    #[error("{second}: sink name {name:?} is already provided by {first}")]
    DuplicateName {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{path}: sink name {name:?} belongs to a sink shipped with capmedia ({library}); this library may not provide it")]
    ReservedName {
        name: String,
        path: PathBuf,
        library: String,
    },
}

impl LoadError {
    /// The sink name the error is about, where the library declared one.
    pub fn sink_name(&self) -> Option<&str> {
        match self {
            LoadError::DuplicateName { name, .. } | LoadError::ReservedName { name, .. } => {
                Some(name)
            }
            _ => None,
        }
    }
}

/// The checked, non-NULL functions of a vtable.
#[derive(Debug, Clone, Copy)]
struct Fns {
    describe: CallFn,
    check: CallFn,
    write: CallFn,
    verify: CallFn,
}

/// A sink loaded from a plugin library. Calls go through the C ABI; it
/// implements [`MediaSink`], so callers treat it like any other sink.
#[derive(Debug)]
pub struct PluginSink {
    path: PathBuf,
    info: SinkInfo,
    abi: (u16, u16),
    sdk_version: String,
    fns: Fns,
}

impl PluginSink {
    /// Load one plugin library and ask it to describe itself.
    ///
    /// The library stays loaded for the rest of the process: a plugin may
    /// have started threads or registered destructors, and unloading it
    /// under them would crash.
    pub fn load(path: &Path) -> Result<PluginSink, LoadError> {
        let path_buf = path.to_path_buf();
        // SAFETY: loading a library runs its initialisers. That is the point
        // of a plugin; the user chose the folders that are searched.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| LoadError::Load {
            path: path_buf.clone(),
            message: e.to_string(),
        })?;
        let lib: &'static libloading::Library = Box::leak(Box::new(lib));
        // SAFETY: the symbol, if present, has the documented `EntryFn` type;
        // a library exporting the name with another type is not a plugin we
        // can detect, which is why the vtable carries a magic number.
        let entry: libloading::Symbol<'static, EntryFn> = unsafe { lib.get(ENTRY_SYMBOL) }
            .map_err(|_| LoadError::NotAPlugin {
                path: path_buf.clone(),
                reason: "it does not export capmedia_sink_entry".into(),
            })?;
        // SAFETY: calling the entry point is the ABI's first step; it takes
        // nothing and returns a pointer to static data.
        let vt = unsafe { entry() };
        if vt.is_null() {
            return Err(LoadError::NotAPlugin {
                path: path_buf,
                reason: "its entry point returned no vtable".into(),
            });
        }
        // Read the fixed prefix first: magic, then versions and size, before
        // trusting any other field.
        // SAFETY: every ABI version starts with these 16 bytes, and the
        // pointer is non-null and points into the loaded library.
        let (magic, major, minor, size) = unsafe {
            let p = vt.cast::<u8>();
            (
                p.cast::<u64>().read_unaligned(),
                p.add(8).cast::<u16>().read_unaligned(),
                p.add(10).cast::<u16>().read_unaligned(),
                p.add(12).cast::<u32>().read_unaligned(),
            )
        };
        if magic != ABI_MAGIC {
            return Err(LoadError::NotAPlugin {
                path: path_buf,
                reason: "its vtable has the wrong magic number".into(),
            });
        }
        if major != ABI_MAJOR {
            return Err(LoadError::AbiMismatch {
                path: path_buf,
                plugin_major: major,
                plugin_minor: minor,
                host_major: ABI_MAJOR,
                host_minor: ABI_MINOR,
            });
        }
        let min = std::mem::size_of::<SinkVTable>() as u32;
        if !(min..=MAX_VTABLE_SIZE).contains(&size) {
            return Err(LoadError::VTableSize {
                path: path_buf,
                size,
                min,
                max: MAX_VTABLE_SIZE,
            });
        }
        // SAFETY: magic, major and size match, so the whole struct is there;
        // it is static data in a library that is never unloaded. Every field
        // type admits every bit pattern the plugin may have put there (the
        // functions are `Option`s, so NULL is a valid value).
        let vtable: &'static SinkVTable = unsafe { &*vt };
        if vtable.panic_unwind == 0 {
            return Err(LoadError::PanicAbort { path: path_buf });
        }
        let null = |function: &str| LoadError::NullFunction {
            path: path_buf.clone(),
            function: function.to_owned(),
        };
        let fns = Fns {
            describe: vtable.describe.ok_or_else(|| null("describe"))?,
            check: vtable.check.ok_or_else(|| null("check"))?,
            write: vtable.write.ok_or_else(|| null("write"))?,
            verify: vtable.verify.ok_or_else(|| null("verify"))?,
        };
        // Bounded before a byte is read: a wild length would read far past
        // the string (and its page) and crash.
        if vtable.sdk_version_len > MAX_SDK_VERSION_LEN {
            return Err(LoadError::SdkVersionTooLong {
                path: path_buf,
                len: vtable.sdk_version_len as u64,
                max: MAX_SDK_VERSION_LEN as u64,
            });
        }
        // SAFETY: the plugin points at a static string of this length, which
        // is at most MAX_SDK_VERSION_LEN bytes.
        let sdk = unsafe { bytes(vtable.sdk_version_ptr, vtable.sdk_version_len) };
        let mut sink = PluginSink {
            path: path_buf.clone(),
            info: SinkInfo::default(),
            abi: (major, minor),
            sdk_version: String::from_utf8_lossy(sdk).into_owned(),
            fns,
        };
        sink.info = sink
            .call(fns.describe, &(), &NoProgress, &NeverCancel)
            .map_err(|e| LoadError::Describe {
                path: path_buf,
                message: e.message,
            })?;
        Ok(sink)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn info(&self) -> &SinkInfo {
        &self.info
    }
    /// The ABI version the plugin was built for (major, minor).
    pub fn abi(&self) -> (u16, u16) {
        self.abi
    }
    pub fn sdk_version(&self) -> &str {
        &self.sdk_version
    }

    fn call<Req: Serialize, Res: DeserializeOwned>(
        &self,
        f: CallFn,
        req: &Req,
        progress: &dyn Progress,
        cancel: &dyn Cancel,
    ) -> Result<Res, SinkError> {
        let request = serde_json::to_vec(req)
            .map_err(|e| SinkError::internal(format!("encoding the request: {e}")))?;
        let ctx = CallCtx {
            result: Mutex::new(None),
            error: Mutex::new(None),
            progress,
            cancel,
        };
        let host = HostCallbacks {
            size: std::mem::size_of::<HostCallbacks>() as u32,
            ctx: (&ctx as *const CallCtx<'_>).cast_mut().cast::<c_void>(),
            result: cb_result,
            error: cb_error,
            progress: cb_progress,
            message: cb_message,
            cancelled: cb_cancelled,
        };
        let plugin = self.path.display();
        // The plugin catches its own panics (they cannot unwind through
        // `extern "C"`); this guard catches any in our own glue.
        let status = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `host` and `ctx` outlive the call; the request bytes
            // are valid for its length; `f` comes from a checked vtable.
            unsafe { f(&host, request.as_ptr(), request.len()) }
        }))
        .map_err(|_| SinkError::internal(format!("{plugin}: panic while calling the plugin")))?;
        let take = |m: &Mutex<Option<Reply>>| m.lock().ok().and_then(|mut g| g.take());
        let too_large = |what: &str, n: usize| {
            SinkError::internal(format!(
                "{plugin}: its {what} is {n} bytes of JSON (at most {MAX_JSON_LEN} are accepted)"
            ))
        };
        let error = || -> SinkError {
            match take(&ctx.error) {
                Some(Ok(b)) => serde_json::from_slice::<SinkError>(&b).unwrap_or_else(|_| {
                    SinkError::internal(String::from_utf8_lossy(&b).into_owned())
                }),
                Some(Err(n)) => too_large("error", n),
                None => SinkError::internal(format!("{plugin}: failed without saying why")),
            }
        };
        match status {
            STATUS_OK => {
                let b = take(&ctx.result)
                    .ok_or_else(|| {
                        SinkError::internal(format!("{plugin}: returned success but no result"))
                    })?
                    .map_err(|n| too_large("result", n))?;
                serde_json::from_slice(&b).map_err(|e| {
                    SinkError::internal(format!("{plugin}: result not understood: {e}"))
                })
            }
            STATUS_ERROR => Err(error()),
            STATUS_PANIC => {
                let e = error();
                Err(SinkError::new(
                    ErrorKind::Internal,
                    format!("{plugin}: {}", e.message),
                ))
            }
            STATUS_BAD_REQUEST | STATUS_BAD_HOST => Err(SinkError::internal(format!(
                "{plugin}: refused the request: {}",
                error().message
            ))),
            other => Err(SinkError::internal(format!(
                "{plugin}: returned unknown status {other}"
            ))),
        }
    }
}

impl MediaSink for PluginSink {
    fn describe(&self) -> SinkInfo {
        self.info.clone()
    }
    fn check(&self, plan: &MediaPlan) -> Result<CheckReport, SinkError> {
        self.call(self.fns.check, plan, &NoProgress, &NeverCancel)
    }
    fn write(
        &self,
        plan: &MediaPlan,
        progress: &dyn Progress,
        cancel: &dyn Cancel,
    ) -> Result<WriteReport, SinkError> {
        self.call(self.fns.write, plan, progress, cancel)
    }
    fn verify(
        &self,
        request: &VerifyRequest,
        progress: &dyn Progress,
        cancel: &dyn Cancel,
    ) -> Result<VerifyReport, SinkError> {
        self.call(self.fns.verify, request, progress, cancel)
    }
}

/// Bytes a plugin handed back, or their length when past [`MAX_JSON_LEN`]
/// (then they are not copied).
type Reply = Result<Vec<u8>, usize>;

/// A plugin's reply, copied only when it is within bounds.
fn reply(ptr: *const u8, len: usize) -> Reply {
    if len > MAX_JSON_LEN {
        return Err(len);
    }
    // SAFETY: the plugin passes bytes valid for the duration of the callback.
    Ok(unsafe { bytes(ptr, len) }.to_vec())
}

/// The state behind one call's `HostCallbacks::ctx`.
struct CallCtx<'a> {
    result: Mutex<Option<Reply>>,
    error: Mutex<Option<Reply>>,
    progress: &'a dyn Progress,
    cancel: &'a dyn Cancel,
}

/// Run a callback body on the `CallCtx` behind `ctx`, never letting a panic
/// unwind into the plugin.
fn with_ctx<R: Default>(ctx: *mut c_void, f: impl FnOnce(&CallCtx<'_>) -> R) -> R {
    if ctx.is_null() {
        return R::default();
    }
    // SAFETY: the host created `ctx` from a `CallCtx` that lives until the
    // plugin call returns, and plugins only call back during the call.
    let ctx = unsafe { &*ctx.cast::<CallCtx<'_>>() };
    catch_unwind(AssertUnwindSafe(|| f(ctx))).unwrap_or_default()
}

extern "C" fn cb_result(ctx: *mut c_void, ptr: *const u8, len: usize) {
    let data = reply(ptr, len);
    with_ctx(ctx, |c| {
        if let Ok(mut g) = c.result.lock() {
            *g = Some(data);
        }
    })
}

extern "C" fn cb_error(ctx: *mut c_void, ptr: *const u8, len: usize) {
    let data = reply(ptr, len);
    with_ctx(ctx, |c| {
        if let Ok(mut g) = c.error.lock() {
            *g = Some(data);
        }
    })
}

extern "C" fn cb_progress(ctx: *mut c_void, p: *const u8, n: usize, done: u64, total: u64) {
    // SAFETY: the plugin passes bytes valid for the duration of the callback.
    let phase = String::from_utf8_lossy(unsafe { bytes(p, n) }).into_owned();
    with_ctx(ctx, |c| c.progress.update(&phase, done, total))
}

extern "C" fn cb_message(ctx: *mut c_void, ptr: *const u8, len: usize) {
    // SAFETY: the plugin passes bytes valid for the duration of the callback.
    let text = String::from_utf8_lossy(unsafe { bytes(ptr, len) }).into_owned();
    with_ctx(ctx, |c| c.progress.message(&text))
}

extern "C" fn cb_cancelled(ctx: *mut c_void) -> u8 {
    with_ctx(ctx, |c| u8::from(c.cancel.is_cancelled()))
}

/// The folders searched for plugins, in order: each `--plugin-dir`, each
/// folder in `CAPMEDIA_PLUGIN_PATH`, then `plugins/` beside the executable.
pub fn search_path(plugin_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = plugin_dirs.to_vec();
    if let Some(v) = std::env::var_os(PLUGIN_PATH_ENV) {
        dirs.extend(std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.canonicalize().ok())
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(exe_dir.join("plugins"));
    }
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|d| seen.insert(d.canonicalize().unwrap_or_else(|_| d.clone())));
    dirs
}

/// Whether a file name looks like a shared library on this platform.
fn is_library(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()) == Some(std::env::consts::DLL_EXTENSION)
}

/// The libraries in `dirs`, in search order: folder by folder, and by file
/// name within a folder (not recursive; missing folders are skipped, since
/// `plugins/` beside the executable need not exist).
pub fn libraries(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| is_library(p) && p.is_file())
            .collect();
        files.sort();
        all.extend(files);
    }
    all
}

/// What a probe learnt about a library, without loading it in the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub path: PathBuf,
    pub info: SinkInfo,
    /// The ABI version the plugin was built for (major, minor).
    pub abi: (u16, u16),
    pub sdk_version: String,
}

/// The one line a probe child prints: a report, or why the library was
/// refused.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ProbeOutcome {
    Ok(ProbeReport),
    Error(LoadError),
}

/// The probe child's side: load `path` in this process with
/// [`PluginSink::load`] and return the line to print on stdout (the
/// caller prints it and exits 0). Whatever the library does to this
/// process (crash, hang), the host only sees the child fail.
pub fn probe_report(path: &Path) -> String {
    let outcome = match PluginSink::load(path) {
        Ok(s) => ProbeOutcome::Ok(ProbeReport {
            path: s.path.clone(),
            info: s.info.clone(),
            abi: s.abi,
            sdk_version: s.sdk_version.clone(),
        }),
        Err(e) => ProbeOutcome::Error(e),
    };
    match serde_json::to_string(&outcome) {
        Ok(json) => format!("{PROBE_MARKER}{json}"),
        // e.g. a name that is not UTF-8: the host reports unreadable output.
        Err(e) => format!("cannot encode the probe report: {e}"),
    }
}

/// How to start a probe child: `program args... <library>`, which must run
/// [`probe_report`] on the library and print its line on stdout.
#[derive(Debug, Clone)]
pub struct ProbeCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl ProbeCommand {
    /// The running executable, re-run with `args` (a hidden subcommand).
    pub fn current_exe(args: &[&str]) -> ProbeCommand {
        ProbeCommand {
            program: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("capmedia")),
            args: args.iter().map(OsString::from).collect(),
        }
    }
}

/// Read up to `cap` bytes, then drain the rest so the writer never blocks
/// on a full pipe; returns the bytes and whether there were more.
fn read_capped(mut r: impl Read, cap: usize) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let got = (&mut r).take(cap as u64 + 1).read_to_end(&mut buf).is_ok();
    let over = buf.len() > cap;
    buf.truncate(cap);
    if got && over {
        let _ = std::io::copy(&mut r, &mut std::io::sink());
    }
    (buf, over)
}

/// Probe one library in a child process: run `cmd` on it, wait at most
/// `timeout` (then kill the child) and read its report.
///
/// A child killed by a signal, one that does not finish in time, or one
/// whose output is not a report, is an error naming the library and why.
pub fn probe(cmd: &ProbeCommand, lib: &Path, timeout: Duration) -> Result<ProbeReport, LoadError> {
    let path = lib.to_path_buf();
    let failed = |message: String| LoadError::Probe {
        path: path.clone(),
        message,
    };
    let mut child = Command::new(&cmd.program)
        .args(&cmd.args)
        .arg(lib)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot start {}: {e}", cmd.program.display())))?;
    // Read both pipes on their own threads, so a chatty child cannot block
    // on a full pipe; the results come back by channel, so a grandchild
    // that keeps a pipe open cannot hang the host either.
    let (out_tx, out_rx) = mpsc::channel();
    let (err_tx, err_rx) = mpsc::channel();
    if let Some(o) = child.stdout.take() {
        std::thread::spawn(move || out_tx.send(read_capped(o, MAX_JSON_LEN)));
    }
    if let Some(e) = child.stderr.take() {
        std::thread::spawn(move || err_tx.send(read_capped(e, 64 << 10)));
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(LoadError::ProbeTimeout {
                    path,
                    seconds: timeout.as_secs(),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!("waiting for the probe: {e}")));
            }
        }
    };
    // The child has exited, so its pipes close unless it left a grandchild
    // holding them: a short grace, not a second timeout.
    let grace = Duration::from_secs(5);
    let (out, out_over) = out_rx.recv_timeout(grace).unwrap_or_default();
    let (err, _) = err_rx.recv_timeout(grace).unwrap_or_default();
    let stdout = String::from_utf8_lossy(&out);
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(PROBE_MARKER));
    if let Some(sig) = signal_of(&status) {
        return Err(LoadError::ProbeSignal {
            path,
            signal: sig,
            signal_name: signal_name(sig),
            when: if line.is_some() {
                "after describing itself".into()
            } else {
                "while describing itself".into()
            },
        });
    }
    let last_err = String::from_utf8_lossy(&err)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(" (its last message: {})", l.trim()))
        .unwrap_or_default();
    if out_over {
        return Err(failed(format!(
            "the probe printed more than {MAX_JSON_LEN} bytes"
        )));
    }
    let Some(line) = line else {
        return Err(failed(format!(
            "the probe exited with {status} without a report{last_err}"
        )));
    };
    if !status.success() {
        return Err(failed(format!("the probe exited with {status}{last_err}")));
    }
    match serde_json::from_str::<ProbeOutcome>(line) {
        Ok(ProbeOutcome::Ok(r)) => Ok(ProbeReport { path, ..r }),
        Ok(ProbeOutcome::Error(e)) => Err(e),
        Err(e) => Err(failed(format!("the probe's report is not understood: {e}"))),
    }
}

#[cfg(unix)]
fn signal_of(st: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(st)
}
#[cfg(not(unix))]
fn signal_of(_: &std::process::ExitStatus) -> Option<i32> {
    None
}

/// `SIGSEGV` for 11, from the platform's own numbering.
#[cfg(unix)]
fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| "unknown signal".into())
}
#[cfg(not(unix))]
fn signal_name(_: i32) -> String {
    "unknown signal".into()
}

/// Probe every library, several at a time; the results in `libs`' order.
fn probe_all(
    libs: &[PathBuf],
    cmd: &ProbeCommand,
    timeout: Duration,
) -> Vec<Result<ProbeReport, LoadError>> {
    let slots: Vec<Mutex<Option<Result<ProbeReport, LoadError>>>> =
        libs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let workers = libs.len().min(MAX_PARALLEL_PROBES);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (Some(lib), Some(slot)) = (libs.get(i), slots.get(i)) else {
                    break;
                };
                let r = probe(cmd, lib, timeout);
                if let Ok(mut g) = slot.lock() {
                    *g = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .zip(libs)
        .map(|(m, lib)| {
            m.into_inner().ok().flatten().unwrap_or_else(|| {
                Err(LoadError::Probe {
                    path: lib.clone(),
                    message: "the probe did not run".into(),
                })
            })
        })
        .collect()
}

/// The first-party library name reserving `name`, if any.
fn reserved_by(name: &str) -> Option<&'static str> {
    FIRST_PARTY
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, lib)| *lib)
}

/// Whether `path` is the library file `lib` (e.g. `libcapmedia_plugin_vhd.so`).
fn is_library_named(path: &Path, lib: &str) -> bool {
    path.file_name().and_then(|n| n.to_str())
        == Some(&format!(
            "{}{lib}.{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_EXTENSION
        ))
}

/// Pick which library provides each name. `found` is in search order, each
/// library with the name it declares. The first library declaring a name
/// wins; a later one is a [`LoadError::DuplicateName`]. A first-party name
/// declared by any other library never wins: it is a duplicate of the
/// first-party library when that was found, else a
/// [`LoadError::ReservedName`]. Returns the indices of the winners.
fn choose(found: &[(PathBuf, String)]) -> (Vec<usize>, Vec<LoadError>) {
    let impostor =
        |(p, n): &(PathBuf, String)| reserved_by(n).is_some_and(|l| !is_library_named(p, l));
    let mut winners: Vec<usize> = Vec::new();
    let mut errors = Vec::new();
    // Legitimate libraries first, so an impostor found earlier in the search
    // path is still the one reported and refused.
    let order = (0..found.len())
        .filter(|&i| found.get(i).is_some_and(|f| !impostor(f)))
        .chain((0..found.len()).filter(|&i| found.get(i).is_some_and(impostor)));
    for i in order {
        let Some((path, name)) = found.get(i) else {
            continue;
        };
        if let Some(first) = winners
            .iter()
            .filter_map(|&w| found.get(w))
            .find(|(_, n)| n == name)
        {
            errors.push(LoadError::DuplicateName {
                name: name.clone(),
                first: first.0.clone(),
                second: path.clone(),
            });
        } else if let Some(lib) = reserved_by(name).filter(|l| !is_library_named(path, l)) {
            errors.push(LoadError::ReservedName {
                name: name.clone(),
                path: path.clone(),
                library: format!(
                    "{}{lib}.{}",
                    std::env::consts::DLL_PREFIX,
                    std::env::consts::DLL_EXTENSION
                ),
            });
        } else {
            winners.push(i);
        }
    }
    winners.sort_unstable();
    (winners, errors)
}

/// All sinks found, and every file that failed to load.
///
/// Which library provides a name: the first one in search order (see
/// [`search_path`]) that declares it; each later one is reported as a
/// [`LoadError::DuplicateName`] naming both files and is not used. The
/// names in [`FIRST_PARTY`] are only ever provided by the library of the
/// listed name, so a plugin elsewhere cannot replace a sink shipped with
/// capmedia, whatever the search order.
#[derive(Debug, Default)]
pub struct PluginRegistry {
    pub sinks: Vec<PluginSink>,
    pub errors: Vec<LoadError>,
    /// The folders that were searched.
    pub searched: Vec<PathBuf>,
}

impl PluginRegistry {
    /// Load every library in `dirs` in this process, without probing.
    ///
    /// Only for libraries already trusted not to crash or hang: one that
    /// does takes the whole process with it. Programs use
    /// [`PluginRegistry::load_probed`].
    pub fn load(dirs: &[PathBuf]) -> PluginRegistry {
        let mut reg = PluginRegistry {
            searched: dirs.to_vec(),
            ..Default::default()
        };
        let mut loaded = Vec::new();
        for f in libraries(dirs) {
            match PluginSink::load(&f) {
                Ok(s) => loaded.push(s),
                Err(e) => reg.errors.push(e),
            }
        }
        let found: Vec<(PathBuf, String)> = loaded
            .iter()
            .map(|s| (s.path.clone(), s.info.name.clone()))
            .collect();
        let (winners, errors) = choose(&found);
        reg.errors.extend(errors);
        reg.sinks = loaded
            .into_iter()
            .enumerate()
            .filter(|(i, _)| winners.contains(i))
            .map(|(_, s)| s)
            .collect();
        reg
    }

    /// Probe every library in `dirs` out of process ([`probe`], in
    /// parallel, each bounded by `timeout`), then load in this process only
    /// the libraries whose probe succeeded and that provide a name (see
    /// [`PluginRegistry`]). Nothing is cached between runs.
    pub fn load_probed(dirs: &[PathBuf], cmd: &ProbeCommand, timeout: Duration) -> PluginRegistry {
        let mut reg = PluginRegistry {
            searched: dirs.to_vec(),
            ..Default::default()
        };
        let libs = libraries(dirs);
        let mut found = Vec::new();
        for r in probe_all(&libs, cmd, timeout) {
            match r {
                Ok(p) => found.push((p.path, p.info.name)),
                Err(e) => reg.errors.push(e),
            }
        }
        let (winners, errors) = choose(&found);
        reg.errors.extend(errors);
        for (path, _) in winners.iter().filter_map(|&i| found.get(i)) {
            match PluginSink::load(path) {
                Ok(s) => reg.sinks.push(s),
                Err(e) => reg.errors.push(e),
            }
        }
        reg
    }

    pub fn get(&self, name: &str) -> Option<&PluginSink> {
        self.sinks.iter().find(|s| s.info.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lib_file(dir: &str, stem: &str) -> PathBuf {
        PathBuf::from(dir).join(format!(
            "{}{stem}.{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_EXTENSION
        ))
    }

    #[test]
    fn first_found_wins_and_shipped_names_stay_with_shipped_libraries() {
        let impostor = (lib_file("/a", "my_iso"), "iso-set".to_owned());
        let shipped = (
            lib_file("/b", "capmedia_plugin_iso_set"),
            "iso-set".to_owned(),
        );
        let x1 = (lib_file("/a", "x"), "x".to_owned());
        let x2 = (lib_file("/b", "x"), "x".to_owned());
        let found = vec![impostor.clone(), x1.clone(), shipped.clone(), x2.clone()];
        let (winners, errors) = choose(&found);
        assert_eq!(winners, vec![1, 2]);
        assert_eq!(
            errors,
            vec![
                LoadError::DuplicateName {
                    name: "x".into(),
                    first: x1.0,
                    second: x2.0,
                },
                LoadError::DuplicateName {
                    name: "iso-set".into(),
                    first: shipped.0,
                    second: impostor.0.clone(),
                },
            ]
        );
        // Without the shipped library the impostor is still refused.
        let (winners, errors) = choose(std::slice::from_ref(&impostor));
        assert!(winners.is_empty());
        assert!(matches!(
            &errors[..],
            [LoadError::ReservedName { name, path, .. }] if name == "iso-set" && *path == impostor.0
        ));
    }

    #[test]
    fn an_oversized_reply_is_not_copied() {
        // A length past the cap is refused before the pointer is touched
        // (here it points at nothing).
        assert_eq!(
            reply(std::ptr::null(), MAX_JSON_LEN + 1),
            Err(MAX_JSON_LEN + 1)
        );
        let b = b"{}";
        assert_eq!(reply(b.as_ptr(), b.len()), Ok(b.to_vec()));
    }

    #[test]
    fn load_errors_survive_the_trip_from_a_probe_child() {
        let e = LoadError::NullFunction {
            path: "/p/libx.so".into(),
            function: "check".into(),
        };
        let json = serde_json::to_string(&ProbeOutcome::Error(e.clone())).unwrap_or_default();
        match serde_json::from_str::<ProbeOutcome>(&json) {
            Ok(ProbeOutcome::Error(back)) => assert_eq!(back, e),
            other => panic!("{other:?}"),
        }
    }
}
