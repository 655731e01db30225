use std::io;
use std::path::PathBuf;

use capmedia_content::PackageId;

/// Everything that can stop capmedia from reading a DP's content.
///
/// Every variant names the DP (`dp`: the path or URL given) and the package
/// or file concerned, because the message is what an administrator acts on,
/// often without a log to go with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DpError {
    #[error("cannot use {location:?} as a distribution point: {reason}")]
    BadLocation { location: String, reason: String },

    #[error(
        "DP {dp}: no Read access to {what} ({detail}); the content library needs Read access \
         for the account running capmedia"
    )]
    NoReadAccess {
        dp: String,
        what: String,
        detail: String,
    },

    /// HTTP 401: the DP wants credentials capmedia was not given, or
    /// offers only schemes it does not speak (`offered` lists them).
    #[error("{}", auth_required_text(dp, what, offered, account.as_deref(), kerberos.as_deref()))]
    AuthRequired {
        dp: String,
        what: String,
        /// The schemes of the 401's `WWW-Authenticate` headers.
        offered: String,
        /// The account given, if one was.
        account: Option<String>,
        /// Why Kerberos from the ticket cache could not be used (no
        /// ticket, no Kerberos library), where it was tried.
        kerberos: Option<String>,
    },

    /// Kerberos from the ticket cache was tried and failed for a named
    /// cause (expired ticket, KDC unreachable, no SPN for the DP, ticket
    /// refused), and no password for NTLM was given.
    #[error(
        "DP {dp}: Kerberos authentication failed while reading {what}: {detail}; or give \
         --dp-user DOMAIN\\user with its password (CAPMEDIA_DP_PASSWORD, --dp-password-file \
         or the prompt) to use NTLM"
    )]
    Kerberos {
        dp: String,
        what: String,
        detail: String,
    },

    /// The HTTPS DP requires a TLS client certificate and none was given.
    #[error(
        "DP {dp}: {what}: the DP requires a PKI client certificate ({detail}); give it with \
         --dp-client-cert FILE (PEM certificate and key, or PKCS#12 .pfx/.p12)"
    )]
    ClientCertRequired {
        dp: String,
        what: String,
        detail: String,
    },

    /// The HTTPS DP refused the client certificate given.
    #[error(
        "DP {dp}: {what}: the DP refused the client certificate {} ({detail}): it must be \
         issued by a CA the DP trusts for client authentication, and be valid now",
        file.display()
    )]
    ClientCertRefused {
        dp: String,
        what: String,
        file: PathBuf,
        detail: String,
    },

    #[error("DP {dp}: package {package} is not distributed to this DP: {detail}")]
    NotDistributed {
        dp: String,
        package: PackageId,
        detail: String,
    },

    /// The location answers but holds no `PkgLib`: a web server or folder
    /// that is not a content library (e.g. the site's root, not its
    /// `SMS_DP_SMSPKG$`).
    #[error(
        "DP {dp}: no PkgLib at {location}: is this the SMS_DP_SMSPKG$ endpoint? \
         (a DP's content web site is http(s)://SERVER/SMS_DP_SMSPKG$/; a share path is \
         its SCCMContentLib folder)"
    )]
    NoPkgLib { dp: String, location: String },

    #[error(
        "DP {dp}: content of package {package} is incomplete: DataLib names {file} \
         (SHA-256 {sha256}) but {detail}"
    )]
    Incomplete {
        dp: String,
        package: PackageId,
        file: String,
        sha256: String,
        detail: String,
    },

    #[error(
        "DP {dp}: {file} of package {package} failed SHA-256 verification twice \
         (expected {expected}, got {actual}); refusing it"
    )]
    HashMismatch {
        dp: String,
        package: PackageId,
        file: String,
        expected: String,
        actual: String,
    },

    #[error(
        "DP {dp}: {file} of package {package} failed SHA-256 verification as it was \
         streamed to the medium (expected {expected}, got {actual}); the medium was not \
         committed"
    )]
    StreamMismatch {
        dp: String,
        package: PackageId,
        file: String,
        expected: String,
        actual: String,
    },

    #[error("DP {dp}: malformed INI {file}{}: {reason}", line_suffix(*.line))]
    MalformedIni {
        dp: String,
        file: String,
        line: Option<usize>,
        reason: String,
    },

    #[error("DP {dp}: refusing the entry {name:?} in {location}: {reason} (never followed)")]
    UnsafeName {
        dp: String,
        location: String,
        name: String,
        reason: String,
    },

    #[error("DP {dp}: {what}: HTTP status {status} from {url}")]
    HttpStatus {
        dp: String,
        what: String,
        status: u16,
        url: String,
    },

    #[error("DP {dp}: {what}: {detail} (gave up after {attempts} attempts)")]
    Transfer {
        dp: String,
        what: String,
        detail: String,
        attempts: u32,
    },

    /// A failure retrying will not cure (TLS, name resolution, oversized
    /// answer, ...).
    #[error("DP {dp}: {what}: {detail}")]
    Request {
        dp: String,
        what: String,
        detail: String,
    },

    #[error("DP {dp}: {what}: {source}")]
    Io {
        dp: String,
        what: String,
        #[source]
        source: io::Error,
    },

    /// The local cache failed (full, read-only, ...): `path` is the file
    /// or folder concerned, `what` the file of which package was being
    /// written, or what was being done.
    #[error("content cache {}: {what}: {source}", path.display())]
    Cache {
        path: PathBuf,
        what: String,
        #[source]
        source: io::Error,
    },

    #[error("fetch cancelled")]
    Cancelled,

    /// The server refused the account: wrong password, unknown or
    /// disabled account, or (without credentials) no guest access.
    #[error(
        "DP {dp}: logon as {account} refused while reading {what} ({detail}): wrong \
         password, or the account is unknown, disabled or locked out; check the account \
         (--dp-user DOMAIN\\user) and its password (CAPMEDIA_DP_PASSWORD, \
         --dp-password-file or the prompt)"
    )]
    LogonFailed {
        dp: String,
        account: String,
        what: String,
        detail: String,
    },

    /// The SMB server has no such share (or hides it from the account).
    #[error(
        "DP {dp}: the server has no share {share} (while reading {what} as {account}); give \
         the content library share, e.g. smb://dp01/SCCMContentLib$"
    )]
    ShareNotFound {
        dp: String,
        share: String,
        what: String,
        account: String,
    },

    /// The server did not answer a connection, after every retry.
    #[error(
        "DP {dp}: server {server} not reachable while reading {what}: {detail} (gave up \
         after {attempts} attempts)"
    )]
    Unreachable {
        dp: String,
        server: String,
        what: String,
        detail: String,
        attempts: u32,
    },
}

