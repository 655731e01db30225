//! A test DP: nginx (Debian package `nginx-light`) serving a content
//! library at `/SMS_DP_SMSPKG$/` on 127.0.0.1 with autoindex, as a real DP's
//! IIS serves it, with its own config, pid file, logs and temp folders, so
//! it needs no root and touches nothing of the system's nginx.
//!
//! The dp crate's HTTP tests, the CLI's end-to-end tests and the benchmark
//! rows all use it: [`Nginx::start`] runs it as a child that stops when
//! dropped; [`Config`] alone gives the configuration for a caller that runs
//! nginx as a daemon (the benchmark harness stops it by pid file).
//!
//! [`Samba`] is the SMB DP: `smbd` (Debian `samba`) sharing the same
//! library as `SCCMContentLib$`, for the SMB backend's tests and bench row.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

/// The nginx configuration serving `lib`.
#[derive(Debug, Clone, Copy)]
pub struct Config<'a> {
    /// nginx's prefix: config, pid file, logs and temp folders go here.
    pub dir: &'a Path,
    /// The `SCCMContentLib` folder served at `/SMS_DP_SMSPKG$/`.
    pub lib: &'a Path,
    pub port: u16,
    /// `Some((certificate, key))` (PEM) serves HTTPS.
    pub tls: Option<(&'a Path, &'a Path)>,
    /// With `tls`: a CA file (PEM) whose client certificates nginx
    /// requires (`ssl_verify_client on`), as an HTTPS DP with PKI does.
    pub client_ca: Option<&'a Path>,
    /// Detach (`daemon on`) rather than stay in the foreground.
    pub daemon: bool,
}

impl Config<'_> {
    /// The text of `nginx.conf`. One process (no master), so the child or
    /// the pid file names all of nginx.
    pub fn render(&self) -> String {
        let d = self.dir.display();
        let mut listen = format!("127.0.0.1:{}", self.port);
        if let Some((cert, key)) = self.tls {
            let _ = write!(
                listen,
                " ssl;\n        ssl_certificate {};\n        ssl_certificate_key {}",
                cert.display(),
                key.display()
            );
            if let Some(ca) = self.client_ca {
                let _ = write!(
                    listen,
                    ";\n        ssl_client_certificate {};\n        ssl_verify_client on",
                    ca.display()
                );
            }
        }
        format!(
            r#"daemon {daemon};
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
    log_format capmedia_bytes '$request_method $uri $status $body_bytes_sent';
    access_log {d}/access.log capmedia_bytes;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    sendfile on;
    tcp_nopush on;
    server {{
        listen {listen};
        location /SMS_DP_SMSPKG$/ {{
            alias {lib}/;
            autoindex on;
        }}
    }}
}}
"#,
            daemon = if self.daemon { "on" } else { "off" },
            lib = self.lib.display(),
        )
    }

    /// Write the configuration to `dir/nginx.conf` and return its path.
    pub fn write(&self) -> io::Result<PathBuf> {
        fs::create_dir_all(self.dir)?;
        let path = self.dir.join("nginx.conf");
        fs::write(&path, self.render())?;
        Ok(path)
    }
}

/// The nginx executable, or an error naming the package to install.
pub fn nginx_binary() -> io::Result<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "nginx is not installed: apt-get install -y nginx-light",
            )
        })
}

/// A free TCP port on 127.0.0.1 (free when asked; nginx binds it next).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Wait until something listens on 127.0.0.1:`port`, for up to `tries` ×
/// 25 ms; `gone()` says early that the server has exited (with why).
pub fn wait_listening(
    port: u16,
    tries: u32,
    mut gone: impl FnMut() -> Option<String>,
) -> io::Result<()> {
    for _ in 0..tries {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Some(why) = gone() {
            return Err(io::Error::other(why));
        }
        thread::sleep(Duration::from_millis(25));
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("nginx did not start listening on 127.0.0.1:{port}"),
    ))
}

/// nginx in the foreground as a child; killed when dropped.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    port: u16,
    /// The prefix folder (config, logs).
    dir: PathBuf,
    /// The prefix folder, when [`Nginx::start_temp`] made it.
    _temp: Option<tempfile::TempDir>,
}

impl Nginx {
    /// Serve `lib` with state in `dir` (created if missing).
    pub fn start(dir: &Path, lib: &Path, tls: Option<(&Path, &Path)>) -> io::Result<Nginx> {
        Nginx::start_with(dir, lib, tls, None)
    }

