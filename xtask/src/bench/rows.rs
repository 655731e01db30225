//! The benchmark rows. Each issue that promises a speed or memory figure adds
//! its row here.
//!
//! Inputs are generated once per content size under
//! `target/bench/shared/<size>mib/` (deterministic bytes, so reruns reuse
//! them) and shared between rows; each row's outputs go to
//! `target/bench/<row>/out`, removed before every timed command.
//!
//! RSS flatness: `rss-flat` writes an ISO and a USB image of a small and a
//! large tree (default 256 MiB and 2 GiB; `--size-mib N` makes them N/8 and
//! N) and fails unless the large runs' peak RSS stays within 25% + 8 MiB of
//! the small ones'. `iso` and `usb` at two `--size-mib` values show the same
//! by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use capmedia_content::{Arch, PackageId};
use capmedia_dp::{build_library, BuildOptions, PackageSource};

use super::{make_file, make_file_seeded, sh, Cmd, Ctx, Measured, Pair};

pub struct Row {
    pub name: &'static str,
    pub about: &'static str,
    pub setup: fn(&Ctx) -> Result<Pair>,
}

pub fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "dp-http",
            about: "fetch a 1 GiB package (768 MiB + 16x16 MiB) from nginx on 127.0.0.1, \
                    SHA-256 verified, vs curl -Z --parallel-max 4 of its FileLib blobs",
            setup: dp_http,
        },
        Row {
            name: "smb",
            about: "the same package from Samba on 127.0.0.1 (smb://, NTLM, signed, SHA-256 \
                    verified, 4 at once) vs smbclient -c 'prompt; recurse; mget *' of its \
                    FileLib blobs (as is, and signed); goal: throughput >= 0.8x smbclient's. \
                    Floors: SHA-256 and cp -r of the blobs",
            setup: dp_smb,
        },
        Row {
            name: "smb-kerberos",
            about: "the same package from Samba on 127.0.0.1 with a Kerberos ticket from a \
                    test MIT KDC (capmedia-smb2: SMB 3.1.1, signed, SHA-256 verified, 4 at \
                    once) vs smbclient --use-kerberos=required mget of its FileLib blobs \
                    (signed: the server requires it); goal: throughput >= 0.8x smbclient's",
            setup: dp_smb_kerberos,
        },
        Row {
            name: "dp-path",
            about: "the same package from a path DP into the cache vs cp -r FileLib",
            setup: dp_path,
        },
        Row {
            name: "iso",
            about: "a 1 GiB tree as an ISO (write, sync, read back) vs xorriso -as mkisofs \
                    -iso-level 3 -J, and vs cp -r + sync",
            setup: iso,
        },
        Row {
            name: "usb",
            about: "a 1 GiB tree into a FAT32 disk image (write, sync, read back) vs \
                    sfdisk + mkfs.fat + mcopy -s, and vs cp -r + sync",
            setup: usb,
        },
        Row {
            name: "vhd",
            about: "dynamic VHD of a 1 GiB disk written directly vs raw image + \
                    qemu-img convert -O vpc (and the convert alone)",
            setup: vhd,
        },
        Row {
            name: "vhdx",
            about: "dynamic VHDX (GPT) of a 1 GiB disk written directly vs raw image + \
                    qemu-img convert -O vhdx (and the convert alone); goal <= 0.5x",
            setup: vhdx,
        },
        Row {
            name: "capture",
            about: "capmedia capture of a 512 MiB boot image package from a path DP (cold \
                    cache) to a verified ISO and to a verified USB image vs cp -r of the \
                    package + sync; goal <= 1.8x",
            setup: capture,
        },
        Row {
            name: "capture-hit",
            about: "the same captures with a warm cache (no DP read, no re-hash) vs cp -r \
                    + sync; goal <= 1.3x",
            setup: capture_hit,
        },
        Row {
            name: "floor",
            about: "the physical floor of a verified capture on this machine: the 512 MiB \
                    boot image package's bytes written once past the page cache (dd \
                    oflag=direct conv=fsync) and read back once (dd iflag=direct), vs cp -r \
                    + sync, capture to usb-raw with a warm cache, and the dd write alone \
                    (the bound for a read-back that overlaps the writes); prints each ratio",
            setup: floor,
        },
        Row {
            name: "capture-rss",
            about: "peak RSS of capture (ISO, and USB in one pass; cold cache) at 256 MiB \
                    and 2 GiB packages (--size-mib sets the large size, small = large/8); \
                    fails unless flat and under 64 MiB",
            setup: capture_rss,
        },
        Row {
            name: "capture-slow",
            about: "capture to usb-raw from an HTTP DP at 100 MiB/s in all, however \
                    many ranges are in flight (nginx reading its library with O_DIRECT in a \
                    blkio cgroup throttled to 100 MiB/s of reads: nginx's limit_rate is per \
                    connection and lets each request send a second's worth at once) onto \
                    an ext4 loop device whose writes the blkio cgroup throttles to 30 MB/s, \
                    cold cache: one pass vs the stages one after another \
                    (CAPMEDIA_STAGED=1), the slow write alone + its read-back, and the DP \
                    alone; goal <= 1.15x write + read-back (root)",
            setup: capture_slow,
        },
        Row {
            name: "capture-ranges",
            about: "capture to usb-raw from nginx on 127.0.0.1, cold cache, with parallel \
                    ranged downloads (4 x 2 MiB) vs one request per blob \
                    (CAPMEDIA_DP_RANGES=0): from a DP at 100 MiB/s in all (its disk \
                    throttled, as in capture-slow: ranges cannot beat it, nor may they \
                    lose) and from an unlimited one (page cache). A per-connection limit \
                    (where ranges gain) cannot be modelled with nginx: limit_rate lets \
                    each request send a second's worth at once (root)",
            setup: capture_ranges,
        },
        Row {
            name: "wim-extract",
            about: "every file of a 1 GiB LZX WIM (image of 1 GiB of half-compressible \
                    files) streamed to a folder, SHA-1 checked, vs wimlib-imagex extract",
            setup: wim_extract,
        },
        Row {
            name: "wim-rss",
            about: "peak RSS of wim-extract at 256 MiB and 2 GiB WIMs (--size-mib sets the \
                    large size, small = large/8); fails unless flat and under 64 MiB",
            setup: wim_rss,
        },
        Row {
            name: "rss-flat",
            about: "peak RSS of iso and usb at 256 MiB and 2 GiB (--size-mib sets the large \
                    size, small = large/8); fails if it grows with content",
            setup: rss_flat,
        },
    ]
}

/// The package the dp rows fetch.
const DP_PACKAGE: &str = "PS1000DB";
/// The boot image package of the capture row.
pub const BOOT_PACKAGE: &str = "PS1000BB";
/// A fixed epoch: the same inputs give the same media on every run.
const EPOCH: &str = "1700000000";

/// Single-quote a path or word for `sh -c`.
fn q(p: impl AsRef<std::ffi::OsStr>) -> String {
    let s = p.as_ref().to_string_lossy();
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Fail with the Debian package to install when `prog` is missing.
fn need(prog: &str, package: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(prog).is_file());
    if !found {
        bail!("{prog} is not installed: apt-get install -y {package}");
    }
    Ok(())
}

/// Build an example of a workspace package (release) and return its path.
fn example(package: &str, name: &str) -> Result<PathBuf> {
    crate::run(crate::cargo().args([
        "build",
        "--release",
        "--quiet",
        "-p",
        package,
        "--example",
        name,
    ]))?;
    Ok(crate::root().join("target/release/examples").join(name))
}

