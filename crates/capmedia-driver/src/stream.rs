//! The one-pass capture: DP files fetched while the sink writes them.
//!
//! For a sink that declares `SinkInfo::streams`, the fetch stage does not
//! fetch: every DP file the cache cannot vouch for becomes an
//! [`EntrySource::Stream`] entry over a stream file in the cache's `tmp/`
//! folder (the cache's file system, so a verified stream becomes the cache
//! entry by a hard link, not a copy). The write stage then runs the fetcher
//! ([`pump`]) beside the sink: files in the order the sink reads them,
//! each hashed (SHA-256 against the DP, BLAKE3 for the manifest) as it is
//! written, its `.ok` marker put down once it matched. The sink's reader
//! withholds each file's last byte until then, so nothing is committed
//! before every SHA-256 matched; a failure puts `.err` markers on the file
//! and every one after it, so the sink stops, and the driver reports the
//! fetch's own error (which names the file).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use capmedia_content::{stream, EntrySource, PlanEntry};
use capmedia_dp::{ContentCache, ContentFile, Dp, DpError, FetchEvent, PackageContent};
use capmedia_tempfile::TempPath;

use crate::pipeline::{CaptureError, Events, PENDING_HASH};

/// The streamed files of one capture.
pub(crate) struct Streams {
    /// `<cache>/tmp/<owner-tagged name>/`: the stream files and their
    /// markers, removed when the run ends (the cache keeps its links).
    dir: TempPath,
    /// In the order the sink reads them.
    jobs: Vec<(ContentFile, PathBuf)>,
}

impl Streams {
    /// Turn the entries of DP files that need fetching into streams.
    /// `untrusted` are the DP files the cache cannot vouch for, by the
    /// cache path the plan names them by.
    pub(crate) fn prepare(
        cache: &ContentCache,
        untrusted: &BTreeMap<PathBuf, ContentFile>,
        entries: &mut [PlanEntry],
    ) -> Result<Streams, CaptureError> {
        let tmp = cache.dir().join("tmp");
        std::fs::create_dir_all(&tmp).map_err(CaptureError::Staging)?;
        let dir = TempPath::create_dir_in(&tmp, "stream").map_err(CaptureError::Staging)?;
        let mut jobs: Vec<(ContentFile, PathBuf)> = Vec::new();
        for e in entries.iter_mut() {
            let EntrySource::File(p) = &e.source else {
                continue;
            };
            let Some(file) = untrusted.get(p) else {
                continue;
            };
            let path = dir.path().join(file.sha256.to_ascii_lowercase());
            if !jobs.iter().any(|(f, _)| f.sha256 == file.sha256) {
                std::fs::File::create_new(&path).map_err(CaptureError::Staging)?;
                jobs.push((file.clone(), path.clone()));
            }
            e.source = EntrySource::Stream {
                path,
                size: file.size,
            };
            e.blake3 = PENDING_HASH.to_owned();
        }
        Ok(Streams { dir, jobs })
    }

    /// Remove the stream files (the cache's links stay).
    pub(crate) fn remove(self) -> std::io::Result<()> {
        self.dir.remove()
    }

    /// Fetch every stream in order, until done, failed, or `stop`.
    pub(crate) fn pump(
        &self,
        dp: &Dp,
        content: &PackageContent,
        cache: &ContentCache,
        events: &dyn Events,
        stop: &AtomicBool,
    ) -> Result<(), CaptureError> {
        let total: u64 = self.jobs.iter().map(|(f, _)| f.size).sum();
        let mut base = 0u64;
        events.progress("fetch", 0, total);
        for (i, (file, path)) in self.jobs.iter().enumerate() {
            let one = || -> Result<(), CaptureError> {
                let mut out = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(CaptureError::Staging)?;
                // Progress, and each retry as it is decided.
                let fetch_events = |e: FetchEvent<'_>| match e {
                    FetchEvent::Progress { done, .. } => {
                        events.progress("fetch", base + done, total)
                    }
                    retry => events.message(&retry.to_string()),
                };
                let blake3 = dp
                    .stream_blob_events(content, file, &mut out, &fetch_events, &|| {
                        stop.load(Ordering::Relaxed) || events.cancelled()
                    })
                    .map_err(|e| match e {
                        DpError::Cancelled => CaptureError::Cancelled,
                        e => CaptureError::from(e),
                    })?;
                drop(out);
                stream::finish_ok(path, &blake3).map_err(CaptureError::Staging)?;
                // The cache filled on the way: the verified stream file
                // becomes its entry (a link), sealed with both digests.
                cache.adopt(file, path, &blake3);
                Ok(())
            };
            if let Err(e) = one() {
                let why = match &e {
                    CaptureError::Cancelled => "the capture was stopped".to_owned(),
                    e => e.to_string(),
                };
                for (_, p) in &self.jobs[i..] {
                    let _ = stream::finish_err(p, &why);
                }
                return Err(e);
            }
            base += file.size;
        }
        Ok(())
    }

    /// The stream carrying the bytes of the cache file `cached` (named by
    /// its SHA-256), if any.
    pub(crate) fn stream_of(&self, cached: &std::path::Path) -> Option<&std::path::Path> {
        let sha = cached.file_name()?.to_str()?;
        self.jobs
            .iter()
            .find(|(f, _)| f.sha256.eq_ignore_ascii_case(sha))
            .map(|(_, p)| p.as_path())
    }

    /// The DP file streamed through `path`.
    pub(crate) fn file_at(&self, path: &std::path::Path) -> Option<&ContentFile> {
        self.jobs.iter().find(|(_, p)| p == path).map(|(f, _)| f)
    }
}