    /// [`Nginx::start`], HTTPS requiring client certificates issued by
    /// `client_ca` when that is given.
    pub fn start_with(
        dir: &Path,
        lib: &Path,
        tls: Option<(&Path, &Path)>,
        client_ca: Option<&Path>,
    ) -> io::Result<Nginx> {
        let bin = nginx_binary()?;
        let port = free_port()?;
        let conf = Config {
            dir,
            lib,
            port,
            tls,
            client_ca,
            daemon: false,
        }
        .write()?;
        let child = Command::new(&bin)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("starting {} (nginx-light): {e}", bin.display()),
                )
            })?;
        let mut nginx = Nginx {
            child,
            port,
            dir: dir.to_path_buf(),
            _temp: None,
        };
        wait_listening(port, 400, || {
            let status = nginx.child.try_wait().ok()??;
            let log = fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            Some(format!("nginx exited with {status}: {log}"))
        })?;
        Ok(nginx)
    }

    /// Serve `lib` over plain HTTP with state in a temporary folder.
    pub fn start_temp(lib: &Path) -> io::Result<Nginx> {
        let temp = tempfile::tempdir()?;
        let mut nginx = Nginx::start(temp.path(), lib, None)?;
        nginx._temp = Some(temp);
        Ok(nginx)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Body bytes served so far for `GET` requests whose path starts with
    /// `prefix` (e.g. `/SMS_DP_SMSPKG$/FileLib/`), from the access log:
    /// how tests see what a run read from the DP.
    pub fn bytes_served(&self, prefix: &str) -> io::Result<u64> {
        let log = match fs::read_to_string(self.dir.join("access.log")) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            r => r?,
        };
        Ok(log
            .lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                let (method, uri, _status, bytes) = (f.next()?, f.next()?, f.next()?, f.next()?);
                (method == "GET" && uri.starts_with(prefix)).then(|| bytes.parse::<u64>().ok())?
            })
            .sum())
    }

    /// The DP URL: `http://127.0.0.1:<port>/SMS_DP_SMSPKG$/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/SMS_DP_SMSPKG$/", self.port)
    }

    /// The DP URL over HTTPS (for a server started with `tls`).
    pub fn https_url(&self) -> String {
        format!("https://127.0.0.1:{}/SMS_DP_SMSPKG$/", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `openssl` with `args` in `dir`, or fail naming the package.
fn openssl(dir: &Path, args: &[&str]) -> io::Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("running openssl: {e} (apt-get install -y openssl)"),
            )
        })?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// A test PKI made with the `openssl` command in a folder: a CA, a server
/// certificate for 127.0.0.1 signed by it, and a client certificate (for
/// client authentication) as PEM (`client.pem`: certificate and key) and as
/// PKCS#12 (`client.pfx`, with [`Pki::PFX_PASSWORD`]).
#[derive(Debug)]
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub const PFX_PASSWORD: &'static str = "pfx-Pa55word";

    /// Make the PKI in `dir` (created if missing).
    pub fn make(dir: &Path) -> io::Result<Pki> {
        fs::create_dir_all(dir)?;
        let ext = "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n\
                   extendedKeyUsage=serverAuth\n";
        fs::write(dir.join("server.ext"), ext)?;
        fs::write(
            dir.join("client.ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )?;
        let steps: &[&[&str]] = &[
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=capmedia test CA",
            ],
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "client.key",
                "-out",
                "client.csr",
                "-subj",
                "/CN=capmedia test client",
            ],
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "client.crt",
                "-days",
                "2",
                "-extfile",
                "client.ext",
            ],
            &[
                "pkcs12",
                "-export",
                "-in",
                "client.crt",
                "-inkey",
                "client.key",
                "-out",
                "client.pfx",
                "-passout",
                "env:CAPMEDIA_TEST_PFX_PASSWORD",
            ],
        ];
        for args in steps {
            if args.first() == Some(&"pkcs12") {
                // The password goes by environment, not argv.
                let out = Command::new("openssl")
                    .args(*args)
                    .current_dir(dir)
                    .env("CAPMEDIA_TEST_PFX_PASSWORD", Pki::PFX_PASSWORD)
                    .stdin(Stdio::null())
                    .output()?;
                if !out.status.success() {
                    return Err(io::Error::other(format!(
                        "openssl pkcs12: {}",
                        String::from_utf8_lossy(&out.stderr)
                    )));
                }
            } else {
                openssl(dir, args)?;
            }
        }
        let mut pem = fs::read(dir.join("client.crt"))?;
        pem.extend(fs::read(dir.join("client.key"))?);
        fs::write(dir.join("client.pem"), pem)?;
        Ok(Pki {
            dir: dir.to_owned(),
        })
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    /// The client certificate and its key in one PEM file.
    pub fn client_pem(&self) -> PathBuf {
        self.dir.join("client.pem")
    }
    /// The client certificate and its key as PKCS#12, with [`Pki::PFX_PASSWORD`].
    pub fn client_pfx(&self) -> PathBuf {
        self.dir.join("client.pfx")
    }
}

