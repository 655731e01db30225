//! `capmedia cache list|clean`: the content cache.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use capmedia_dp::ContentCache;

use crate::json::{CacheBlob, CacheListBody};
use crate::ui::human_bytes;

/// When a blob was last used: the later of its modification (fetched) and
/// access (read by a run that found it in the cache) times. Cache hits only
/// read a blob, so the access time is what records their use; with
/// `relatime` (Linux's default) it moves at least once a day, enough for an
/// age counted in days.
fn last_used(m: &std::fs::Metadata) -> Option<SystemTime> {
    match (m.modified().ok(), m.accessed().ok()) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn unix_secs(t: SystemTime) -> Option<u64> {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// Every blob with its size and last use.
fn blobs(dir: &Path) -> anyhow::Result<Vec<(PathBuf, u64, Option<SystemTime>)>> {
    ContentCache::at(dir)
        .blobs()?
        .into_iter()
        .map(|(p, n)| {
            let used =
                std::fs::metadata(&p).with_context(|| format!("content cache {}", p.display()))?;
            Ok((p, n, last_used(&used)))
        })
        .collect()
}

pub fn list(dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let blobs = blobs(dir)?;
    let total: u64 = blobs.iter().map(|(_, n, _)| n).sum();
    if json {
        crate::json::print(
            "cache list",
            true,
            CacheListBody {
                cache: dir.to_path_buf(),
                bytes: total,
                blobs: blobs
                    .iter()
                    .map(|(p, n, t)| CacheBlob {
                        path: p.clone(),
                        bytes: *n,
                        last_used: t.and_then(unix_secs),
                    })
                    .collect(),
            },
        )?;
    } else {
        for (p, n, _) in &blobs {
            println!("{:>11}  {}", human_bytes(*n), p.display());
        }
        println!(
            "cache {}: {} blobs, {} ({total} bytes)",
            dir.display(),
            blobs.len(),
            human_bytes(total)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Remove what dead runs left: partial downloads in the cache, and staging
/// folders in the system's temporary folder; with `older_than_days`, also
/// the blobs not used for that many days (a later run fetches them again
/// if it needs them). Other blobs stay (they are verified against the DP's
/// SHA-256 whenever used).
pub fn clean(dir: &Path, older_than_days: Option<u64>) -> anyhow::Result<ExitCode> {
    let mut removed = if dir.is_dir() {
        ContentCache::at(dir).clean()?
    } else {
        Vec::new()
    };
    removed.extend(capmedia_tempfile::remove_stale(&std::env::temp_dir()).unwrap_or_default());
    for p in &removed {
        println!("removed {}", p.display());
    }
    println!("{} leftovers of dead runs removed", removed.len());
    if let Some(days) = older_than_days {
        let age = Duration::from_secs(days.saturating_mul(86_400));
        let cutoff = SystemTime::now()
            .checked_sub(age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let (mut count, mut bytes) = (0usize, 0u64);
        for (p, n, used) in blobs(dir)? {
            // A blob whose times cannot be read is kept: age unknown.
            if used.is_some_and(|t| t < cutoff) {
                // With its stamp: a blob fetched again gets a new one.
                let sha = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                ContentCache::at(dir)
                    .forget(sha)
                    .with_context(|| format!("removing {} from the cache", p.display()))?;
                crate::ui::verbose(&format!("removed {}", p.display()));
                count += 1;
                bytes += n;
            }
        }
        println!(
            "{count} blobs not used for {days} days removed ({})",
            human_bytes(bytes)
        );
    }
    Ok(ExitCode::SUCCESS)
}