/// Inputs shared between rows, by content size.
fn shared(ctx: &Ctx, mib: u64) -> PathBuf {
    ctx.work
        .parent()
        .unwrap_or(&ctx.work)
        .join("shared")
        .join(format!("{mib}mib"))
}

/// `rm -rf out && mkdir -p out` for a row's output folder.
fn fresh(out: &Path) -> String {
    format!("rm -rf {o} && mkdir -p {o}", o = q(out))
}

/// fsync every file under `dir`, so a copy pays for reaching the disk as our
/// writers do (only its own files: a global `sync` would also wait for other
/// processes' writes).
fn sync_tree(dir: &Path) -> String {
    format!("find {} -type f -exec sync {{}} +", q(dir))
}

/// A package-like tree of `mib` MiB: one file of 3/4 of it (a WIM's share of
/// a boot image package) and 16 files sharing the rest, all distinct
/// (1 GiB: 768 MiB + 16 x 16 MiB).
/// Returns the folder; reuses it when already complete.
fn make_tree(dir: &Path, mib: u64) -> Result<PathBuf> {
    let done = dir.with_extension("done");
    if done.exists() && dir.exists() {
        return Ok(dir.to_owned());
    }
    // Below 64 MiB (smoke runs) the small files would round to nothing:
    // then the tree is the one file, and still exactly `mib` MiB.
    let small = mib / 64;
    let count = if small > 0 { 16 } else { 0 };
    let big = (mib - count * small).max(1);
    make_file_seeded(&dir.join("sources/big.wim"), big, 1)?;
    for i in 0..count {
        make_file_seeded(&dir.join(format!("files/part-{i:02}.bin")), small, i + 2)?;
    }
    std::fs::write(&done, b"")?;
    Ok(dir.to_owned())
}

/// A content library holding `folder` as package `id`, built once.
fn make_library(lib: &Path, id: &str, folder: &Path) -> Result<PathBuf> {
    let done = lib.with_extension("done");
    if done.exists() && lib.exists() {
        return Ok(lib.to_owned());
    }
    if lib.exists() {
        std::fs::remove_dir_all(lib)?;
    }
    let id: PackageId = id.parse()?;
    build_library(
        lib,
        &[PackageSource {
            id,
            version: 1,
            folder,
        }],
        &BuildOptions::default(),
    )
    .with_context(|| format!("building the content library {}", lib.display()))?;
    std::fs::write(&done, b"")?;
    Ok(lib.to_owned())
}