fn auth_required_text(
    dp: &str,
    what: &str,
    offered: &str,
    account: Option<&str>,
    kerberos: Option<&str>,
) -> String {
    if let Some(k) = kerberos {
        return format!(
            "DP {dp}: HTTP 401 for {what}: the DP wants Windows authentication (it offers \
             {offered}) and Kerberos cannot be used: {k}; or give the account to read it as \
             with --dp-user DOMAIN\\user (its password from CAPMEDIA_DP_PASSWORD, \
             --dp-password-file or the prompt) for NTLM, or a PKI client certificate with \
             --dp-client-cert where the DP's HTTPS site takes one"
        );
    }
    match account {
        None => format!(
            "DP {dp}: HTTP 401 for {what}: the DP wants Windows authentication (it offers \
             {offered}); give the account to read it as with --dp-user DOMAIN\\user (its \
             password from CAPMEDIA_DP_PASSWORD, --dp-password-file or the prompt), or a PKI \
             client certificate with --dp-client-cert where the DP's HTTPS site takes one"
        ),
        Some(account) => format!(
            "DP {dp}: HTTP 401 for {what} as account {account}: the DP offers {offered}, and \
             capmedia speaks NTLM (also under Negotiate) and Kerberos (Negotiate, from a \
             ticket cache: kinit, and --dp-user user@REALM or no --dp-user); enable Windows \
             authentication on the DP's content web site, or use its SCCMContentLib$ share"
        ),
    }
}

fn line_suffix(line: Option<usize>) -> String {
    line.map(|l| format!(" line {l}")).unwrap_or_default()
}

