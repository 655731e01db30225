//! A test DP: nginx (Debian package `nginx-light`) serving a content
//! library at `/SMS_DP_SMSPKG$/` on 127.0.0.1 with autoindex, as a real DP's
//! IIS serves it, with its own config, pid file, logs and temp folders, so
//! it needs no root and touches nothing of the system's nginx.
//!
//! The dp crate's HTTP tests, the CLI's end-to-end tests and the benchmark
//! rows all use it: [`Nginx::start`] runs it as a child that stops when
//! dropped; [`Config`] alone gives the configuration for a caller that runs
//! nginx as a daemon (the benchmark harness stops it by pid file).

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
        let bin = nginx_binary()?;
        let port = free_port()?;
        let conf = Config {
            dir,
            lib,
            port,
            tls,
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
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