/// FileLib blobs (not their INIs) of a library, sorted.
fn blobs(lib: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(lib.join("FileLib"))? {
        for f in std::fs::read_dir(d?.path())? {
            let p = f?.path();
            if p.extension().is_none_or(|e| !e.eq_ignore_ascii_case("ini")) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The 1 GiB (default) package and its library for the dp rows.
fn dp_library(ctx: &Ctx) -> Result<PathBuf> {
    let mib = ctx.size_mib.unwrap_or(1024);
    let base = shared(ctx, mib);
    let tree = make_tree(&base.join("tree"), mib)?;
    make_library(&base.join("SCCMContentLib"), DP_PACKAGE, &tree)
}

fn dp_path(ctx: &Ctx) -> Result<Pair> {
    let lib = dp_library(ctx)?;
    let bench = example("capmedia-dp", "dp_bench")?;
    let out = ctx.work.join("out");
    let mut pair = Pair::new(
        Cmd::new(
            "capmedia-dp fetch (path)",
            format!(
                "{} fetch {} {DP_PACKAGE} {}",
                q(&bench),
                q(&lib),
                q(out.join("cache"))
            ),
        ),
        vec![Cmd::new(
            "cp -r FileLib",
            format!("cp -r {} {}", q(lib.join("FileLib")), q(out.join("copy"))),
        )],
    );
    pair.before_each = Some(fresh(&out));
    Ok(pair)
}

fn dp_http(ctx: &Ctx) -> Result<Pair> {
    need("nginx", "nginx-light")?;
    need("curl", "curl")?;
    let lib = dp_library(ctx)?;
    let bench = example("capmedia-dp", "dp_bench")?;
    let out = ctx.work.join("out");
    // sha256sum checks the downloads by the names FileLib gives them.
    let sums = ctx.work.join("sha256sums");
    let mut text = String::new();
    let mut rel = Vec::new();
    for b in blobs(&lib)? {
        let name = b
            .file_name()
            .and_then(|n| n.to_str())
            .context("FileLib name")?
            .to_owned();
        text.push_str(&format!("{}  {name}\n", name.to_ascii_lowercase()));
        rel.push(format!("FileLib/{}/{name}", &name[..4.min(name.len())]));
    }
    std::fs::write(&sums, text)?;

    let nginx = Nginx::start(&ctx.work.join("nginx"), &lib)?;
    let url = format!("http://127.0.0.1:{}/SMS_DP_SMSPKG$/", nginx.port);
    let urls: Vec<String> = rel.iter().map(|r| q(format!("{url}{r}"))).collect();
    let curl = format!(
        "curl -s --no-progress-meter -f -Z --parallel-max 4 --create-dirs --remote-name-all --output-dir {} {}",
        q(out.join("curl")),
        urls.join(" ")
    );
    let mut pair = Pair::new(
        Cmd::new(
            "capmedia-dp fetch (http, 4)",
            format!(
                "{} fetch {} {DP_PACKAGE} {} 4",
                q(&bench),
                q(&url),
                q(out.join("cache"))
            ),
        ),
        vec![
            Cmd::new("curl -Z --parallel-max 4", curl.clone()),
            Cmd::new(
                "curl -Z 4 + sha256sum -c",
                format!(
                    "{curl} && cd {} && sha256sum -c --quiet {}",
                    q(out.join("curl")),
                    q(&sums)
                ),
            ),
        ],
    );
    pair.before_each = Some(fresh(&out));
    pair.teardown = Some(nginx.stop_line());
    Ok(pair)
}

/// The bench account's password: a throwaway for a server on 127.0.0.1
/// that lives as long as the row.
const SMB_BENCH_PASSWORD: &str = "bench-Pa55";

/// What both SMB rows start from: the tools checked, the library (shared
/// with the other DP rows, readable by smbd's user), the fetch example and
/// the output folder.
fn smb_row_parts(ctx: &Ctx) -> Result<(PathBuf, PathBuf, PathBuf)> {
    need("smbd", "samba")?;
    need("smbclient", "smbclient")?;
    let lib = dp_library(ctx)?;
    capmedia_testdp::Samba::open_up(&lib)?;
    Ok((
        lib,
        example("capmedia-dp", "dp_bench")?,
        ctx.work.join("out"),
    ))
}

fn dp_smb(ctx: &Ctx) -> Result<Pair> {
    let (lib, bench, out) = smb_row_parts(ctx)?;
    let smb = Samba::start(&ctx.work.join("samba"), &lib)?;
    let url = format!("smb://127.0.0.1:{}/SCCMContentLib$", smb.port);
    let user = capmedia_testdp::SMB_USER;
    let smbclient = format!(
        "cd {} && smbclient -p {} -U {user}%{SMB_BENCH_PASSWORD} -m SMB3 \
         '//127.0.0.1/SCCMContentLib$' -D FileLib -c 'prompt; recurse; mget *' >/dev/null",
        q(out.join("smbclient")),
        smb.port
    );
    let mut pair = Pair::new(
        Cmd::new(
            "capmedia-dp fetch (smb, 4)",
            format!(
                "CAPMEDIA_DP_USER={user} CAPMEDIA_DP_PASSWORD={SMB_BENCH_PASSWORD} {} fetch {} \
                 {DP_PACKAGE} {} 4",
                q(&bench),
                q(&url),
                q(out.join("cache"))
            ),
        ),
        vec![
            Cmd::new(SMBCLIENT_LABEL, smbclient.clone()),
            // smbclient signs only if the server requires it, and this one
            // does not; our client signs (and checks) every message.
            Cmd::new(
                "smbclient mget, signed",
                smbclient.replacen(
                    "&& smbclient ",
                    "&& smbclient --option='client signing=required' ",
                    1,
                ),
            ),
            // What no fetch can beat on this machine: hashing the bytes
            // (ours verifies SHA-256) and writing them to a local folder
            // (ours writes the cache); smbclient does neither.
            Cmd::new(
                "SHA-256 (local blobs)",
                format!("{} sha256 {}", q(&bench), q(lib.join("FileLib"))),
            ),
            // The floor of a signed and verified fetch: the signed
            // download and the hashing of the same bytes at once, on the
            // two vCPUs (ours overlaps them the same way).
            Cmd::new(
                FLOOR_LABEL,
                format!(
                    "( {} ) & {} sha256 {}; wait",
                    smbclient.replacen(
                        "&& smbclient ",
                        "&& smbclient --option='client signing=required' ",
                        1,
                    ),
                    q(&bench),
                    q(lib.join("FileLib"))
                ),
            ),
            Cmd::new(
                "cp -r FileLib (local)",
                format!("cp -r {} {}", q(lib.join("FileLib")), q(out.join("copy"))),
            ),
        ],
    );
    pair.before_each = Some(format!(
        "{} && mkdir -p {}",
        fresh(&out),
        q(out.join("smbclient"))
    ));
    pair.teardown = Some(smb.stop_line());
    pair.check = Some(smb_ratio);
    Ok(pair)
}

/// The smb row with a Kerberos ticket instead of a password: the KDC and
/// smbd are the test DP's own (capmedia-testdp), alive as long as the row.
fn dp_smb_kerberos(ctx: &Ctx) -> Result<Pair> {
    let (lib, bench, out) = smb_row_parts(ctx)?;
    let kdc = capmedia_testdp::Kdc::start()?;
    // The test mode logs at level 3 (dialects, logons); a bench wants
    // the server's default quiet.
    let smb = capmedia_testdp::Samba::start_kerberos_with(
        &[("SCCMContentLib$", &lib)],
        SMB_BENCH_PASSWORD,
        &kdc,
        "  log level = 1\n",
    )?;
    let ccache = kdc.ticket(capmedia_testdp::SMB_USER)?;
    let env = format!(
        "KRB5_CONFIG={} KRB5CCNAME=FILE:{} KRB5RCACHETYPE=none",
        q(kdc.krb5_conf()),
        q(&ccache)
    );
    // smbclient uses Kerberos only for a name (not an address, nor
    // localhost): the KDC also knows cifs/capmedia-smb, reached at -I.
    let client_conf = smb.smbclient_conf()?;
    let smbclient = format!(
        "cd {} && {env} smbclient -s {} '//{}/SCCMContentLib$' -I 127.0.0.1 -p {} -N \
         --use-kerberos=required -D FileLib -c 'prompt; recurse; mget *' >/dev/null",
        q(out.join("smbclient")),
        q(&client_conf),
        capmedia_testdp::SMB_KRB_ALIAS,
        smb.port()
    );
    let mut pair = Pair::new(
        Cmd::new(
            "capmedia-dp fetch (smb, Kerberos, 4)",
            format!(
                "{env} {} fetch {} {DP_PACKAGE} {} 4",
                q(&bench),
                q(smb.url_by_name("SCCMContentLib$")),
                q(out.join("cache"))
            ),
        ),
        vec![
            Cmd::new(SMBCLIENT_LABEL, smbclient.clone()),
            // As in the smb row: the signed download and the hashing of
            // the same bytes at once, the floor of a verified fetch.
            Cmd::new(
                FLOOR_LABEL,
                format!(
                    "( {smbclient} ) & {} sha256 {}; wait",
                    q(&bench),
                    q(lib.join("FileLib"))
                ),
            ),
        ],
    );
    pair.before_each = Some(format!(
        "{} && mkdir -p {}",
        fresh(&out),
        q(out.join("smbclient"))
    ));
    pair.check = Some(smb_ratio);
    pair.keep.push(Box::new(smb));
    pair.keep.push(Box::new(kdc));
    Ok(pair)
}

const SMBCLIENT_LABEL: &str = "smbclient mget (FileLib)";
const FLOOR_LABEL: &str = "smbclient signed beside SHA-256";

/// Issue 15's goal: our fetch's throughput at least 0.8 of smbclient's on
/// the same bytes (so, smbclient's time over ours). Printed, not enforced:
/// on a shared machine one noisy run must not fail the whole bench.
fn smb_ratio(m: &[Measured]) -> Result<()> {
    let (Some(ours), Some(smbclient)) = (m.first(), m.iter().find(|x| x.label == SMBCLIENT_LABEL))
    else {
        bail!("the smb row lacks its commands");
    };
    let ratio = smbclient.secs / ours.secs;
    println!(
        "smb: throughput ours / smbclient = {ratio:.2} ({:.3} s vs {:.3} s); goal >= 0.8: {}",
        ours.secs,
        smbclient.secs,
        if ratio >= 0.8 { "met" } else { "NOT met" }
    );
    if let Some(floor) = m.iter().find(|x| x.label == FLOOR_LABEL) {
        println!(
            "smb: ours / the floor (a signed smbclient download beside SHA-256 of the same \
             bytes) = {:.2} ({:.3} s vs {:.3} s)",
            ours.secs / floor.secs,
            ours.secs,
            floor.secs
        );
    }
    Ok(())
}

/// smbd sharing a library as `SCCMContentLib$` on 127.0.0.1, as a daemon
/// with the test DP's config (capmedia-testdp) and its own state folders;
/// the row's teardown stops it by its pid file.
struct Samba {
    pid_file: PathBuf,
    port: u16,
}

impl Samba {
    fn start(dir: &Path, lib: &Path) -> Result<Samba> {
        // The test helper writes the config and passdb and runs smbd in the
        // foreground; here it must outlive this process, so it is asked to
        // detach.
        let _ = std::fs::remove_dir_all(dir);
        let (conf, port) = capmedia_testdp::Samba::configure(
            dir,
            &[("SCCMContentLib$", lib)],
            SMB_BENCH_PASSWORD,
        )?;
        crate::run(
            Command::new("smbd")
                .arg("--daemon")
                .arg(format!("--configfile={}", conf.display())),
        )
        .context("starting smbd (Debian package samba)")?;
        let samba = Samba {
            pid_file: dir.join("pid/smbd.pid"),
            port,
        };
        if let Err(e) = capmedia_testdp::wait_listening(port, 400, || None) {
            let _ = crate::run(Command::new("sh").arg("-c").arg(samba.stop_line()));
            bail!("{e}");
        }
        Ok(samba)
    }

    fn stop_line(&self) -> String {
        let p = q(&self.pid_file);
        format!("if [ -f {p} ]; then kill \"$(cat {p})\"; fi")
    }
}

/// nginx serving a library at `/SMS_DP_SMSPKG$/` on 127.0.0.1, as a daemon
/// with its own config, pid file and logs; the row's teardown stops it.
struct Nginx {
    pid_file: PathBuf,
    port: u16,
}

impl Nginx {
    fn start(dir: &Path, lib: &Path) -> Result<Nginx> {
        Nginx::start_limited(dir, lib, None)
    }

    /// [`Nginx::start`], sending at most `rate`.
    fn start_limited(dir: &Path, lib: &Path, rate: Option<Rate>) -> Result<Nginx> {
        std::fs::create_dir_all(dir)?;
        let pid_file = dir.join("nginx.pid");
        let conf_path = dir.join("nginx.conf");
        stop_stale(&pid_file, &conf_path);
        let port = capmedia_testdp::free_port()?;
        // As a daemon, so the harness gets the shell back; stopped by pid.
        let conf = capmedia_testdp::Config {
            dir,
            lib,
            port,
            tls: None,
            client_ca: None,
            daemon: true,
        };
        let mut text = conf.render();
        let mut start = Command::new(capmedia_testdp::nginx_binary()?);
        match rate {
            None => {}
            Some(Rate::Total(mib)) => {
                // nginx has no limit for a server as a whole, and its
                // per-connection `limit_rate` lets each request send one
                // second's worth at once (so 4 MiB ranges at 25 MiB/s
                // would go unthrottled). The DP's disk is throttled
                // instead: nginx reads the library with O_DIRECT (files
                // over 1 MiB; no page cache), in a blkio cgroup whose
                // reads are limited on the library's device, so every
                // connection together gets at most `mib` MiB/s.
                text = text.replace(
                    "autoindex on;",
                    "autoindex on;\n            directio 1m;\n            output_buffers 2 1m;",
                );
                let dev = block_device_of(lib)?;
                sh(&format!(
                    "mkdir -p {c} && echo '{dev} {bps}' > {c}/blkio.throttle.read_bps_device",
                    c = DP_CGROUP,
                    bps = mib << 20,
                ))
                .context("setting up the DP's blkio cgroup")?;
                start = Command::new("sh");
                start.arg("-c").arg(format!(
                    "echo $$ > {DP_CGROUP}/cgroup.procs && exec \"$0\" \"$@\""
                ));
                start.arg(capmedia_testdp::nginx_binary()?);
            }
        }
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, text)?;
        crate::run(start.arg("-p").arg(dir).arg("-c").arg(&conf))
            .context("starting nginx (Debian package nginx-light)")?;
        let nginx = Nginx { pid_file, port };
        if let Err(e) = capmedia_testdp::wait_listening(port, 200, || None) {
            let _ = crate::run(Command::new("sh").arg("-c").arg(nginx.stop_line()));
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            bail!("{e}: {log}");
        }
        Ok(nginx)
    }

    fn stop_line(&self) -> String {
        let p = q(&self.pid_file);
        format!(
            "if [ -f {p} ]; then kill \"$(cat {p})\"; rm -f {p}; fi; \
             if [ -d {DP_CGROUP} ]; then sleep 0.3; rmdir {DP_CGROUP} 2>/dev/null; fi; true"
        )
    }
}

/// The blkio cgroup (v1) of a DP limited in all ([`Rate::Total`]).
const DP_CGROUP: &str = "/sys/fs/cgroup/blkio/capmedia-bench-dp";

/// `MAJ:MIN` of the disk holding `path`, for a blkio throttle rule.
fn block_device_of(path: &Path) -> Result<String> {
    need("findmnt", "util-linux")?;
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "lsblk -dno MAJ:MIN \"$(findmnt -no SOURCE -T {})\"",
            q(path)
        ))
        .output()?;
    let dev = String::from_utf8_lossy(&out.stdout).trim().replace(' ', "");
    if !out.status.success() || !dev.contains(':') {
        bail!(
            "no block device found for {} (a blkio throttle needs one)",
            path.display()
        );
    }
    Ok(dev)
}

