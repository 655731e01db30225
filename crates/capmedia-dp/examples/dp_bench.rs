//! Build a content library and time fetches from it, for `cargo xtask bench`.
//!
//! ```text
//! dp_bench build <SCCMContentLib> <PKGID> <folder>   # one package from a folder
//! dp_bench fetch <DP path|URL> <PKGID> <cache dir> [concurrency]
//! dp_bench sha256 <folder>                             # the hashing floor
//! ```
//! `fetch` resolves, fetches with SHA-256 verification into an empty cache
//! and prints `bytes seconds MiB/s`. For an `smb://` DP the account comes
//! from `CAPMEDIA_DP_USER` and its password from `CAPMEDIA_DP_PASSWORD`.
//! `sha256` hashes every file under a folder with the SHA-256 a fetch
//! verifies with (`sha2`, 1 MiB reads, one thread), the least a verified
//! fetch of those bytes costs on this machine.

use std::io::Read;
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
        [cmd, folder] if cmd == "sha256" => {
            let t = Instant::now();
            let mut bytes = 0u64;
            let mut buf = vec![0u8; 1 << 20];
            let mut dirs = vec![Path::new(folder).to_path_buf()];
            while let Some(dir) = dirs.pop() {
                for e in std::fs::read_dir(&dir).map_err(|e| e.to_string())? {
                    let path = e.map_err(|e| e.to_string())?.path();
                    if path.is_dir() {
                        dirs.push(path);
                        continue;
                    }
                    let mut f = std::fs::File::open(&path).map_err(|e| e.to_string())?;
                    let mut h = sha2::Sha256::default();
                    loop {
                        let n = f.read(&mut buf).map_err(|e| e.to_string())?;
                        if n == 0 {
                            break;
                        }
                        sha2::Digest::update(&mut h, &buf[..n]);
                        bytes += n as u64;
                    }
                    let _ = sha2::Digest::finalize(h);
                }
            }
            let secs = t.elapsed().as_secs_f64();
            println!(
                "{bytes} {secs:.3} {:.1}",
                bytes as f64 / secs / (1024.0 * 1024.0)
            );
            Ok(())
        }
        _ => Err(
            "usage: dp_bench build <lib> <PKGID> <folder> | fetch <dp> <PKGID> <cache> [n] \
             | sha256 <folder>"
                .into(),
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