/// The Python NTLM test DP (`python/ntlm_dp.py`): a content library at
/// `/SMS_DP_SMSPKG$/` on 127.0.0.1 that requires NTLM, as an IIS content
/// site with only Windows authentication does. Needs `python3` with
/// `pyspnego` (`pip install pyspnego`). Killed when dropped.
#[derive(Debug)]
pub struct NtlmDp {
    child: Child,
    port: u16,
    log: PathBuf,
    _temp: tempfile::TempDir,
}

/// The server script, committed beside this crate.
pub const NTLM_DP_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/ntlm_dp.py");

impl NtlmDp {
    /// Serve `lib` to `DOMAIN\user` with `password` (and no one else);
    /// requests whose path contains one of `forbid` get 403 once
    /// authenticated.
    pub fn start(
        lib: &Path,
        domain: &str,
        user: &str,
        password: &str,
        forbid: &[&str],
    ) -> io::Result<NtlmDp> {
        let temp = tempfile::tempdir()?;
        let users = temp.path().join("ntlm-users");
        fs::write(&users, format!("{domain}:{user}:{password}\n"))?;
        let port_file = temp.path().join("port");
        let log = temp.path().join("server.log");
        let mut cmd = Command::new("python3");
        cmd.arg(NTLM_DP_SCRIPT).arg(lib).arg(&port_file);
        for f in forbid {
            cmd.arg("--forbid").arg(f);
        }
        cmd.env("NTLM_USER_FILE", &users);
        NtlmDp::spawn(
            cmd,
            temp,
            port_file,
            log,
            "the NTLM test DP",
            "apt-get install -y python3; pip install pyspnego",
        )
    }

