//! Who capmedia is when it reads a DP: a Windows account and its password,
//! and a PKI client certificate for HTTPS.
//!
//! These types exist so that a secret has exactly one shape in the
//! workspace: [`Secret`] never prints itself (`Debug` and `Display` show
//! `***`), is never serialised, and wipes its bytes when dropped. The CLI
//! fills it from `CAPMEDIA_DP_PASSWORD`, `--dp-password-file` or a terminal
//! prompt, never from argv; the backends (SMB, HTTP Negotiate/NTLM) read
//! it with [`Secret::expose`] at the one place they hand it to the
//! authentication library.

use std::fmt;
use std::path::PathBuf;

use zeroize::Zeroizing;

/// A password or key passphrase. No `Clone` on purpose: a secret is moved
/// to where it is used, not copied around.
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(Zeroizing::new(s))
    }

    /// The secret itself, for the authentication library and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A Windows account as an administrator writes it: `DOMAIN\user`,
/// `user@REALM` or a bare `user` (local to the server).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Account {
    /// The user name alone.
    pub user: String,
    /// The NetBIOS domain (`DOMAIN\user`) or the realm (`user@REALM`);
    /// empty for a bare user name.
    pub domain: String,
    /// Whether it was written `user@REALM` (Kerberos style).
    pub upn: bool,
}

/// Why an account name cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("account {given:?}: {reason} (write DOMAIN\\user, user@REALM or user)")]
pub struct AccountError {
    pub given: String,
    pub reason: &'static str,
}

impl Account {
    pub fn parse(s: &str) -> Result<Account, AccountError> {
        let err = |reason| AccountError {
            given: s.to_owned(),
            reason,
        };
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        if s.chars().any(|c| c.is_control()) {
            return Err(err("it holds a control character"));
        }
        let (user, domain, upn) = if let Some((d, u)) = s.split_once('\\') {
            (u, d, false)
        } else if let Some((u, r)) = s.rsplit_once('@') {
            (u, r, true)
        } else {
            (s, "", false)
        };
        if user.is_empty() {
            return Err(err("the user name is empty"));
        }
        if user.contains(['\\', '/']) || domain.contains(['\\', '/']) {
            return Err(err("it holds more than one separator"));
        }
        if (upn || s.contains('\\')) && domain.is_empty() {
            return Err(err("the domain is empty"));
        }
        Ok(Account {
            user: user.to_owned(),
            domain: domain.to_owned(),
            upn,
        })
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.domain.is_empty(), self.upn) {
            (true, _) => f.write_str(&self.user),
            (false, true) => write!(f, "{}@{}", self.user, self.domain),
            (false, false) => write!(f, "{}\\{}", self.domain, self.user),
        }
    }
}

/// An account with its password, for SMB and for HTTP Negotiate/NTLM.
#[derive(Debug)]
pub struct Credentials {
    pub account: Account,
    pub password: Secret,
}

/// A PKI client certificate for HTTPS DPs that require client
/// authentication: a PEM file holding the certificate (chain) and its
/// private key, or a PKCS#12 file (`.pfx`/`.p12`) with its password.
#[derive(Debug)]
pub struct ClientCert {
    pub file: PathBuf,
    /// The PKCS#12 password, when the file is one and has a password.
    pub password: Option<Secret>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_parse_in_the_three_windows_spellings() {
        let a = Account::parse("CONTOSO\\cmadmin").unwrap();
        assert_eq!(
            (a.user.as_str(), a.domain.as_str(), a.upn),
            ("cmadmin", "CONTOSO", false)
        );
        assert_eq!(a.to_string(), "CONTOSO\\cmadmin");
        let a = Account::parse("cmadmin@CONTOSO.COM").unwrap();
        assert_eq!(
            (a.user.as_str(), a.domain.as_str(), a.upn),
            ("cmadmin", "CONTOSO.COM", true)
        );
        let a = Account::parse("local").unwrap();
        assert_eq!(a.to_string(), "local");
        for bad in ["", "\\u", "d\\", "u@", "a\\b\\c", "a\nb"] {
            assert!(Account::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_secret_never_prints_itself() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        let c = Credentials {
            account: Account::parse("D\\u").unwrap(),
            password: s,
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.password.expose(), "hunter2");
    }
}
