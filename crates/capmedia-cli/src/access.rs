//! How a command reaches a DP: the options every DP-reading command shares
//! (`capture`, `dp list`, the wizard), and where the password comes from.
//!
//! A password never comes from argv (other users see it in `ps`): it is
//! read from `CAPMEDIA_DP_PASSWORD`, from `--dp-password-file`, or asked on
//! the terminal, in that order, and goes straight into a
//! [`capmedia_dp::Secret`].
//!
//! Kerberos needs no password at all: for an http(s):// DP that offers
//! `Negotiate`, the ticket in the user's cache (`kinit`; `KRB5CCNAME` or
//! krb5.conf's default) is used, the cache's default principal without
//! `--dp-user`, or the principal of `--dp-user user@REALM` (no password is
//! asked for when the cache holds its ticket). `--dp-no-kerberos` turns it
//! off.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use capmedia_dp::{Account, ClientCert, Credentials, DpOptions, Secret};

/// The environment variable a DP password may come from.
pub const PASSWORD_ENV: &str = "CAPMEDIA_DP_PASSWORD";
/// The environment variable a PKCS#12 client certificate's password may come from.
pub const CERT_PASSWORD_ENV: &str = "CAPMEDIA_DP_CERT_PASSWORD";

#[derive(Debug, Clone, Default, clap::Args)]
pub struct DpAccess {
    /// A CA certificate file (PEM) for an https:// DP.
    #[arg(long, value_name = "FILE")]
    pub dp_ca_file: Option<PathBuf>,
    /// The Windows account to read the DP as: DOMAIN\user, user@REALM or
    /// user. Its password comes from CAPMEDIA_DP_PASSWORD, --dp-password-file
    /// or a prompt on the terminal, never from the command line. For an
    /// http(s):// DP, user@REALM with a Kerberos ticket in the cache (kinit)
    /// needs no password; without --dp-user, the cache's ticket is used
    /// when the DP offers Negotiate.
    #[arg(long, value_name = "ACCOUNT")]
    pub dp_user: Option<String>,
    /// Never use a Kerberos ticket from the cache (NTLM with --dp-user only).
    #[arg(long)]
    pub dp_no_kerberos: bool,
    /// A file whose first line is the password of --dp-user (keep it mode 600).
    #[arg(long, value_name = "FILE")]
    pub dp_password_file: Option<PathBuf>,
    /// A PKI client certificate for an https:// DP that requires one: PEM
    /// (certificate and key in one file) or PKCS#12 (.pfx/.p12; its password
    /// from CAPMEDIA_DP_CERT_PASSWORD or a prompt).
    #[arg(long, value_name = "FILE")]
    pub dp_client_cert: Option<PathBuf>,
}

impl DpAccess {
    /// `base` with this access filled in: the account and its password (read
    /// now, so that a missing password fails before anything else happens),
    /// the CA file and the client certificate.
    pub fn options(&self, dp: &str, base: DpOptions) -> anyhow::Result<DpOptions> {
        let mut opts = base;
        opts.kerberos = !self.dp_no_kerberos;
        opts.ca_file = self.dp_ca_file.clone();
        // Retries of a connection (an SMB DP that does not answer) show as
        // they happen, on stderr like the progress lines.
        opts.on_retry = Some(capmedia_dp::RetryNotice(Arc::new(|line: &str| {
            eprintln!("capmedia: {line}");
        })));
        if let Some(user) = &self.dp_user {
            let account = Account::parse(user)?;
            if let Some(principal) = self.kerberos_principal(dp, &account) {
                opts.kerberos_principal = Some(principal);
                return self.client_cert(opts);
            }
            let password = self.password(&account)?;
            opts.credentials = Some(Arc::new(Credentials { account, password }));
        } else if self.dp_password_file.is_some() {
            anyhow::bail!("--dp-password-file needs --dp-user: whose password is it?");
        }
        self.client_cert(opts)
    }

    /// `user@REALM`, when no password was given and the ticket cache
    /// holds a valid ticket of that principal: Kerberos then, and no
    /// password asked for.
    fn kerberos_principal(&self, dp: &str, account: &Account) -> Option<String> {
        if self.dp_no_kerberos || self.dp_password_file.is_some() {
            return None;
        }
        kerberos_ticket(dp, account)
    }

    fn client_cert(&self, mut opts: DpOptions) -> anyhow::Result<DpOptions> {
        if let Some(file) = &self.dp_client_cert {
            let password = if is_pkcs12(file) {
                Some(match std::env::var(CERT_PASSWORD_ENV) {
                    Ok(p) => Secret::new(p),
                    Err(_) => prompt(&format!("password of {}", file.display()))?,
                })
            } else {
                None
            };
            opts.client_cert = Some(Arc::new(ClientCert {
                file: file.clone(),
                password,
            }));
        }
        Ok(opts)
    }

    fn password(&self, account: &Account) -> anyhow::Result<Secret> {
        if let Ok(p) = std::env::var(PASSWORD_ENV) {
            return Ok(Secret::new(p));
        }
        if let Some(file) = &self.dp_password_file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading the password file {}", file.display()))?;
            let line = text.lines().next().unwrap_or_default();
            return Ok(Secret::new(line.to_owned()));
        }
        prompt(&format!("password of {account}")).with_context(|| {
            let kinit = if account.upn {
                format!(" (or get a Kerberos ticket with kinit {account})")
            } else {
                String::new()
            };
            format!("--dp-user {account} needs a password: set {PASSWORD_ENV}, give --dp-password-file, or run on a terminal{kinit}")
        })
    }
}

/// The principal of `account` when Kerberos can stand in for its password
/// on `dp`: a DP reached over the network (http(s)://, smb:// or
/// `\\server\share`), a `user@REALM` account, no password set in the
/// environment (a password given is a password meant), and a valid ticket
/// of it in the cache. The capture and the wizard decide alike through
/// this.
pub fn kerberos_ticket(dp: &str, account: &Account) -> Option<String> {
    let lower = dp.to_ascii_lowercase();
    let remote = ["http://", "https://", "smb://"]
        .iter()
        .any(|p| lower.starts_with(p))
        || dp.starts_with("\\\\");
    if !remote || !account.upn || std::env::var_os(PASSWORD_ENV).is_some() {
        return None;
    }
    let principal = account.to_string();
    capmedia_gssapi::have_ticket(Some(&principal)).ok()?;
    Some(principal)
}

fn is_pkcs12(file: &std::path::Path) -> bool {
    file.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("pfx") || e.eq_ignore_ascii_case("p12"))
}

/// Ask on the terminal without echo; refused when there is no terminal, so
/// a script never hangs on a prompt.
fn prompt(what: &str) -> anyhow::Result<Secret> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        anyhow::bail!("no terminal to ask the {what} on");
    }
    let p = rpassword::prompt_password(format!("{what}: "))
        .with_context(|| format!("reading the {what}"))?;
    Ok(Secret::new(p))
}