/// How fast a bench DP sends.
#[derive(Debug, Clone, Copy)]
enum Rate {
    /// All connections together at most this many MiB/s.
    Total(u64),
}

/// Stop an nginx a previous, interrupted run left behind: the process named
/// by our pid file, and only if its command line names our config.
fn stop_stale(pid_file: &Path, conf: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let ours = String::from_utf8_lossy(&cmdline).contains(&*conf.to_string_lossy());
    if ours {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let _ = std::fs::remove_file(pid_file);
}

/// The xorriso and `cp -r` references for writing `tree` as an ISO.
fn iso_references(tree: &Path, out: &Path) -> Vec<Cmd> {
    let iso = out.join("xorriso.iso");
    vec![
        Cmd::new(
            "xorriso -as mkisofs + sync",
            format!(
                "SOURCE_DATE_EPOCH={EPOCH} xorriso -as mkisofs -quiet -iso-level 3 -J -V BENCH \
                 -o {} {} && sync {}",
                q(&iso),
                q(tree),
                q(&iso)
            ),
        ),
        cp_tree(tree, out),
    ]
}

fn cp_tree(tree: &Path, out: &Path) -> Cmd {
    let copy = out.join("copy");
    Cmd::new(
        "cp -r + sync",
        format!("cp -r {} {} && {}", q(tree), q(&copy), sync_tree(&copy)),
    )
}

fn iso_cmd(write_iso: &Path, tree: &Path, out: &Path) -> String {
    format!(
        "{} {} {}",
        q(write_iso),
        q(tree),
        q(out.join("capmedia.iso"))
    )
}

fn iso(ctx: &Ctx) -> Result<Pair> {
    need("xorriso", "xorriso")?;
    let mib = ctx.size_mib.unwrap_or(1024);
    let tree = make_tree(&shared(ctx, mib).join("tree"), mib)?;
    let write_iso = example("capmedia-iso", "write_iso")?;
    let out = ctx.work.join("out");
    let mut pair = Pair::new(
        Cmd::new("capmedia-iso (+verify)", iso_cmd(&write_iso, &tree, &out)),
        iso_references(&tree, &out),
    );
    pair.before_each = Some(fresh(&out));
    Ok(pair)
}

/// Image size for a tree of `mib` MiB: the content, FAT and cluster slack,
/// and never below FAT32's minimum (65525 clusters); the same for both sides.
fn usb_image_mib(mib: u64) -> u64 {
    mib + mib / 16 + 40
}

fn usb_cmd(usb_image: &Path, tree: &Path, out: &Path, image_mib: u64) -> String {
    format!(
        "{} {} {} {image_mib}M",
        q(usb_image),
        q(tree),
        q(out.join("capmedia.img"))
    )
}

fn usb(ctx: &Ctx) -> Result<Pair> {
    need("sfdisk", "fdisk")?;
    need("mkfs.fat", "dosfstools")?;
    need("mcopy", "mtools")?;
    let mib = ctx.size_mib.unwrap_or(1024);
    let tree = make_tree(&shared(ctx, mib).join("tree"), mib)?;
    let usb_image = example("capmedia-usb", "usb_image")?;
    let out = ctx.work.join("out");
    let image_mib = usb_image_mib(mib);
    let img = q(out.join("mtools.img"));
    // The same disk as ours: MBR, one FAT32 partition at 1 MiB, active.
    let mtools = format!(
        "truncate -s {image_mib}M {img} \
         && echo 'start=2048, type=c, bootable' | sfdisk -q {img} \
         && mkfs.fat -F 32 --offset 2048 -n CONFIGURATI {img} >/dev/null \
         && mcopy -s -i {img}@@1M {}/* ::/ && sync {img}",
        q(&tree)
    );
    let mut pair = Pair::new(
        Cmd::new(
            "capmedia-usb (+verify)",
            usb_cmd(&usb_image, &tree, &out, image_mib),
        ),
        vec![
            Cmd::new("sfdisk+mkfs.fat+mcopy+sync", mtools),
            cp_tree(&tree, &out),
        ],
    );
    pair.before_each = Some(fresh(&out));
    Ok(pair)
}

fn vhd(ctx: &Ctx) -> Result<Pair> {
    vdisk(ctx, "vhd", "vpc")
}

fn vhdx(ctx: &Ctx) -> Result<Pair> {
    let mut pair = vdisk(ctx, "vhdx", "vhdx")?;
    pair.check = Some(check_vhdx);
    Ok(pair)
}

/// The vhd and vhdx rows: a disk of the given size (at least 64 MiB, for
/// FAT32's minimum), three quarters full (one tree for both rows), as a
/// dynamic `format` written directly, against the raw image + `qemu-img
/// convert -O qemu_format`, and the convert alone. The plan (the BLAKE3 of
/// every file) is made once, untimed: both sides need it and it is neither
/// writer's work.
fn vdisk(ctx: &Ctx, format: &str, qemu_format: &str) -> Result<Pair> {
    need("qemu-img", "qemu-utils")?;
    let disk = ctx.size_mib.unwrap_or(1024).max(64);
    let content = disk * 3 / 4;
    let tree = make_tree(&shared(ctx, content).join("tree"), content)?;
    let bench = example("capmedia-vhdx", "bench_vdisk")?;
    let plan = ctx.work.join(format!("plan-{content}mib.json"));
    crate::run(
        Command::new(&bench)
            .args(["plan", format])
            .arg(&tree)
            .arg(&plan),
    )?;
    let out = ctx.work.join("out");
    // The raw image once, for timing qemu-img's conversion alone.
    let raw_dir = ctx.work.join(format!("raw-{disk}mib"));
    let raw = raw_dir.join("disk.raw");
    if !raw.exists() {
        std::fs::create_dir_all(&raw_dir)?;
        crate::run(
            Command::new(&bench)
                .arg(format)
                .arg(&plan)
                .arg(&raw_dir)
                .args([disk.to_string(), "convert".into()]),
        )?;
        std::fs::remove_file(raw_dir.join(format!("converted.{format}")))?;
    }
    let run = |mode: &str| {
        format!(
            "{} {format} {} {} {disk} {mode}",
            q(&bench),
            q(&plan),
            q(&out)
        )
    };
    let mut pair = Pair::new(
        Cmd::new(&format!("capmedia-{format} direct"), run("direct")),
        vec![
            Cmd::new("raw + qemu-img convert", run("convert")),
            Cmd::new(
                "qemu-img convert alone",
                format!(
                    "qemu-img convert -f raw -O {qemu_format} -o subformat=dynamic {} {}",
                    q(&raw),
                    q(out.join(format!("alone.{format}")))
                ),
            ),
        ],
    );
    pair.before_each = Some(fresh(&out));
    Ok(pair)
}

/// The vhdx row's goal (issue 19): the direct VHDX in at most half the time
/// of the raw image + convert, with peak RSS flat (a bounded write path:
/// far below the content's size).
fn check_vhdx(m: &[Measured]) -> Result<()> {
    let (Some(ours), Some(reference)) = (m.first(), m.get(1)) else {
        bail!("vhdx expects at least two commands, got {}", m.len());
    };
    let ratio = ours.secs / reference.secs;
    println!(
        "vhdx: {:.2}x the time of {} (goal <= 0.5x), peak RSS {:.1} MiB (limit 64 MiB)",
        ratio, reference.label, ours.rss_mib
    );
    if ours.rss_mib > 64.0 {
        bail!(
            "{} peaked at {:.1} MiB of RSS, over 64 MiB: memory grows with the content",
            ours.label,
            ours.rss_mib
        );
    }
    Ok(())
}

/// A boot image package of about `mib` MiB (an uncompressed WIM holding
/// one big file and an x64 `kernel32.dll`, plus test boot files) in `base/package`,
/// and its content library, `base/SCCMContentLib`, both built once.
pub fn boot_package_library(base: &Path, mib: u64) -> Result<PathBuf> {
    need("wimlib-imagex", "wimtools")?;
    let pkg = base.join("package");
    let done = base.join("package.done");
    if !(done.exists() && pkg.exists()) {
        let src = base.join("wim-source");
        make_file(&src.join("big.bin"), mib)?;
        let k32 = src.join("Windows/System32/kernel32.dll");
        std::fs::create_dir_all(k32.parent().context("kernel32 path")?)?;
        std::fs::write(&k32, capmedia_testboot::pe_stub(0x8664))?;
        if pkg.exists() {
            std::fs::remove_dir_all(&pkg)?;
        }
        capmedia_testboot::write_media_folder(&pkg, Arch::X64, capmedia_sample::MARKER)?;
        let id: PackageId = BOOT_PACKAGE.parse()?;
        crate::run(
            Command::new("wimlib-imagex")
                .arg("capture")
                .arg(&src)
                .arg(pkg.join(id.boot_wim_name()))
                .args(["--compress=none", "--quiet"]),
        )
        .context("wimlib-imagex capture (Debian package wimtools)")?;
        std::fs::write(&done, b"")?;
    }
    make_library(&base.join("SCCMContentLib"), BOOT_PACKAGE, &pkg)
}

/// A `capmedia capture` line: the bench package from `lib` with `sink` to
/// `out`, caching in `cache`; progress lines go to `<work>/<name>.stderr`
/// (read it on a failure).
fn capture_line(ctx: &Ctx, lib: &Path, sink: &str, out: &Path, cache: &Path) -> String {
    capture_line_from(ctx, &q(lib), sink, out, cache)
}

/// [`capture_line`] from a DP given as it goes on the command line (a
/// quoted path, or a URL).
fn capture_line_from(ctx: &Ctx, dp: &str, sink: &str, out: &Path, cache: &Path) -> String {
    let stem = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(
        "SOURCE_DATE_EPOCH={EPOCH} {} capture --dp {} --boot-image {BOOT_PACKAGE} \
         --target-arch x64 --sink {sink} --out {} --cache {} 2>{}",
        q(&ctx.capmedia),
        dp,
        q(out),
        q(cache),
        q(ctx.work.join(format!("{stem}.stderr")))
    )
}

/// The ISO and USB captures (ours first, the USB one last) against cp -r +
/// sync of the package.
fn capture_pair(ctx: &Ctx, cache: &Path) -> Result<(Pair, PathBuf)> {
    let mib = ctx.size_mib.unwrap_or(512);
    let base = shared(ctx, mib).join("capture");
    let lib = boot_package_library(&base, mib)?;
    let pkg = base.join("package");
    let out = ctx.work.join("out");
    let pair = Pair::new(
        Cmd::new(
            "capture iso-set",
            capture_line(ctx, &lib, "iso-set", &out.join("capture.iso"), cache),
        ),
        vec![
            cp_tree(&pkg, &out),
            Cmd::new(
                "capture usb-raw",
                capture_line(ctx, &lib, "usb-raw", &out.join("capture.img"), cache),
            ),
            // The same captures with their stages one after another
            // (fetch, then write, then read back): what the one pass gains.
            Cmd::new(
                "capture usb-raw staged",
                format!(
                    "CAPMEDIA_STAGED=1 {}",
                    capture_line(ctx, &lib, "usb-raw", &out.join("staged.img"), cache)
                ),
            ),
            Cmd::new(
                "capture iso-set staged",
                format!(
                    "CAPMEDIA_STAGED=1 {}",
                    capture_line(ctx, &lib, "iso-set", &out.join("staged.iso"), cache)
                ),
            ),
        ],
    );
    Ok((pair, lib))
}

/// Each capture's median against cp -r + sync's, with the goal.
fn capture_ratios(m: &[Measured], goal: f64) -> Result<()> {
    let [iso, cp, usb, staged, iso_staged] = m else {
        bail!("capture rows expect five commands, got {}", m.len());
    };
    for c in [iso, usb, staged, iso_staged] {
        let ratio = c.secs / cp.secs;
        println!(
            "{}: {ratio:.2}x {} ({:.3} s vs {:.3} s); goal <= {goal}x: {}",
            c.label,
            cp.label,
            c.secs,
            cp.secs,
            if ratio <= goal { "met" } else { "NOT met" }
        );
    }
    Ok(())
}

fn capture(ctx: &Ctx) -> Result<Pair> {
    let cache = ctx.work.join("cache");
    let (mut pair, _) = capture_pair(ctx, &cache)?;
    // A cold content cache: the fetch from the DP is part of what is timed.
    pair.before_each = Some(format!(
        "rm -rf {} && {}",
        q(&cache),
        fresh(&ctx.work.join("out"))
    ));
    pair.check = Some(|m| capture_ratios(m, 1.8));
    Ok(pair)
}

fn capture_hit(ctx: &Ctx) -> Result<Pair> {
    let cache = ctx.work.join("cache");
    let (mut pair, _) = capture_pair(ctx, &cache)?;
    // Warm the cache once (untimed); every timed run then finds it sealed.
    let out = ctx.work.join("out");
    sh(&format!("{} && {}", fresh(&out), pair.ours.line))?;
    pair.before_each = Some(fresh(&out));
    pair.check = Some(|m| capture_ratios(m, 1.3));
    Ok(pair)
}

/// The floor of writing and reading back the package's bytes: every file
/// of the package in one stream (the same bytes cp copies) written with
/// `O_DIRECT` and synced, then read back with `O_DIRECT`. GNU dd writes the
/// last partial block without `O_DIRECT`; `conv=fsync` makes it durable as
/// our writers' `fsync` does.
fn floor(ctx: &Ctx) -> Result<Pair> {
    let cache = ctx.work.join("cache");
    let (capture, lib) = capture_pair(ctx, &cache)?;
    let pkg = lib
        .parent()
        .context("the package library has a parent")?
        .join("package");
    let out = ctx.work.join("out");
    let img = q(out.join("floor.img"));
    let write = format!(
        "find {} -type f -print0 | sort -z | xargs -0 cat \
         | dd of={img} bs=4M iflag=fullblock oflag=direct conv=fsync status=none",
        q(&pkg)
    );
    let read = format!("dd if={img} of=/dev/null bs=4M iflag=direct status=none");
    let usb = capture
        .references
        .iter()
        .find(|c| c.label == "capture usb-raw")
        .cloned()
        .context("the capture row has a usb-raw capture")?;
    let mut pair = Pair::new(
        Cmd::new("dd direct write+read", format!("{write} && {read}")),
        vec![
            cp_tree(&pkg, &out),
            Cmd::new("capture usb-raw (hit)", usb.line),
            // No read-back at all: what a capture whose read-back fully
            // overlaps its writes (read-behind) could reach at best.
            Cmd::new("dd direct write", write.clone()),
        ],
    );
    // Warm the cache once (untimed), as capture-hit does.
    sh(&format!("{} && {}", fresh(&out), pair.references[1].line))?;
    pair.before_each = Some(fresh(&out));
    pair.check = Some(floor_ratios);
    Ok(pair)
}

fn floor_ratios(m: &[Measured]) -> Result<()> {
    let [floor, cp, usb, write] = m else {
        bail!("the floor row expects four commands, got {}", m.len());
    };
    println!(
        "floor: {} = {:.3} s, {:.2}x {} ({:.3} s); {} = {:.2}x the floor, {:.2}x cp; \
         {} alone (no read-back) = {:.3} s, {:.2}x cp, the capture {:.2}x that",
        floor.label,
        floor.secs,
        floor.secs / cp.secs,
        cp.label,
        cp.secs,
        usb.label,
        usb.secs / floor.secs,
        usb.secs / cp.secs,
        write.label,
        write.secs,
        write.secs / cp.secs,
        usb.secs / write.secs
    );
    Ok(())
}

fn capture_rss(ctx: &Ctx) -> Result<Pair> {
    let large = ctx.size_mib.unwrap_or(2048);
    let small = (large / 8).max(1);
    let out = ctx.work.join("out");
    let cache = ctx.work.join("cache");
    let mut cmds = Vec::new();
    // ISO (fetch, then write) and USB (one pass: fetched while written).
    for (sink, ext) in [("iso-set", "iso"), ("usb-raw", "img")] {
        for mib in [small, large] {
            let lib = boot_package_library(&shared(ctx, mib).join("capture"), mib)?;
            cmds.push(Cmd::new(
                &format!("capture {ext} {mib} MiB"),
                capture_line(ctx, &lib, sink, &out.join(format!("{mib}.{ext}")), &cache),
            ));
        }
    }
    let ours = cmds.remove(0);
    let mut pair = Pair::new(ours, cmds);
    pair.before_each = Some(format!("rm -rf {} && {}", q(&cache), fresh(&out)));
    pair.check = Some(check_capture_rss);
    Ok(pair)
}

/// The blkio cgroup (v1) of the capture-slow row.
const SLOW_CGROUP: &str = "/sys/fs/cgroup/blkio/capmedia-bench-slow";
/// Its write limit on the loop device: 30 MB/s, a slow USB stick.
const SLOW_WRITE_BPS: u64 = 30_000_000;

fn capture_slow(ctx: &Ctx) -> Result<Pair> {
    need("losetup", "mount")?;
    need("lsblk", "util-linux")?;
    need("mkfs.ext4", "e2fsprogs")?;
    need("curl", "curl")?;
    if !Path::new("/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device").exists() {
        bail!("capture-slow needs the cgroup v1 blkio controller at /sys/fs/cgroup/blkio");
    }
    let mib = ctx.size_mib.unwrap_or(512);
    let base = shared(ctx, mib).join("capture");
    let lib = boot_package_library(&base, mib)?;
    let id: PackageId = BOOT_PACKAGE.parse()?;
    let wim = base.join("package").join(id.boot_wim_name());

    // The DP: nginx at 100 MiB/s in all, however many ranges are in flight.
    let dir = ctx.work.join("nginx");
    std::fs::create_dir_all(&dir)?;
    let nginx = Nginx::start_limited(&dir, &lib, Some(Rate::Total(100)))?;
    let url = format!("http://127.0.0.1:{}/SMS_DP_SMSPKG$/", nginx.port);

    // The medium: ext4 on a loop device over a sparse file, writes
    // throttled for the processes of our cgroup (the O_DIRECT writes of the
    // usb-raw sink and of dd are submitted by them, so the limit holds;
    // reads are not limited).
    let img = ctx.work.join("medium.ext4");
    let mnt = ctx.work.join("mnt");
    let loopdev = ctx.work.join("loopdev");
    let cleanup = format!(
        "if mountpoint -q {m}; then umount {m}; fi; \
         if [ -f {l} ]; then losetup -d \"$(cat {l})\" 2>/dev/null; rm -f {l}; fi; \
         if [ -d {c} ]; then rmdir {c}; fi; rm -f {i}",
        m = q(&mnt),
        l = q(&loopdev),
        c = SLOW_CGROUP,
        i = q(&img),
    );
    sh(&cleanup)?;
    std::fs::create_dir_all(&mnt)?;
    sh(&format!(
        "truncate -s {size}M {i} && losetup -f --show {i} > {l} && mkfs.ext4 -q -F \"$(cat {l})\" \
         && mount \"$(cat {l})\" {m} && mkdir -p {c} \
         && echo \"$(lsblk -dno MAJ:MIN \"$(cat {l})\" | tr -d ' ') {bps}\" > {c}/blkio.throttle.write_bps_device",
        size = mib * 3 + 512,
        i = q(&img),
        l = q(&loopdev),
        m = q(&mnt),
        c = SLOW_CGROUP,
        bps = SLOW_WRITE_BPS,
    ))
    .context("setting up the throttled loop device")?;
    let in_cgroup = format!("echo $$ > {SLOW_CGROUP}/cgroup.procs && ");
    let out = mnt.join("out");
    let cache = ctx.work.join("cache");
    let blob = format!("{url}{}", filelib_rel(&lib, &wim)?);
    let capture = |label: &str, env: &str| {
        Cmd::new(
            label,
            format!(
                "{in_cgroup}{env}{}",
                capture_line_from(ctx, &q(&url), "usb-raw", &out.join("capture.img"), &cache)
            ),
        )
    };
    let alone = out.join("alone.bin");
    let mut pair = Pair::new(
        capture("capture usb-raw one pass", ""),
        vec![
            capture("capture usb-raw staged", "CAPMEDIA_STAGED=1 "),
            Cmd::new(
                "write alone + read-back (dd, O_DIRECT)",
                format!(
                    "{in_cgroup}dd if={w} of={a} bs=4M oflag=direct conv=fsync status=none \
                     && dd if={a} of=/dev/null bs=4M iflag=direct status=none",
                    w = q(&wim),
                    a = q(&alone),
                ),
            ),
            Cmd::new(
                "DP alone (curl)",
                format!("curl -s -f -o /dev/null {}", q(&blob)),
            ),
        ],
    );
    pair.before_each = Some(format!("rm -rf {} && {}", q(&cache), fresh(&out)));
    pair.teardown = Some(format!("{}; {cleanup}", nginx.stop_line()));
    pair.check = Some(check_capture_slow);
    Ok(pair)
}

fn capture_ranges(ctx: &Ctx) -> Result<Pair> {
    need("nginx", "nginx-light")?;
    let mib = ctx.size_mib.unwrap_or(512);
    let base = shared(ctx, mib).join("capture");
    let lib = boot_package_library(&base, mib)?;
    let limited = Nginx::start_limited(
        &ctx.work.join("nginx-limited"),
        &lib,
        Some(Rate::Total(100)),
    )?;
    let open = match Nginx::start(&ctx.work.join("nginx-open"), &lib) {
        Ok(n) => n,
        Err(e) => {
            let _ = sh(&limited.stop_line());
            return Err(e);
        }
    };
    let out = ctx.work.join("out");
    let cache = ctx.work.join("cache");
    let capture = |label: &str, port: u16, env: &str| {
        let url = format!("http://127.0.0.1:{port}/SMS_DP_SMSPKG$/");
        Cmd::new(
            label,
            format!(
                "{env}{}",
                capture_line_from(ctx, &q(&url), "usb-raw", &out.join("capture.img"), &cache)
            ),
        )
    };
    let mut pair = Pair::new(
        capture("ranges on, DP 100 MiB/s in all", limited.port, ""),
        vec![
            capture(
                "ranges off, DP 100 MiB/s in all",
                limited.port,
                "CAPMEDIA_DP_RANGES=0 ",
            ),
            capture("ranges on, unlimited", open.port, ""),
            capture("ranges off, unlimited", open.port, "CAPMEDIA_DP_RANGES=0 "),
        ],
    );
    pair.before_each = Some(format!("rm -rf {} && {}", q(&cache), fresh(&out)));
    pair.teardown = Some(format!("{}; {}", limited.stop_line(), open.stop_line()));
    pair.check = Some(check_capture_ranges);
    Ok(pair)
}

/// Ranges on against off, limited and unlimited.
fn check_capture_ranges(m: &[Measured]) -> Result<()> {
    let [on, off, on_open, off_open] = m else {
        bail!("capture-ranges expects four commands, got {}", m.len());
    };
    println!(
        "capture-ranges: DP 100 MiB/s in all: ranges on {:.2} s vs off {:.2} s = {:.2}x; \
         unlimited DP: on {:.2} s vs off {:.2} s = {:.2}x (off / on: above 1, ranges gain)",
        on.secs,
        off.secs,
        off.secs / on.secs,
        on_open.secs,
        off_open.secs,
        off_open.secs / on_open.secs
    );
    Ok(())
}

/// The FileLib path of the blob holding `file`'s bytes, relative to the
/// library (its name is its SHA-256).
fn filelib_rel(lib: &Path, file: &Path) -> Result<String> {
    let len = std::fs::metadata(file)?.len();
    for b in blobs(lib)? {
        if std::fs::metadata(&b)?.len() == len {
            let name = b
                .file_name()
                .and_then(|n| n.to_str())
                .context("FileLib name")?
                .to_owned();
            return Ok(format!("FileLib/{}/{name}", &name[..4.min(name.len())]));
        }
    }
    bail!("no FileLib blob of {len} bytes in {}", lib.display())
}

/// One pass against the slow stage alone plus its read-back (goal 1.15x),
/// and against the stages one after another.
fn check_capture_slow(m: &[Measured]) -> Result<()> {
    let [ours, staged, write, dp] = m else {
        bail!("capture-slow expects four commands, got {}", m.len());
    };
    let slower = write.secs.max(dp.secs);
    println!(
        "capture-slow: one pass {:.2} s = {:.2}x the slower stage + read-back ({:.2} s; \
         write + read-back {:.2} s, DP alone {:.2} s), goal <= 1.15x: {}; staged {:.2} s \
         ({:.2}x one pass)",
        ours.secs,
        ours.secs / slower,
        slower,
        write.secs,
        dp.secs,
        if ours.secs <= 1.15 * slower {
            "met"
        } else {
            "NOT met"
        },
        staged.secs,
        staged.secs / ours.secs
    );
    Ok(())
}

/// Peak RSS of the large capture against the small one: flat, and under
/// 64 MiB.
fn check_capture_rss(m: &[Measured]) -> Result<()> {
    if m.len() != 4 {
        bail!("capture-rss expects four commands, got {}", m.len());
    }
    let mut bad = Vec::new();
    for pair in m.chunks_exact(2) {
        let [s, l] = pair else { continue };
        println!(
            "capture-rss: {} {:.1} MiB in {:.2} s, {} {:.1} MiB in {:.2} s",
            s.label, s.rss_mib, s.secs, l.label, l.rss_mib, l.secs
        );
        let limit = (s.rss_mib * 1.25 + 8.0).min(64.0);
        if l.rss_mib > limit || s.rss_mib > 64.0 {
            bad.push(format!(
                "{} peaked at {:.1} MiB ({} at {:.1} MiB)",
                l.label, l.rss_mib, s.label, s.rss_mib
            ));
        }
    }
    if !bad.is_empty() {
        bail!("capture peak RSS not flat under 64 MiB: {}", bad.join("; "));
    }
    println!("capture-rss: peak RSS flat and under 64 MiB");
    Ok(())
}

fn rss_flat(ctx: &Ctx) -> Result<Pair> {
    let large = ctx.size_mib.unwrap_or(2048);
    let small = (large / 8).max(1);
    let write_iso = example("capmedia-iso", "write_iso")?;
    let usb_image = example("capmedia-usb", "usb_image")?;
    let out = ctx.work.join("out");
    let mut cmds = Vec::new();
    for (name, mib) in [("small", small), ("large", large)] {
        let tree = make_tree(&shared(ctx, mib).join("tree"), mib)?;
        let o = out.join(name);
        cmds.push(Cmd::new(
            &format!("iso {mib} MiB"),
            format!("mkdir -p {} && {}", q(&o), iso_cmd(&write_iso, &tree, &o)),
        ));
        cmds.push(Cmd::new(
            &format!("usb {mib} MiB"),
            format!(
                "mkdir -p {} && {}",
                q(&o),
                usb_cmd(&usb_image, &tree, &o, usb_image_mib(mib))
            ),
        ));
    }
    // Order: iso small, usb small, iso large, usb large.
    let ours = cmds.remove(0);
    let mut pair = Pair::new(ours, cmds);
    pair.before_each = Some(fresh(&out));
    pair.check = Some(check_rss_flat);
    Ok(pair)
}

/// The large runs (3rd, 4th) against the small ones (1st, 2nd).
fn check_rss_flat(m: &[Measured]) -> Result<()> {
    let [iso_s, usb_s, iso_l, usb_l] = m else {
        bail!("rss-flat expects four commands, got {}", m.len());
    };
    let mut bad = Vec::new();
    for (s, l) in [(iso_s, iso_l), (usb_s, usb_l)] {
        println!(
            "rss-flat: {} {:.1} MiB in {:.2} s, {} {:.1} MiB in {:.2} s",
            s.label, s.rss_mib, s.secs, l.label, l.rss_mib, l.secs
        );
        let limit = s.rss_mib * 1.25 + 8.0;
        if l.rss_mib > limit {
            bad.push(format!(
                "{}: {:.1} MiB > {:.1} MiB ({}: {:.1} MiB)",
                l.label, l.rss_mib, limit, s.label, s.rss_mib
            ));
        }
    }
    if bad.is_empty() {
        println!("rss-flat: peak RSS does not grow with content size");
        Ok(())
    } else {
        bail!("peak RSS grows with content: {}", bad.join("; "))
    }
}

/// A tree of `mib` MiB of files shaped like a boot image's (many small and
/// mid-sized files, a few large), each 64 KiB block either incompressible or
/// text-like (LZX shrinks the latter several times), then captured into an
/// LZX WIM with wimlib-imagex. Returns the WIM; reuses it when complete.
fn make_wim(dir: &Path, mib: u64) -> Result<PathBuf> {
    use std::io::Write;
    let wim = dir.join("bench.wim");
    let done = dir.join("bench.wim.done");
    if done.exists() && wim.exists() {
        return Ok(wim);
    }
    need("wimlib-imagex", "wimtools")?;
    let tree = dir.join("wimtree");
    if tree.exists() {
        std::fs::remove_dir_all(&tree)?;
    }
    const WORDS: [&[u8]; 12] = [
        b"Windows ",
        b"System32 ",
        b"\\drivers\\",
        b"boot ",
        b"mgr ",
        b".dll\0",
        b"\0\0\0\0",
        b"MZ\x90\0",
        b"This program ",
        b"cannot be run ",
        b"in DOS mode.\r\n",
        b"\xff\xff",
    ];
    let sizes: [u64; 8] = [
        4 << 10,
        40 << 10,
        300 << 10,
        1 << 20,
        9 << 10,
        3 << 20,
        120 << 10,
        6 << 20,
    ];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let total = mib << 20;
    let (mut written, mut i) = (0u64, 0usize);
    let mut block = vec![0u8; 64 << 10];
    while written < total {
        let size = sizes[i % sizes.len()].min(total - written);
        let path = tree.join(format!("d{:02}/s{:02}/f{i:06}.bin", i % 16, (i / 16) % 8));
        std::fs::create_dir_all(path.parent().context("file in a folder")?)?;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let mut left = size;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            block.clear();
            if next() % 2 == 0 {
                while block.len() < n {
                    block.extend_from_slice(&next().to_le_bytes());
                }
            } else {
                while block.len() < n {
                    block.extend_from_slice(WORDS[(next() % 12) as usize]);
                }
            }
            f.write_all(&block[..n])?;
            left -= n as u64;
        }
        f.flush()?;
        written += size;
        i += 1;
    }
    crate::run(Command::new("wimlib-imagex").args([
        "capture".as_ref(),
        tree.as_os_str(),
        wim.as_os_str(),
        "bench".as_ref(),
        "--compress=lzx".as_ref(),
    ]))?;
    std::fs::remove_dir_all(&tree)?;
    std::fs::write(&done, b"")?;
    Ok(wim)
}

