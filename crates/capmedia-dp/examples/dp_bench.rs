//! Build a content library and time fetches from it, for `cargo xtask bench`.
//!
//! ```text
//! dp_bench build <SCCMContentLib> <PKGID> <folder>   # one package from a folder
//! dp_bench fetch <DP path|URL> <PKGID> <cache dir> [concurrency]
//! ```
//! `fetch` resolves, fetches with SHA-256 verification into an empty cache
//! and prints `bytes seconds MiB/s`. For an `smb://` DP the account comes
//! from `CAPMEDIA_DP_USER` and its password from `CAPMEDIA_DP_PASSWORD`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use capmedia_dp::{build_library, BuildOptions, ContentCache, Dp, DpOptions, PackageSource};

fn run(args: &[String]) -> Result<(), String> {
    match args {
        [cmd, root, pkg, folder] if cmd == "build" => {
            let id = pkg.parse().map_err(|e| format!("{e}"))?;
            let built = build_library(
                Path::new(root),
                &[PackageSource {
                    id,
                    version: 1,
                    folder: Path::new(folder),
                }],
                &BuildOptions::default(),
            )
            .map_err(|e| e.to_string())?;
            println!("{} bytes in {} blobs", built.bytes, built.blobs);
            Ok(())
        }
        [cmd, dp, pkg, cache, rest @ ..] if cmd == "fetch" => {
            let mut opts = DpOptions::default();
            if let Ok(user) = std::env::var("CAPMEDIA_DP_USER") {
                let account = capmedia_dp::Account::parse(&user).map_err(|e| e.to_string())?;
                let password = std::env::var("CAPMEDIA_DP_PASSWORD").unwrap_or_default();
                opts.credentials = Some(std::sync::Arc::new(capmedia_dp::Credentials {
                    account,
                    password: capmedia_dp::Secret::new(password),
                }));
            }
            if let Some(n) = rest.first() {
                opts.concurrency = n.parse().map_err(|_| format!("bad concurrency {n:?}"))?;
            }
            let id = pkg.parse().map_err(|e| format!("{e}"))?;
            let t = Instant::now();
            let dp = Dp::open(dp, opts).map_err(|e| e.to_string())?;
            let content = dp.resolve(&id).map_err(|e| e.to_string())?;
            let cache = ContentCache::open(cache).map_err(|e| e.to_string())?;
            dp.fetch(&content, &cache, &|_, _| {})
                .map_err(|e| e.to_string())?;
            let secs = t.elapsed().as_secs_f64();
            let bytes = content.total_size();
            println!(
                "{bytes} {secs:.3} {:.1}",
                bytes as f64 / secs / (1024.0 * 1024.0)
            );
            Ok(())
        }
        _ => Err(
            "usage: dp_bench build <lib> <PKGID> <folder> | fetch <dp> <PKGID> <cache> [n]".into(),
        ),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dp_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