/// What a backend says about one request, before the DP layer adds the
/// package and file it was for.
#[derive(Debug)]
pub(crate) enum BackendError {
    NotFound,
    /// EACCES or HTTP 403.
    Denied(String),
    /// HTTP 401: the schemes offered, the account tried, if any, and why
    /// Kerberos could not be used, where it was tried.
    AuthRequired {
        offered: String,
        account: Option<String>,
        kerberos: Option<String>,
    },
    /// Kerberos failed for a named cause (see [`DpError::Kerberos`]).
    Kerberos(String),
    /// The TLS handshake or the DP refused the connection for want of a
    /// client certificate (`file`: `None`), or refused the one given.
    ClientCert {
        file: Option<PathBuf>,
        detail: String,
    },
    /// A status that retrying will not change, and the URL that gave it.
    Status(u16, String),
    /// The source ends before the byte asked for (HTTP 416 to a resume).
    Short(String),
    /// 5xx, reset, timeout, truncated body: worth another try.
    Transient(String),
    /// A local I/O error other than the above.
    Io(io::Error),
    /// A listing entry that must not be followed.
    Unsafe {
        name: String,
        reason: String,
    },
    /// Anything else (TLS failure, bad URL, ...), not worth retrying.
    Other(String),
    /// The server refused the account (SMB session setup, or HTTP 401
    /// after a complete handshake).
    Logon {
        account: String,
        detail: String,
    },
    /// SMB: no such share (its UNC path), and the account asking.
    NoShare {
        share: String,
        account: String,
    },
    /// No TCP connection to the server, after `attempts` tries.
    Unreachable {
        server: String,
        detail: String,
        attempts: u32,
    },
    /// Transient failures until the retries ran out.
    GaveUp {
        detail: String,
        attempts: u32,
    },
}

impl BackendError {
    pub(crate) fn from_io(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::NotFound => BackendError::NotFound,
            io::ErrorKind::PermissionDenied => BackendError::Denied(e.to_string()),
            _ => BackendError::Io(e),
        }
    }

    /// Attach the DP and what was being read. `NotFound` is mapped by the
    /// callers that know what a missing entry means; here it becomes a plain
    /// I/O error.
    pub(crate) fn into_dp(self, dp: &str, what: impl Into<String>) -> DpError {
        let dp = dp.to_owned();
        let what = what.into();
        match self {
            BackendError::NotFound => DpError::Io {
                dp,
                what,
                source: io::Error::new(io::ErrorKind::NotFound, "not found"),
            },
            BackendError::Denied(detail) => DpError::NoReadAccess { dp, what, detail },
            BackendError::AuthRequired {
                offered,
                account,
                kerberos,
            } => DpError::AuthRequired {
                dp,
                what,
                offered,
                account,
                kerberos,
            },
            BackendError::Kerberos(detail) => DpError::Kerberos { dp, what, detail },
            BackendError::ClientCert { file: None, detail } => {
                DpError::ClientCertRequired { dp, what, detail }
            }
            BackendError::ClientCert {
                file: Some(file),
                detail,
            } => DpError::ClientCertRefused {
                dp,
                what,
                file,
                detail,
            },
            BackendError::Status(status, url) => DpError::HttpStatus {
                dp,
                what,
                status,
                url,
            },
            BackendError::Short(detail) => DpError::Request { dp, what, detail },
            BackendError::Transient(detail) => DpError::Transfer {
                dp,
                what,
                detail,
                attempts: 1,
            },
            BackendError::Other(detail) => DpError::Request { dp, what, detail },
            BackendError::GaveUp { detail, attempts } => DpError::Transfer {
                dp,
                what,
                detail,
                attempts,
            },
            BackendError::Io(source) => DpError::Io { dp, what, source },
            BackendError::Logon { account, detail } => DpError::LogonFailed {
                dp,
                account,
                what,
                detail,
            },
            BackendError::NoShare { share, account } => DpError::ShareNotFound {
                dp,
                share,
                what,
                account,
            },
            BackendError::Unreachable {
                server,
                detail,
                attempts,
            } => DpError::Unreachable {
                dp,
                server,
                what,
                detail,
                attempts,
            },
            BackendError::Unsafe { name, reason } => DpError::UnsafeName {
                dp,
                location: what,
                name,
                reason,
            },
        }
    }
}
