//! The HTTP backend against a real nginx (Debian package `nginx-light`)
//! serving a built library with autoindex, started and stopped by the test.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use capmedia_content::PackageKind;
use capmedia_dp::{boot_wim, ContentCache, Dp, DpError};
use common::*;

struct Nginx {
    child: Child,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> String {
    for p in ["/usr/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(p).exists() {
            return p.to_owned();
        }
    }
    panic!(
        "nginx is not installed: this test needs the Debian package nginx-light \
         (apt-get install -y nginx-light)"
    );
}

/// Start nginx serving `lib` at `/SMS_DP_SMSPKG$/` with its own config, pid
/// and logs in `dir`.
fn start_nginx(dir: &Path, lib: &Path) -> Nginx {
    let bin = nginx_binary();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = dir.display();
    let conf = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        location /SMS_DP_SMSPKG$/ {{
            alias {lib}/;
            autoindex on;
        }}
    }}
}}
"#,
        lib = lib.display()
    );
    let conf_path = dir.join("nginx.conf");
    fs::write(&conf_path, conf).unwrap();
    let child = Command::new(&bin)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {bin} (Debian package nginx-light): {e}"));
    let mut nginx = Nginx { child, port };
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return nginx;
        }
        if let Some(status) = nginx.child.try_wait().unwrap() {
            let log = fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            panic!("nginx exited with {status}: {log}");
        }
        thread::sleep(Duration::from_millis(25));
    }
    let _ = nginx.child.kill();
    panic!("nginx did not start listening on port {port}");
}

#[test]
fn nginx_autoindex_serves_the_same_library() {
    let fx = fixture(false);
    let ng_dir = fx.dir.path().join("nginx");
    fs::create_dir_all(&ng_dir).unwrap();
    let ng = start_nginx(&ng_dir, &fx.lib);
    let url = format!("http://127.0.0.1:{}/SMS_DP_SMSPKG$/", ng.port);
    let dp = Dp::open(&url, quick_opts()).unwrap();

    let list = dp.list_packages().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0].kind, PackageKind::BootImage);
    assert_eq!(list[0].size, 405_000);
    assert_eq!(list[1].files, 3);

    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    for (pkg, files) in [(BOOT, 4), (OTHER, 3)] {
        let c = dp.resolve(&pid(pkg)).unwrap();
        assert_eq!(c.files.len(), files);
        let fetched = dp.fetch(&c, &cache, &|_, _| {}).unwrap();
        for f in fetched {
            assert_eq!(
                fs::read(&f.local).unwrap(),
                fx.read_src(pkg, f.path.as_str()),
                "{}",
                f.path
            );
        }
    }
    let c = dp.resolve(&pid(BOOT)).unwrap();
    let wim = boot_wim(&c).unwrap();
    assert_eq!(
        dp.read_head(&c, wim, 208).unwrap(),
        fx.read_src(BOOT, &format!("boot.{BOOT}.wim"))[..208]
    );

    // A blob removed from FileLib is found missing before any fetch.
    let h = sha256_hex(&fx.read_src(OTHER, "install.cmd"));
    fs::remove_file(blob_path(&fx, &h)).unwrap();
    let err = dp.resolve(&pid(OTHER)).unwrap_err();
    assert!(matches!(err, DpError::Incomplete { .. }), "{err}");
    assert!(err.to_string().contains("install.cmd") && err.to_string().contains(&url));
    let err = dp.resolve(&pid("PS1000FF")).unwrap_err();
    assert!(matches!(err, DpError::NotDistributed { .. }), "{err}");
    drop(ng);
}