    /// Start the server `cmd` runs, logging to `log`, and wait until it
    /// writes its port to `port_file`; `hint` says what it needs when it
    /// cannot start.
    fn spawn(
        mut cmd: Command,
        temp: tempfile::TempDir,
        port_file: PathBuf,
        log: PathBuf,
        what: &str,
        hint: &str,
    ) -> io::Result<NtlmDp> {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log)?)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("starting {what}: {e} ({hint})")))?;
        let mut dp = NtlmDp {
            child,
            port: 0,
            log,
            _temp: temp,
        };
        for _ in 0..800 {
            if let Ok(p) = fs::read_to_string(&port_file) {
                if let Ok(p) = p.trim().parse() {
                    dp.port = p;
                    return Ok(dp);
                }
            }
            if let Ok(Some(status)) = dp.child.try_wait() {
                return Err(io::Error::other(format!(
                    "{what} exited with {status}: {} ({hint})",
                    dp.log()
                )));
            }
            thread::sleep(Duration::from_millis(25));
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} did not start: {}", dp.log()),
        ))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The DP URL: `http://127.0.0.1:<port>/SMS_DP_SMSPKG$/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/SMS_DP_SMSPKG$/", self.port)
    }

    /// What the server logged: one `auth conn=N user=D\\u` line per
    /// authenticated connection, one `refused conn=N` per failed handshake.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NtlmDp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test SMB DP: Samba's `smbd` (Debian `samba`) in the foreground on
/// 127.0.0.1 and a free port, sharing folders read-only, with its own
/// `smb.conf`, passdb, lock, state, cache and pid folders under a
/// temporary folder, so it touches nothing of the system's Samba. Killed
/// when dropped. Runs as root (tests and CI do), as smbd must to switch to
/// the user of each session.
#[derive(Debug)]
pub struct Samba {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// The unix account test SMB users log on as: smbd maps every SMB account
/// to a unix one, and `daemon` exists on every Debian system, so no test
/// adds users to the system's `/etc/passwd`. Its uid is not 0, so file
/// modes apply to it (root's would not).
pub const SMB_USER: &str = "daemon";

/// The host name of a Kerberos test SMB server ([`Samba::start_kerberos`]):
/// its service principal is `cifs/localhost@`[`KRB_REALM`].
pub const SMB_KRB_HOST: &str = "localhost";

/// A second name of a Kerberos test SMB server (`cifs/capmedia-smb`), for
/// clients that refuse Kerberos with the name `localhost`, as Samba's
/// smbclient does: they connect to 127.0.0.1 and ask for a ticket to this
/// name, which resolves nowhere.
pub const SMB_KRB_ALIAS: &str = "capmedia-smb";

/// The `samba` executable paths, or an error naming the packages.
fn samba_tool(name: &str, pkg: &str) -> io::Result<PathBuf> {
    system_tool(name, pkg, "samba samba-common-bin smbclient")
}

/// `name` in the system's program folders, or an error with the apt-get
/// line for `packages` (the test suite's set) naming its own `pkg`.
fn system_tool(name: &str, pkg: &str, packages: &str) -> io::Result<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .into_iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{name} is not installed: apt-get install -y {packages} (package {pkg})"),
            )
        })
}

impl Samba {
    /// Share each `(name, folder)` read-only, and let [`SMB_USER`] log on
    /// with `password`. Every folder and its parents must be readable by
    /// that user (see [`Samba::open_up`]).
    pub fn start(shares: &[(&str, &Path)], password: &str) -> io::Result<Samba> {
        Samba::start_with(shares, password, "")
    }

    /// [`Samba::start`] with more `[global]` lines (later lines win, and
    /// share options there are every share's default: e.g. `map to guest =
    /// bad user` and `guest ok = yes` for a DP that lets guests read).
    pub fn start_with(shares: &[(&str, &Path)], password: &str, global: &str) -> io::Result<Samba> {
        let dir = tempfile::tempdir()?;
        let (conf_path, port) = Samba::configure_with(dir.path(), shares, password, global)?;
        Samba::spawn(dir, &conf_path, port, &[])
    }

    /// Like [`Samba::start`], and smbd also accepts Kerberos logons for the
    /// realm of `kdc` (SPNEGO offers Kerberos before NTLM). The service
    /// principals `cifs/`[`SMB_KRB_HOST`] and `cifs/`[`SMB_KRB_ALIAS`] are
    /// made in `kdc` (kept if they exist, so several servers can share one
    /// KDC), and their keys written to a keytab only this smbd reads.
    /// smbd maps a ticket's client `name@REALM` to the unix account `name`
    /// (no passdb entry needed): [`SMB_USER`]'s ticket logs on as it, a
    /// principal without a unix account is refused at SESSION_SETUP with
    /// `STATUS_ACCESS_DENIED`. Every session must be signed (`server
    /// signing = mandatory`). Get a user's ticket with [`Kdc::ticket`]; the
    /// share's address for Kerberos is [`Samba::url_by_name`].
    pub fn start_kerberos(
        shares: &[(&str, &Path)],
        password: &str,
        kdc: &Kdc,
    ) -> io::Result<Samba> {
        Samba::start_kerberos_with(shares, password, kdc, "")
    }

    /// [`Samba::start_kerberos`] with more `[global]` lines (e.g. `server
    /// max protocol = SMB3_02`, for a client's SMB 3.0.2 path).
    pub fn start_kerberos_with(
        shares: &[(&str, &Path)],
        password: &str,
        kdc: &Kdc,
        global: &str,
    ) -> io::Result<Samba> {
        let dir = tempfile::tempdir()?;
        let keytab = dir.path().join("cifs.keytab");
        let services: Vec<String> = [SMB_KRB_HOST, SMB_KRB_ALIAS]
            .iter()
            .map(|h| format!("cifs/{h}"))
            .collect();
        for p in &services {
            // Without +no_auth_data_required MIT's KDC (1.20+) puts a PAC in
            // every ticket, and smbd as a standalone server refuses tickets
            // with a PAC ("Unexpected PAC ... in standalone mode",
            // NT_STATUS_BAD_TOKEN_TYPE). addprinc of an existing principal
            // only prints an error: the principal and its key are kept.
            kdc.kadmin(&format!("addprinc -randkey +no_auth_data_required {p}"))?;
        }
        // -norandkey: the keys stay as they are, so the keytab of another
        // server of this KDC stays valid.
        kdc.kadmin(&format!(
            "ktadd -norandkey -k {} {}",
            keytab.display(),
            services.join(" ")
        ))?;
        if !keytab.exists() {
            return Err(io::Error::other(format!(
                "kadmin wrote no keytab for {services:?}: {}",
                kdc.log()
            )));
        }
        // The realm makes smbd offer Kerberos in SPNEGO; the dedicated
        // keytab accepts a ticket for any principal in it. log level 3
        // shows the dialect, the mapped user and why a logon failed, in
        // Samba::log.
        let extra = format!(
            "  realm = {KRB_REALM}\n  kerberos method = dedicated keytab\n  \
             dedicated keytab file = FILE:{}\n  server signing = mandatory\n  log level = 3\n{global}",
            keytab.display()
        );
        let (conf_path, port) = Samba::configure_with(dir.path(), shares, password, &extra)?;
        Samba::spawn(
            dir,
            &conf_path,
            port,
            &[
                ("KRB5_CONFIG", kdc.krb5_conf()),
                // No replay cache under /var/tmp.
                ("KRB5RCACHETYPE", PathBuf::from("none")),
            ],
        )
    }

    fn spawn(
        dir: tempfile::TempDir,
        conf_path: &Path,
        port: u16,
        env: &[(&str, PathBuf)],
    ) -> io::Result<Samba> {
        let smbd = samba_tool("smbd", "samba")?;
        let log = fs::File::create(dir.path().join("stdout.log"))?;
        let child = Command::new(&smbd)
            .args(["--foreground", "--no-process-group", "--debug-stdout"])
            .arg(format!("--configfile={}", conf_path.display()))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("starting {}: {e}", smbd.display())))?;
        let mut samba = Samba { child, port, dir };
        let out_log = samba.dir.path().join("stdout.log");
        wait_listening(port, 800, || {
            let status = samba.child.try_wait().ok()??;
            let log = fs::read_to_string(&out_log).unwrap_or_default();
            Some(format!("smbd exited with {status}: {log}"))
        })?;
        Ok(samba)
    }

    /// Write `dir/smb.conf` (listening on 127.0.0.1 and a free port, state
    /// in `dir`) sharing `shares`, and a passdb where [`SMB_USER`] has
    /// `password`; returns the config's path and the port. For a caller
    /// that runs smbd itself (the bench, as a daemon: its pid file is
    /// `dir/pid/smbd.pid`).
    pub fn configure(
        d: &Path,
        shares: &[(&str, &Path)],
        password: &str,
    ) -> io::Result<(PathBuf, u16)> {
        Samba::configure_with(d, shares, password, "")
    }

    /// [`Samba::configure`] with `extra` lines at the end of `[global]`
    /// (a parameter given twice takes its last value).
    fn configure_with(
        d: &Path,
        shares: &[(&str, &Path)],
        password: &str,
        extra: &str,
    ) -> io::Result<(PathBuf, u16)> {
        let smbpasswd = samba_tool("smbpasswd", "samba-common-bin")?;
        for sub in ["private", "lock", "state", "cache", "pid", "ncalrpc"] {
            fs::create_dir_all(d.join(sub))?;
        }
        let port = free_port()?;
        let dd = d.display();
        let mut conf = format!(
            r#"[global]
  workgroup = TESTDP
  netbios name = CAPMEDIATEST
  server role = standalone server
  passdb backend = tdbsam:{dd}/private/passdb.tdb
  private dir = {dd}/private
  binddns dir = {dd}/private
  lock directory = {dd}/lock
  state directory = {dd}/state
  cache directory = {dd}/cache
  pid directory = {dd}/pid
  ncalrpc dir = {dd}/ncalrpc
  log file = {dd}/smbd.log
  log level = 1
  smb ports = {port}
  interfaces = 127.0.0.1
  bind interfaces only = yes
  disable netbios = yes
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  map to guest = never
  store dos attributes = no
  server min protocol = SMB2_10
  # smbd's default asynchronous reads stay on: a read that takes over
  # 0.5 ms gets an interim STATUS_PENDING answer first, as a busy DP's do.
"#
        );
        conf.push_str(extra);
        for (name, path) in shares {
            let _ = write!(
                conf,
                "[{name}]\n  path = {}\n  read only = yes\n  browseable = no\n",
                path.display()
            );
        }
        let conf_path = d.join("smb.conf");
        fs::write(&conf_path, conf)?;
        let mut pw = Command::new(&smbpasswd)
            .arg("-c")
            .arg(&conf_path)
            .args(["-s", "-a", SMB_USER])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = pw.stdin.take() {
            use std::io::Write as _;
            writeln!(stdin, "{password}\n{password}")?;
        }
        let out = pw.wait_with_output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "smbpasswd -a {SMB_USER}: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok((conf_path, port))
    }

    /// Make `path` and every folder above it searchable (and `path`'s tree
    /// readable) by [`SMB_USER`]: temporary folders are created mode 0700.
    pub fn open_up(path: &Path) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let mut p = Some(path);
        while let Some(dir) = p {
            if let Ok(m) = fs::metadata(dir) {
                let mode = m.permissions().mode();
                if mode & 0o005 != 0o005 {
                    fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o005))?;
                }
            }
            p = dir.parent();
        }
        fn walk(dir: &Path) -> io::Result<()> {
            for e in fs::read_dir(dir)? {
                let e = e?;
                let m = e.metadata()?;
                let mode = m.permissions().mode();
                let want = if m.is_dir() { 0o005 } else { 0o004 };
                if mode & want != want {
                    fs::set_permissions(e.path(), fs::Permissions::from_mode(mode | want))?;
                }
                if m.is_dir() {
                    walk(&e.path())?;
                }
            }
            Ok(())
        }
        walk(path)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smb://127.0.0.1:<port>/<share>`.
    pub fn url(&self, share: &str) -> String {
        format!("smb://127.0.0.1:{}/{share}", self.port)
    }

    /// `smb://localhost:<port>/<share>`, for Kerberos: the client asks
    /// for a ticket to `cifs/localhost` (GSSAPI `cifs@localhost`), which
    /// it cannot for an address. `localhost` is 127.0.0.1 only on the test
    /// machines (smbd does not listen on ::1).
    pub fn url_by_name(&self, share: &str) -> String {
        format!("smb://{SMB_KRB_HOST}:{}/{share}", self.port)
    }

    /// A client `smb.conf` in this server's folder (its cache, lock, state
    /// and private folders there too), for `smbclient -s`: so that Samba's
    /// client reads nothing of the system's Samba.
    pub fn smbclient_conf(&self) -> io::Result<PathBuf> {
        let d = self.dir.path().join("client");
        for sub in ["cache", "lock", "state", "private"] {
            fs::create_dir_all(d.join(sub))?;
        }
        let dd = d.display();
        let conf = d.join("smb.conf");
        fs::write(
            &conf,
            format!(
                "[global]\n  client min protocol = SMB2_10\n  cache directory = {dd}/cache\n  \
                 lock directory = {dd}/lock\n  state directory = {dd}/state\n  \
                 private dir = {dd}/private\n"
            ),
        )?;
        Ok(conf)
    }

    /// Run Samba's `smbclient` (Debian `smbclient`) on `share` with
    /// Kerberos only (`--use-kerberos=required`), the tickets in `ccache`
    /// and `kdc`'s configuration, and run `commands` (`-c`), e.g. `ls`.
    /// smbclient will not use Kerberos with the name `localhost` (nor an
    /// address), so it asks for `cifs/`[`SMB_KRB_ALIAS`] and connects to
    /// 127.0.0.1 (`-I`). A client `smb.conf` in this server's folder keeps
    /// it from reading the system's. Returns its exit status, stdout and
    /// stderr; its `-d3` log says the dialect and signing.
    pub fn smbclient_kerberos(
        &self,
        kdc: &Kdc,
        ccache: &Path,
        share: &str,
        commands: &str,
    ) -> io::Result<std::process::Output> {
        let smbclient = samba_tool("smbclient", "smbclient")?;
        let conf = self.smbclient_conf()?;
        Command::new(smbclient)
            .arg("-s")
            .arg(&conf)
            .arg(format!("//{SMB_KRB_ALIAS}/{share}"))
            .args(["-I", "127.0.0.1", "-p", &self.port.to_string()])
            // -N: no password prompt (there is no terminal to read it).
            .args(["-N", "--use-kerberos=required", "-d3", "-c", commands])
            .env("KRB5_CONFIG", kdc.krb5_conf())
            .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
            .env("KRB5RCACHETYPE", "none")
            .stdin(Stdio::null())
            .output()
    }

    /// The smbd log so far, for a failing test's message.
    pub fn log(&self) -> String {
        let d = self.dir.path();
        fs::read_to_string(d.join("stdout.log")).unwrap_or_default()
            + &fs::read_to_string(d.join("smbd.log")).unwrap_or_default()
    }
}

