//! The host side: find plugin libraries, check them, and call them through
//! the safe [`MediaSink`] trait.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{de::DeserializeOwned, Serialize};

use crate::abi::{
    bytes, EntryFn, HostCallbacks, SinkVTable, ABI_MAGIC, ABI_MAJOR, ABI_MINOR, ENTRY_SYMBOL,
    STATUS_BAD_HOST, STATUS_BAD_REQUEST, STATUS_ERROR, STATUS_OK, STATUS_PANIC,
};
use crate::content::MediaPlan;
use crate::{
    Cancel, CheckReport, ErrorKind, MediaSink, NeverCancel, NoProgress, Progress, SinkError,
    SinkInfo, VerifyReport, VerifyRequest, WriteReport,
};

/// The environment variable listing extra plugin folders (`:`-separated).
pub const PLUGIN_PATH_ENV: &str = "CAPMEDIA_PLUGIN_PATH";

/// Why a plugin file was not loaded. Every variant names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    #[error("{second}: sink name {name:?} is already provided by {first}")]
    DuplicateName {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
}

/// A sink loaded from a plugin library. Calls go through the C ABI; it
/// implements [`MediaSink`], so callers treat it like any other sink.
#[derive(Debug)]
pub struct PluginSink {
    path: PathBuf,
    info: SinkInfo,
    abi: (u16, u16),
    sdk_version: String,
    vtable: &'static SinkVTable,
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
        if (size as usize) < std::mem::size_of::<SinkVTable>() {
            return Err(LoadError::NotAPlugin {
                path: path_buf,
                reason: format!(
                    "its vtable is {size} bytes, ABI {ABI_MAJOR}.0 needs {}",
                    std::mem::size_of::<SinkVTable>()
                ),
            });
        }
        // SAFETY: magic, major and size match, so the whole struct is there;
        // it is static data in a library that is never unloaded.
        let vtable: &'static SinkVTable = unsafe { &*vt };
        if vtable.panic_unwind == 0 {
            return Err(LoadError::PanicAbort { path: path_buf });
        }
        // SAFETY: the plugin points at a static string of this length.
        let sdk = unsafe { bytes(vtable.sdk_version_ptr, vtable.sdk_version_len) };
        let mut sink = PluginSink {
            path: path_buf.clone(),
            info: SinkInfo::default(),
            abi: (major, minor),
            sdk_version: String::from_utf8_lossy(sdk).into_owned(),
            vtable,
        };
        sink.info = sink
            .call(vtable.describe, &(), &NoProgress, &NeverCancel)
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
        f: crate::abi::CallFn,
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
        let take = |m: &Mutex<Option<Vec<u8>>>| m.lock().ok().and_then(|mut g| g.take());
        let error = || -> SinkError {
            match take(&ctx.error) {
                Some(b) => serde_json::from_slice::<SinkError>(&b).unwrap_or_else(|_| {
                    SinkError::internal(String::from_utf8_lossy(&b).into_owned())
                }),
                None => SinkError::internal(format!("{plugin}: failed without saying why")),
            }
        };
        match status {
            STATUS_OK => {
                let b = take(&ctx.result).ok_or_else(|| {
                    SinkError::internal(format!("{plugin}: returned success but no result"))
                })?;
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
        self.call(self.vtable.check, plan, &NoProgress, &NeverCancel)
    }
    fn write(
        &self,
        plan: &MediaPlan,
        progress: &dyn Progress,
        cancel: &dyn Cancel,
    ) -> Result<WriteReport, SinkError> {
        self.call(self.vtable.write, plan, progress, cancel)
    }
    fn verify(
        &self,
        request: &VerifyRequest,
        progress: &dyn Progress,
        cancel: &dyn Cancel,
    ) -> Result<VerifyReport, SinkError> {
        self.call(self.vtable.verify, request, progress, cancel)
    }
}

/// The state behind one call's `HostCallbacks::ctx`.
struct CallCtx<'a> {
    result: Mutex<Option<Vec<u8>>>,
    error: Mutex<Option<Vec<u8>>>,
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
    // SAFETY: the plugin passes bytes valid for the duration of the callback.
    let data = unsafe { bytes(ptr, len) }.to_vec();
    with_ctx(ctx, |c| {
        if let Ok(mut g) = c.result.lock() {
            *g = Some(data);
        }
    })
}

extern "C" fn cb_error(ctx: *mut c_void, ptr: *const u8, len: usize) {
    // SAFETY: the plugin passes bytes valid for the duration of the callback.
    let data = unsafe { bytes(ptr, len) }.to_vec();
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

/// All sinks found, and every file that failed to load.
#[derive(Debug, Default)]
pub struct PluginRegistry {
    pub sinks: Vec<PluginSink>,
    pub errors: Vec<LoadError>,
    /// The folders that were searched.
    pub searched: Vec<PathBuf>,
}

impl PluginRegistry {
    /// Load every library in `dirs` (not recursive; missing folders are
    /// skipped, since `plugins/` beside the executable need not exist).
    /// The first sink with a name wins; later ones are duplicate errors.
    pub fn load(dirs: &[PathBuf]) -> PluginRegistry {
        let mut reg = PluginRegistry {
            searched: dirs.to_vec(),
            ..Default::default()
        };
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
            for f in files {
                match PluginSink::load(&f) {
                    Ok(s) => {
                        if let Some(first) = reg.sinks.iter().find(|x| x.info.name == s.info.name) {
                            reg.errors.push(LoadError::DuplicateName {
                                name: s.info.name.clone(),
                                first: first.path.clone(),
                                second: f,
                            });
                        } else {
                            reg.sinks.push(s);
                        }
                    }
                    Err(e) => reg.errors.push(e),
                }
            }
        }
        reg
    }

    pub fn get(&self, name: &str) -> Option<&PluginSink> {
        self.sinks.iter().find(|s| s.info.name == name)
    }
}
