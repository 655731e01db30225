//! `capmedia cache list|clean`: the content cache.

use std::path::Path;
use std::process::ExitCode;

use capmedia_dp::ContentCache;

pub fn list(dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let blobs = ContentCache::at(dir).blobs()?;
    let total: u64 = blobs.iter().map(|(_, n)| n).sum();
    if json {
        let v: Vec<serde_json::Value> = blobs
            .iter()
            .map(|(p, n)| serde_json::json!({ "path": p, "bytes": n }))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "cache": dir, "blobs": v, "bytes": total
            }))?
        );
    } else {
        for (p, n) in &blobs {
            println!("{n:>14}  {}", p.display());
        }
        println!("{} blobs, {total} bytes in {}", blobs.len(), dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Remove what dead runs left: partial downloads in the cache, and staging
/// folders in the system's temporary folder. Blobs stay (they are verified
/// against the DP's SHA-256 whenever used).
pub fn clean(dir: &Path) -> anyhow::Result<ExitCode> {
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
    Ok(ExitCode::SUCCESS)
}