impl Drop for Samba {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The realm of every test KDC.
pub const KRB_REALM: &str = "TEST.CAPMEDIA";

/// An MIT Kerberos KDC (`krb5kdc`, Debian `krb5-kdc`) on 127.0.0.1 and a
/// free port, with its database, stash, `kdc.conf` and a client
/// `krb5.conf` under a temporary folder: nothing of the system's Kerberos
/// is read or written (callers give [`Kdc::env`] to every Kerberos
/// program). Principals get random keys and keytabs, so no password is
/// typed anywhere. Killed when dropped.
#[derive(Debug)]
pub struct Kdc {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// The environment of a Kerberos program run for the realm in `dir`.
fn krb_env(dir: &Path, cmd: &mut Command) {
    cmd.env("KRB5_CONFIG", dir.join("krb5.conf"))
        .env("KRB5_KDC_PROFILE", dir.join("kdc.conf"))
        // No replay cache under /var/tmp.
        .env("KRB5RCACHETYPE", "none");
}

/// A Kerberos program, or an error naming the Debian package.
fn krb_tool(name: &str, pkg: &str) -> io::Result<PathBuf> {
    system_tool(
        name,
        pkg,
        "krb5-kdc krb5-admin-server krb5-user python3-gssapi",
    )
}

fn run_tool(mut cmd: Command, what: &str) -> io::Result<String> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Kdc {
    /// Create the realm [`KRB_REALM`] and start its KDC.
    pub fn start() -> io::Result<Kdc> {
        let krb5kdc = krb_tool("krb5kdc", "krb5-kdc")?;
        let kdb5_util = krb_tool("kdb5_util", "krb5-kdc")?;
        krb_tool("kadmin.local", "krb5-admin-server")?;
        krb_tool("kinit", "krb5-user")?;
        let dir = tempfile::tempdir()?;
        let d = dir.path().display().to_string();
        // UDP and TCP on one port: the client prefers UDP for small
        // requests; the port is free for TCP when asked, and UDP ports are
        // a separate space that is all but empty on 127.0.0.1.
        let port = free_port()?;
        fs::write(
            dir.path().join("kdc.conf"),
            format!(
                "[kdcdefaults]\n kdc_listen = 127.0.0.1:{port}\n kdc_tcp_listen = 127.0.0.1:{port}\n\
                 [realms]\n {KRB_REALM} = {{\n  database_name = {d}/principal\n  \
                 key_stash_file = {d}/stash\n  acl_file = {d}/kadm5.acl\n  \
                 supported_enctypes = aes256-cts-hmac-sha1-96:normal\n  max_life = 1h\n }}\n\
                 [logging]\n kdc = FILE:{d}/kdc.log\n"
            ),
        )?;
        fs::write(dir.path().join("kadm5.acl"), "")?;
        fs::write(dir.path().join("krb5.conf"), Self::client_conf(port))?;
        let mut cmd = Command::new(&kdb5_util);
        cmd.args([
            "create",
            "-s",
            "-r",
            KRB_REALM,
            "-P",
            "capmedia-test-master-key",
        ]);
        krb_env(dir.path(), &mut cmd);
        run_tool(cmd, "kdb5_util create")?;
        let mut cmd = Command::new(&krb5kdc);
        cmd.args(["-n", "-r", KRB_REALM]);
        krb_env(dir.path(), &mut cmd);
        let err = dir.path().join("krb5kdc.err");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&err)?)
            .spawn()?;
        let mut kdc = Kdc { child, port, dir };
        let mut child_gone = || -> Option<String> {
            match kdc.child.try_wait() {
                Ok(Some(s)) => Some(format!(
                    "krb5kdc exited with {s}: {}",
                    fs::read_to_string(&err).unwrap_or_default()
                )),
                _ => None,
            }
        };
        wait_listening(port, 400, &mut child_gone)?;
        Ok(kdc)
    }