fn wim_extract_cmd(tool: &Path, wim: &Path, out: &Path) -> String {
    format!("{} {} 1 {}", q(tool), q(wim), q(out.join("ours")))
}

fn wim_extract(ctx: &Ctx) -> Result<Pair> {
    need("wimlib-imagex", "wimtools")?;
    let mib = ctx.size_mib.unwrap_or(1024);
    let wim = make_wim(&shared(ctx, mib), mib)?;
    let tool = example("capmedia-wim", "wim_extract")?;
    let out = ctx.work.join("out");
    let mut pair = Pair::new(
        Cmd::new(
            "capmedia-wim (SHA-1 checked)",
            wim_extract_cmd(&tool, &wim, &out),
        ),
        vec![Cmd::new(
            "wimlib-imagex extract",
            format!(
                "wimlib-imagex extract {} 1 --dest-dir={}",
                q(&wim),
                q(out.join("wimlib"))
            ),
        )],
    );
    pair.before_each = Some(fresh(&out));
    Ok(pair)
}

fn wim_rss(ctx: &Ctx) -> Result<Pair> {
    let large = ctx.size_mib.unwrap_or(2048);
    let small = (large / 8).max(1);
    let tool = example("capmedia-wim", "wim_extract")?;
    let out = ctx.work.join("out");
    let mut cmds = Vec::new();
    for mib in [small, large] {
        let wim = make_wim(&shared(ctx, mib), mib)?;
        let o = out.join(format!("{mib}"));
        cmds.push(Cmd::new(
            &format!("wim-extract {mib} MiB"),
            wim_extract_cmd(&tool, &wim, &o),
        ));
    }
    let ours = cmds.remove(0);
    let mut pair = Pair::new(ours, cmds);
    pair.before_each = Some(fresh(&out));
    pair.check = Some(check_wim_rss);
    Ok(pair)
}

/// Peak RSS of the large extraction within 25% + 8 MiB of the small one's,
/// and both under 64 MiB.
fn check_wim_rss(m: &[Measured]) -> Result<()> {
    let [s, l] = m else {
        bail!("wim-rss expects two commands, got {}", m.len());
    };
    println!(
        "wim-rss: {} {:.1} MiB in {:.2} s, {} {:.1} MiB in {:.2} s",
        s.label, s.rss_mib, s.secs, l.label, l.rss_mib, l.secs
    );
    let limit = (s.rss_mib * 1.25 + 8.0).min(64.0);
    if l.rss_mib > limit || s.rss_mib > 64.0 {
        bail!(
            "WIM extraction memory grows with content or exceeds 64 MiB: {:.1} MiB then {:.1} MiB",
            s.rss_mib,
            l.rss_mib
        );
    }
    println!("wim-rss: peak RSS flat and under 64 MiB");
    Ok(())
}