    /// A client `krb5.conf` for the realm with its KDC at `port`: no DNS,
    /// host names as given (the SPN of `http://127.0.0.1:N/` is
    /// `HTTP/127.0.0.1`).
    fn client_conf(port: u16) -> String {
        format!(
            "[libdefaults]\n default_realm = {KRB_REALM}\n dns_lookup_kdc = false\n \
             dns_lookup_realm = false\n dns_canonicalize_hostname = false\n rdns = false\n \
             udp_preference_limit = 0\n\
             [realms]\n {KRB_REALM} = {{\n  kdc = 127.0.0.1:{port}\n }}\n\
             [domain_realm]\n 127.0.0.1 = {KRB_REALM}\n localhost = {KRB_REALM}\n"
        )
    }

    /// A `krb5.conf` like the KDC's own but pointing at `port`, where no
    /// KDC listens (for "KDC unreachable").
    pub fn unreachable_conf(&self, port: u16) -> io::Result<PathBuf> {
        let p = self.dir.path().join(format!("krb5-{port}.conf"));
        fs::write(&p, Self::client_conf(port))?;
        Ok(p)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The client configuration file (`KRB5_CONFIG`).
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.path().join("krb5.conf")
    }

    /// The environment every Kerberos program (and capmedia) gets.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("KRB5_CONFIG", self.krb5_conf()),
            ("KRB5_KDC_PROFILE", self.dir.path().join("kdc.conf")),
        ]
    }

    fn env_into(&self, mut cmd: Command) -> Command {
        krb_env(self.dir.path(), &mut cmd);
        cmd
    }

    fn kadmin(&self, query: &str) -> io::Result<String> {
        let mut cmd = Command::new(krb_tool("kadmin.local", "krb5-admin-server")?);
        cmd.args(["-r", KRB_REALM, "-q", query]);
        run_tool(self.env_into(cmd), &format!("kadmin.local -q {query:?}"))
    }

    /// Add `principal` (`alice`, `HTTP/127.0.0.1`) with a random key, and
    /// write its keytab; returns the keytab's path.
    pub fn add_principal(&self, principal: &str) -> io::Result<PathBuf> {
        let keytab = self
            .dir
            .path()
            .join(format!("{}.keytab", principal.replace('/', "_")));
        self.kadmin(&format!("addprinc -randkey {principal}"))?;
        self.kadmin(&format!("ktadd -k {} {principal}", keytab.display()))?;
        Ok(keytab)
    }

    pub fn delete_principal(&self, principal: &str) -> io::Result<()> {
        self.kadmin(&format!("delprinc -force {principal}"))
            .map(|_| ())
    }

    /// `kinit` `principal` from its keytab into the cache file `ccache`.
    pub fn kinit(&self, principal: &str, keytab: &Path, ccache: &Path) -> io::Result<()> {
        let mut cmd = Command::new(krb_tool("kinit", "krb5-user")?);
        cmd.arg("-k")
            .arg("-t")
            .arg(keytab)
            .arg("-c")
            .arg(format!("FILE:{}", ccache.display()))
            .arg(principal);
        run_tool(self.env_into(cmd), "kinit").map(|_| ())
    }

    /// Make `principal` (`daemon`) if it does not exist and get its
    /// ticket-granting ticket into a cache file of its own; returns the
    /// cache's path (give it as `KRB5CCNAME=FILE:<path>`).
    pub fn ticket(&self, principal: &str) -> io::Result<PathBuf> {
        let keytab = self
            .dir
            .path()
            .join(format!("{}.keytab", principal.replace('/', "_")));
        // addprinc of an existing principal only prints an error; ktadd
        // -norandkey keeps its key, so earlier tickets stay valid.
        self.kadmin(&format!("addprinc -randkey {principal}"))?;
        self.kadmin(&format!(
            "ktadd -norandkey -k {} {principal}",
            keytab.display()
        ))?;
        let ccache = self
            .dir
            .path()
            .join(format!("{}.ccache", principal.replace('/', "_")));
        self.kinit(principal, &keytab, &ccache)?;
        Ok(ccache)
    }

    /// What the KDC logged (tickets issued, errors).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("kdc.log")).unwrap_or_default()
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's own Python, where `python3-gssapi` installs (a `python3`
/// earlier on PATH, e.g. pyenv's, would not see it).
pub const DEBIAN_PYTHON: &str = "/usr/bin/python3";

impl NtlmDp {
    /// The test DP in Kerberos mode (`--kerberos`): `Negotiate` only,
    /// accepted with the service key in `keytab` for the realm of `kdc`.
    /// Needs Debian's `python3-gssapi`.
    pub fn start_kerberos(lib: &Path, kdc: &Kdc, keytab: &Path) -> io::Result<NtlmDp> {
        let temp = tempfile::tempdir()?;
        let port_file = temp.path().join("port");
        let log = temp.path().join("server.log");
        let mut cmd = Command::new(DEBIAN_PYTHON);
        cmd.arg(NTLM_DP_SCRIPT)
            .arg(lib)
            .arg(&port_file)
            .arg("--kerberos")
            .env("KRB5_KTNAME", keytab)
            .env("KRB5RCACHETYPE", "none");
        for (k, v) in kdc.env() {
            cmd.env(k, v);
        }
        NtlmDp::spawn(
            cmd,
            temp,
            port_file,
            log,
            "the Kerberos test DP",
            "it needs Debian's python3 and python3-gssapi: apt-get install -y python3 python3-gssapi",
        )
    }
}
