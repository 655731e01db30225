//! Kerberos client tokens from the user's ticket cache, through the
//! system's MIT GSSAPI library: this crate's one job.
//!
//! An administrator who ran `kinit` (or logged on to a domain-joined Linux
//! machine) has a ticket cache (`KRB5CCNAME`, or the default cache of
//! `krb5.conf`); a DP behind Windows authentication takes a Kerberos
//! ticket made from it, so no password has to be given to capmedia at all.
//!
//! Why the system library, and why opened at run time:
//! - `sspi` (which the `smb` crate logged on with) has a Kerberos client, but
//!   it logs on with a password or a smart card and does not read a ticket
//!   cache (the `smb` crate's `kerberos` feature builds on it and adds
//!   `reqwest`).
//! - `libgssapi` / `cross-krb5` bind MIT GSSAPI at build time with
//!   `bindgen`: libclang and `libkrb5-dev` on every build machine, and a
//!   fresh `cargo build` (or `cargo xtask demo`) without them fails.
//! - Ticket caches come in many types (FILE, DIR, KEYRING, KCM) and
//!   `krb5.conf` has many knobs (realms, canonicalisation, enctypes); only
//!   the system library reads them all as `kinit` and `klist` do.
//!
//! So `libgssapi_krb5.so.2` (Debian `libgssapi-krb5-2`, present wherever
//! `kinit` is) is opened with `libloading` on first use, and only the
//! functions of RFC 2744 that an initiator needs are bound (and two to name
//! the cache's principal in messages), and RFC 5587's
//! `gss_inquire_sec_context_by_oid` for the session key SMB signs with. Without the
//! library capmedia builds and runs as before; Kerberos is then an error
//! naming the package.
//!
//! Threads: a [`ClientContext`] is one security context, owned by one
//! connection and used through `&mut self`; MIT's library is thread-safe
//! for distinct contexts.
#![allow(unsafe_code)] // FFI into libgssapi_krb5: the one reason this crate exists.

use std::ffi::{c_int, c_void};
use std::ptr;
use std::sync::{Arc, OnceLock};

/// The shared object names tried, in order.
pub const LIBRARY_NAMES: &[&str] = &["libgssapi_krb5.so.2", "libgssapi_krb5.so"];
/// The Debian package that provides the library.
pub const DEBIAN_PACKAGE: &str = "libgssapi-krb5-2";

/// The largest token accepted from a server (a Kerberos AP-REP in SPNEGO
/// is a few hundred bytes; a PAC-laden ticket a few KiB).
pub const TOKEN_LIMIT: usize = 64 << 10;

/// Why no Kerberos token could be made (or the server's was refused). Each
/// says the cause; the caller adds what to do about it for its users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KerberosError {
    /// The GSSAPI library cannot be opened.
    #[error("the Kerberos library cannot be loaded ({reason}); install it: apt-get install -y {package}")]
    LibraryMissing {
        package: &'static str,
        reason: String,
    },
    /// No ticket cache, or none for the principal asked for.
    #[error(
        "no Kerberos ticket{} in {ccache} ({detail}); get one with kinit{}",
        for_principal(principal),
        kinit_arg(principal)
    )]
    NoTicket {
        ccache: String,
        principal: Option<String>,
        detail: String,
    },
    /// The ticket-granting ticket (or a service ticket) has expired.
    #[error(
        "the Kerberos ticket{} in {ccache} has expired ({detail}); renew it with kinit{}",
        for_principal(principal),
        kinit_arg(principal)
    )]
    Expired {
        ccache: String,
        principal: Option<String>,
        detail: String,
    },
    /// No KDC of the realm answered when a service ticket was asked for.
    #[error("no Kerberos KDC answered ({detail}); check the network and the realm's kdc entries in krb5.conf")]
    KdcUnreachable { detail: String },
    /// The KDC knows no principal for the service (no SPN registered).
    #[error("the KDC knows no Kerberos principal for {service} ({detail}); the server needs the SPN {spn} (setspn -S {spn} <its account>), or reach it by the name its SPN has")]
    ServerUnknown {
        service: String,
        spn: String,
        detail: String,
    },
    /// The server's answer token was refused (mutual authentication failed).
    #[error("the server's Kerberos answer was refused ({detail})")]
    BadServerToken { detail: String },
    /// Anything else the library reported.
    #[error("Kerberos: {detail}")]
    Other { detail: String },
}

fn for_principal(p: &Option<String>) -> String {
    p.as_ref().map(|p| format!(" for {p}")).unwrap_or_default()
}

fn kinit_arg(p: &Option<String>) -> String {
    format!(" {}", p.as_deref().unwrap_or("user@REALM"))
}

/// The ticket cache Kerberos will read, for messages.
pub fn ccache_name() -> String {
    match std::env::var("KRB5CCNAME") {
        Ok(v) if !v.is_empty() => v,
        _ => "the default ticket cache".into(),
    }
}

// RFC 2744's C types as MIT lays them out on Unix.
type OmUint32 = u32;

#[repr(C)]
struct BufferDesc {
    length: usize,
    value: *mut c_void,
}

#[repr(C)]
struct BufferSetDesc {
    count: usize,
    elements: *mut BufferDesc,
}

#[repr(C)]
struct OidDesc {
    length: OmUint32,
    elements: *mut c_void,
}

type ImportNameFn = unsafe extern "C" fn(
    *mut OmUint32,
    *const BufferDesc,
    *const OidDesc,
    *mut *mut c_void,
) -> OmUint32;
type ReleaseNameFn = unsafe extern "C" fn(*mut OmUint32, *mut *mut c_void) -> OmUint32;
type AcquireCredFn = unsafe extern "C" fn(
    *mut OmUint32,
    *mut c_void,
    OmUint32,
    *const c_void,
    c_int,
    *mut *mut c_void,
    *mut *mut c_void,
    *mut OmUint32,
) -> OmUint32;
type ReleaseCredFn = unsafe extern "C" fn(*mut OmUint32, *mut *mut c_void) -> OmUint32;
type InitSecContextFn = unsafe extern "C" fn(
    *mut OmUint32,
    *mut c_void,
    *mut *mut c_void,
    *mut c_void,
    *const OidDesc,
    OmUint32,
    OmUint32,
    *const c_void,
    *const BufferDesc,
    *mut *mut OidDesc,
    *mut BufferDesc,
    *mut OmUint32,
    *mut OmUint32,
) -> OmUint32;
type DeleteSecContextFn =
    unsafe extern "C" fn(*mut OmUint32, *mut *mut c_void, *mut BufferDesc) -> OmUint32;
type ReleaseBufferFn = unsafe extern "C" fn(*mut OmUint32, *mut BufferDesc) -> OmUint32;
type InquireCredFn = unsafe extern "C" fn(
    *mut OmUint32,
    *mut c_void,
    *mut *mut c_void,
    *mut OmUint32,
    *mut c_int,
    *mut *mut c_void,
) -> OmUint32;
type DisplayNameFn = unsafe extern "C" fn(
    *mut OmUint32,
    *mut c_void,
    *mut BufferDesc,
    *mut *mut OidDesc,
) -> OmUint32;
/// `gss_inquire_sec_context_by_oid` (RFC 5587's extension, in MIT since
/// 1.8): the context's session key, among others.
type InquireByOidFn = unsafe extern "C" fn(
    *mut OmUint32,
    *mut c_void,
    *const OidDesc,
    *mut *mut BufferSetDesc,
) -> OmUint32;
type ReleaseBufferSetFn = unsafe extern "C" fn(*mut OmUint32, *mut *mut BufferSetDesc) -> OmUint32;
type DisplayStatusFn = unsafe extern "C" fn(
    *mut OmUint32,
    OmUint32,
    c_int,
    *const OidDesc,
    *mut OmUint32,
    *mut BufferDesc,
) -> OmUint32;

/// The opened library and its functions.
struct Library {
    import_name: ImportNameFn,
    release_name: ReleaseNameFn,
    acquire_cred: AcquireCredFn,
    release_cred: ReleaseCredFn,
    init_sec_context: InitSecContextFn,
    delete_sec_context: DeleteSecContextFn,
    release_buffer: ReleaseBufferFn,
    display_status: DisplayStatusFn,
    inquire_by_oid: InquireByOidFn,
    inquire_cred: InquireCredFn,
    display_name: DisplayNameFn,
    release_buffer_set: ReleaseBufferSetFn,
    // Kept last and alive as long as any function pointer above may be called.
    _lib: libloading::Library,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("libgssapi_krb5")
    }
}

fn load() -> Result<Library, KerberosError> {
    let mut reasons = Vec::new();
    for name in LIBRARY_NAMES {
        // SAFETY: libgssapi_krb5's initialisers only register its error
        // tables and mechanisms; loading it has no other side effect.
        match unsafe { libloading::Library::new(name) } {
            Ok(lib) => return bind(lib),
            Err(e) => reasons.push(format!("{name}: {e}")),
        }
    }
    Err(KerberosError::LibraryMissing {
        package: DEBIAN_PACKAGE,
        reason: reasons.join("; "),
    })
}

fn bind(lib: libloading::Library) -> Result<Library, KerberosError> {
    fn sym<T: Copy>(lib: &libloading::Library, name: &'static str) -> Result<T, KerberosError> {
        let cname = format!("{name}\0");
        // SAFETY: the type T given at each call below is the C prototype of
        // that function in RFC 2744 / MIT's gssapi.h (OM_uint32 = u32,
        // gss_cred_usage_t = int, handles and OID sets are pointers).
        match unsafe { lib.get::<T>(cname.as_bytes()) } {
            Ok(s) => Ok(*s),
            Err(e) => Err(KerberosError::LibraryMissing {
                package: DEBIAN_PACKAGE,
                reason: format!("{name}: {e}"),
            }),
        }
    }
    Ok(Library {
        import_name: sym(&lib, "gss_import_name")?,
        release_name: sym(&lib, "gss_release_name")?,
        acquire_cred: sym(&lib, "gss_acquire_cred")?,
        release_cred: sym(&lib, "gss_release_cred")?,
        init_sec_context: sym(&lib, "gss_init_sec_context")?,
        delete_sec_context: sym(&lib, "gss_delete_sec_context")?,
        release_buffer: sym(&lib, "gss_release_buffer")?,
        display_status: sym(&lib, "gss_display_status")?,
        inquire_by_oid: sym(&lib, "gss_inquire_sec_context_by_oid")?,
        inquire_cred: sym(&lib, "gss_inquire_cred")?,
        display_name: sym(&lib, "gss_display_name")?,
        release_buffer_set: sym(&lib, "gss_release_buffer_set")?,
        _lib: lib,
    })
}

fn library() -> Result<Arc<Library>, KerberosError> {
    static LIB: OnceLock<Result<Arc<Library>, KerberosError>> = OnceLock::new();
    LIB.get_or_init(|| load().map(Arc::new)).clone()
}

/// Whether the GSSAPI library can be loaded.
pub fn available() -> Result<(), KerberosError> {
    library().map(|_| ())
}

// OIDs (DER contents, without tag and length).
/// GSS_C_NT_HOSTBASED_SERVICE, 1.2.840.113554.1.2.1.4: `service@host`.
const NT_HOSTBASED_SERVICE: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04";
/// GSS_KRB5_NT_PRINCIPAL_NAME, 1.2.840.113554.1.2.2.1: `user@REALM`.
const NT_KRB5_PRINCIPAL: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01";
/// GSS_C_INQ_SSPI_SESSION_KEY, 1.2.840.113554.1.2.2.5.5: the session key
/// as Windows' SSPI gives it (the acceptor's subkey if it sent one), which
/// SMB derives its signing keys from.
const INQ_SSPI_SESSION_KEY: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x05\x05";
/// SPNEGO, 1.3.6.1.5.5.2: what HTTP `Negotiate` (RFC 4559) and SMB carry.
const MECH_SPNEGO: &[u8] = b"\x2b\x06\x01\x05\x05\x02";

const GSS_C_INITIATE: c_int = 1;
const GSS_C_GSS_CODE: c_int = 1;
const GSS_C_MECH_CODE: c_int = 2;
const GSS_C_INDEFINITE: OmUint32 = 0xffff_ffff;
const GSS_S_CONTINUE_NEEDED: OmUint32 = 1;
/// The calling and routine error fields of a major status.
const ERROR_MASK: OmUint32 = 0xffff_0000;
const GSS_S_BAD_NAME: OmUint32 = 2 << 16;
const GSS_S_NO_CRED: OmUint32 = 7 << 16;
const GSS_S_DEFECTIVE_TOKEN: OmUint32 = 9 << 16;
const GSS_S_CREDENTIALS_EXPIRED: OmUint32 = 11 << 16;

/// Context flags (RFC 2744): mutual authentication, so the server proves
/// it holds the service key too.
pub const FLAG_MUTUAL: u32 = 2;
/// Integrity and confidentiality, which SMB signing and encryption need.
pub const FLAG_INTEG: u32 = 32;
pub const FLAG_CONF: u32 = 16;

// MIT krb5 error codes (com_err table "krb5", base -1765328384) seen as
// minor statuses.
const KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN: i32 = -1_765_328_377;
const KRB5KRB_AP_ERR_TKT_EXPIRED: i32 = -1_765_328_352;
const KRB5_CC_NOTFOUND: i32 = -1_765_328_243;
const KRB5_KDC_UNREACH: i32 = -1_765_328_228;
const KRB5_FCC_NOFILE: i32 = -1_765_328_189;
const KRB5_CC_NOSUPP: i32 = -1_765_328_137;

fn oid(bytes: &'static [u8]) -> OidDesc {
    OidDesc {
        // The OIDs above are a few bytes long.
        length: bytes.len() as OmUint32,
        elements: bytes.as_ptr() as *mut c_void,
    }
}

/// What the library says about a status, each line of it.
fn describe(lib: &Library, major: OmUint32, minor: OmUint32) -> String {
    let mut parts = Vec::new();
    for (code, kind) in [(major, GSS_C_GSS_CODE), (minor, GSS_C_MECH_CODE)] {
        if code == 0 || (kind == GSS_C_GSS_CODE && code & ERROR_MASK == 0) {
            continue;
        }
        let mut ctx: OmUint32 = 0;
        // Bounded: a library that keeps saying "more" is not believed.
        for _ in 0..8 {
            let mut m: OmUint32 = 0;
            let mut buf = BufferDesc {
                length: 0,
                value: ptr::null_mut(),
            };
            // SAFETY: all pointers are to live locals; the mech OID may be
            // null (the default mechanism); `buf` is released below.
            let r = unsafe {
                (lib.display_status)(&mut m, code, kind, ptr::null(), &mut ctx, &mut buf)
            };
            if r & ERROR_MASK != 0 {
                break;
            }
            if !buf.value.is_null() && buf.length > 0 && buf.length < 4096 {
                // SAFETY: the library returned `length` bytes at `value`.
                let bytes =
                    unsafe { std::slice::from_raw_parts(buf.value as *const u8, buf.length) };
                let text = String::from_utf8_lossy(bytes).trim().to_owned();
                if !text.is_empty() && !parts.contains(&text) {
                    parts.push(text);
                }
            }
            // SAFETY: `buf` was filled by the library (or is empty).
            unsafe { (lib.release_buffer)(&mut m, &mut buf) };
            if ctx == 0 {
                break;
            }
        }
    }
    // "Unspecified GSS failure.  Minor code may provide more information"
    // says nothing when the minor code's text follows.
    if parts.len() > 1 && parts[0].starts_with("Unspecified GSS failure") {
        parts.remove(0);
    }
    if parts.is_empty() {
        format!("GSSAPI major status {major:#x}, minor {minor:#x}")
    } else {
        parts.join(": ")
    }
}

/// Name the cause of a failed call.
fn classify(
    lib: &Library,
    major: OmUint32,
    minor: OmUint32,
    principal: Option<&str>,
    service: Option<(&str, &str)>,
) -> KerberosError {
    let detail = describe(lib, major, minor);
    let ccache = ccache_name();
    let principal = principal.map(str::to_owned);
    // Minor statuses are krb5's signed com_err codes.
    let code = minor as i32;
    let lower = detail.to_ascii_lowercase();
    // Through SPNEGO, MIT maps the minor code to a mechglue number, so
    // the message text is checked too.
    if code == KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN || lower.contains("not found in kerberos database") {
        if let Some((svc, host)) = service {
            return KerberosError::ServerUnknown {
                service: format!("{svc}@{host}"),
                spn: format!("{svc}/{host}"),
                detail,
            };
        }
    }
    if code == KRB5_KDC_UNREACH || lower.contains("cannot contact any kdc") {
        return KerberosError::KdcUnreachable { detail };
    }
    if major & ERROR_MASK == GSS_S_CREDENTIALS_EXPIRED
        || code == KRB5KRB_AP_ERR_TKT_EXPIRED
        || lower.contains("expired")
    {
        return KerberosError::Expired {
            ccache,
            principal,
            detail,
        };
    }
    if major & ERROR_MASK == GSS_S_NO_CRED
        || matches!(code, KRB5_FCC_NOFILE | KRB5_CC_NOTFOUND | KRB5_CC_NOSUPP)
        || lower.contains("no kerberos credentials available")
        || lower.contains("no credentials cache found")
        || lower.contains("can't find client principal")
    {
        return KerberosError::NoTicket {
            ccache,
            principal,
            detail,
        };
    }
    KerberosError::Other { detail }
}

/// An imported name, released when dropped.
struct Name<'a> {
    lib: &'a Library,
    raw: *mut c_void,
}

impl Drop for Name<'_> {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            let mut m = 0;
            // SAFETY: `raw` came from gss_import_name and is released once.
            unsafe { (self.lib.release_name)(&mut m, &mut self.raw) };
        }
    }
}

fn import_name<'a>(
    lib: &'a Library,
    text: &str,
    kind: &'static [u8],
    principal: Option<&str>,
) -> Result<Name<'a>, KerberosError> {
    let buf = BufferDesc {
        length: text.len(),
        value: text.as_ptr() as *mut c_void,
    };
    let kind = oid(kind);
    let mut raw = ptr::null_mut();
    let mut minor = 0;
    // SAFETY: `buf` points at `text`, alive for the call; the library
    // copies the name into `raw`, which `Name` releases.
    let major = unsafe { (lib.import_name)(&mut minor, &buf, &kind, &mut raw) };
    let name = Name { lib, raw };
    if major & ERROR_MASK != 0 {
        let mut e = classify(lib, major, minor, principal, None);
        if major & ERROR_MASK == GSS_S_BAD_NAME {
            e = KerberosError::Other {
                detail: format!("{text:?} is not a valid Kerberos name"),
            };
        }
        return Err(e);
    }
    Ok(name)
}

/// Initiator credentials from the ticket cache: the default principal's,
/// or `principal`'s (`user@REALM`, found in the cache collection).
struct Cred {
    lib: Arc<Library>,
    raw: *mut c_void,
}

impl Drop for Cred {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            let mut m = 0;
            // SAFETY: `raw` came from gss_acquire_cred and is released once.
            unsafe { (self.lib.release_cred)(&mut m, &mut self.raw) };
        }
    }
}

fn acquire(lib: &Arc<Library>, principal: Option<&str>) -> Result<Cred, KerberosError> {
    let name = match principal {
        Some(p) => Some(import_name(lib, p, NT_KRB5_PRINCIPAL, principal)?),
        None => None,
    };
    let mut raw = ptr::null_mut();
    let mut minor = 0;
    let mut lifetime: OmUint32 = 0;
    // SAFETY: the name (or null: the default principal) is alive for the
    // call; a null mechanism set means the default mechanisms; no actual
    // mechanism set is asked for. `Cred` releases `raw`.
    let major = unsafe {
        (lib.acquire_cred)(
            &mut minor,
            name.as_ref().map_or(ptr::null_mut(), |n| n.raw),
            GSS_C_INDEFINITE,
            ptr::null(),
            GSS_C_INITIATE,
            &mut raw,
            ptr::null_mut(),
            &mut lifetime,
        )
    };
    let cred = Cred {
        lib: Arc::clone(lib),
        raw,
    };
    if major & ERROR_MASK != 0 {
        return Err(classify(lib, major, minor, principal, None));
    }
    if lifetime == 0 {
        return Err(KerberosError::Expired {
            ccache: ccache_name(),
            principal: principal.map(str::to_owned),
            detail: "no lifetime left".into(),
        });
    }
    Ok(cred)
}

/// The principal (`user@REALM`) whose valid ticket the cache holds by
/// default, for messages ("access denied to account alice@EXAMPLE.COM").
/// Asks no KDC.
pub fn default_principal() -> Result<String, KerberosError> {
    let lib = library()?;
    let cred = acquire(&lib, None)?;
    let mut name: *mut c_void = ptr::null_mut();
    let mut minor = 0;
    // SAFETY: `cred.raw` is the library's own credential; only the name
    // is asked for (the other outputs null); `name` is released below.
    let major = unsafe {
        (lib.inquire_cred)(
            &mut minor,
            cred.raw,
            &mut name,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    let name = Name {
        lib: &lib,
        raw: name,
    };
    if major & ERROR_MASK != 0 || name.raw.is_null() {
        return Err(classify(&lib, major, minor, None, None));
    }
    let mut buf = BufferDesc {
        length: 0,
        value: ptr::null_mut(),
    };
    // SAFETY: `name.raw` is a name the library made; `buf` is released
    // below; the name type is not asked for (null).
    let major = unsafe { (lib.display_name)(&mut minor, name.raw, &mut buf, ptr::null_mut()) };
    let text = if major & ERROR_MASK == 0 && !buf.value.is_null() && buf.length < 4096 {
        // SAFETY: the library returned `length` bytes at `value`.
        let bytes = unsafe { std::slice::from_raw_parts(buf.value as *const u8, buf.length) };
        Some(String::from_utf8_lossy(bytes).into_owned())
    } else {
        None
    };
    let mut m = 0;
    // SAFETY: `buf` was filled by the library (or is empty).
    unsafe { (lib.release_buffer)(&mut m, &mut buf) };
    text.ok_or_else(|| classify(&lib, major, minor, None, None))
}

/// The cache's default principal as messages show it: `alice@EXAMPLE.COM
/// (the Kerberos ticket in FILE:/tmp/krb5cc_1000)`, or, when it cannot be
/// named, `the Kerberos ticket's principal (FILE:/tmp/krb5cc_1000)`.
pub fn describe_default_principal() -> String {
    match default_principal() {
        Ok(p) => format!("{p} (the Kerberos ticket in {})", ccache_name()),
        Err(_) => format!("the Kerberos ticket's principal ({})", ccache_name()),
    }
}

/// Whether the ticket cache holds a ticket that is still valid: the
/// default principal's, or `principal`'s. Asks no KDC.
pub fn have_ticket(principal: Option<&str>) -> Result<(), KerberosError> {
    let lib = library()?;
    acquire(&lib, principal).map(|_| ())
}

/// One client security context (SPNEGO carrying Kerberos) towards one
/// service on one host: the tokens of one authentication.
pub struct ClientContext {
    lib: Arc<Library>,
    cred: Cred,
    raw: *mut c_void,
    service: String,
    host: String,
    flags: u32,
    complete: bool,
}

impl std::fmt::Debug for ClientContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientContext")
            .field("target", &format_args!("{}@{}", self.service, self.host))
            .field("complete", &self.complete)
            .finish()
    }
}

// SAFETY: a GSSAPI context and credential handle are heap objects with no
// thread affinity in MIT's library; `step` takes `&mut self`, so one is
// never used by two threads at once. Deliberately not `Sync`.
unsafe impl Send for ClientContext {}

impl ClientContext {
    /// A context for `service@host` (e.g. `HTTP` and the DP's name; the
    /// SPN is `HTTP/host`), with the ticket of `principal` or of the
    /// cache's default principal. Fails at once when there is no valid
    /// ticket; the KDC is asked for the service ticket by the first
    /// [`step`](Self::step).
    pub fn new(
        service: &str,
        host: &str,
        principal: Option<&str>,
        flags: u32,
    ) -> Result<ClientContext, KerberosError> {
        let lib = library()?;
        let cred = acquire(&lib, principal)?;
        Ok(ClientContext {
            lib,
            cred,
            raw: ptr::null_mut(),
            service: service.to_owned(),
            host: host.to_owned(),
            flags,
            complete: false,
        })
    }

    /// Whether the context is established (the server's last token, if it
    /// sent one, was accepted).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The next token for the server: the first with `input` `None`, then
    /// one for each token the server answers with. `Ok(None)` when there
    /// is nothing more to send.
    pub fn step(&mut self, input: Option<&[u8]>) -> Result<Option<Vec<u8>>, KerberosError> {
        if let Some(t) = input {
            if t.len() > TOKEN_LIMIT {
                return Err(KerberosError::BadServerToken {
                    detail: format!("a {}-byte token (at most {TOKEN_LIMIT} expected)", t.len()),
                });
            }
        }
        let lib = Arc::clone(&self.lib);
        let target = format!("{}@{}", self.service, self.host);
        let name = import_name(&lib, &target, NT_HOSTBASED_SERVICE, None)?;
        let mech = oid(MECH_SPNEGO);
        let in_buf = input.map(|t| BufferDesc {
            length: t.len(),
            value: t.as_ptr() as *mut c_void,
        });
        let mut out = BufferDesc {
            length: 0,
            value: ptr::null_mut(),
        };
        let mut minor = 0;
        let mut ret_flags = 0;
        let mut lifetime = 0;
        // SAFETY: the credential, context and name handles are the
        // library's own (or null for a new context); `in_buf` points at
        // `input`, alive for the call; no channel bindings (null) and no
        // actual mechanism asked for (null); `out` is released below.
        let major = unsafe {
            (lib.init_sec_context)(
                &mut minor,
                self.cred.raw,
                &mut self.raw,
                name.raw,
                &mech,
                self.flags,
                0,
                ptr::null(),
                in_buf
                    .as_ref()
                    .map_or(ptr::null(), |b| b as *const BufferDesc),
                ptr::null_mut(),
                &mut out,
                &mut ret_flags,
                &mut lifetime,
            )
        };
        let token = if out.value.is_null() || out.length == 0 {
            None
        } else {
            // SAFETY: the library returned `length` bytes at `value`.
            Some(unsafe { std::slice::from_raw_parts(out.value as *const u8, out.length) }.to_vec())
        };
        let mut m = 0;
        // SAFETY: `out` was filled by the library (or is empty).
        unsafe { (lib.release_buffer)(&mut m, &mut out) };
        if major & ERROR_MASK != 0 {
            let e = classify(&lib, major, minor, None, Some((&self.service, &self.host)));
            return Err(match e {
                KerberosError::Other { detail }
                    if input.is_some() || major & ERROR_MASK == GSS_S_DEFECTIVE_TOKEN =>
                {
                    KerberosError::BadServerToken { detail }
                }
                e => e,
            });
        }
        self.complete = major & GSS_S_CONTINUE_NEEDED == 0;
        Ok(token)
    }

    /// The established context's session key (what SMB signs with). An
    /// error before the context is complete.
    pub fn session_key(&self) -> Result<Vec<u8>, KerberosError> {
        if !self.complete || self.raw.is_null() {
            return Err(KerberosError::Other {
                detail: "no session key before the context is established".into(),
            });
        }
        let lib = &self.lib;
        let what = oid(INQ_SSPI_SESSION_KEY);
        let mut set: *mut BufferSetDesc = ptr::null_mut();
        let mut minor = 0;
        // SAFETY: the context handle is the library's own and established;
        // `set` is allocated by the library and released below.
        let major = unsafe { (lib.inquire_by_oid)(&mut minor, self.raw, &what, &mut set) };
        let key = if major & ERROR_MASK != 0 || set.is_null() {
            None
        } else {
            // SAFETY: a non-null set from the library holds `count`
            // buffers at `elements`; the key is its first, `length` bytes
            // at `value` (MIT returns the key, then its enctype).
            unsafe {
                let s = &*set;
                if s.count >= 1 && !s.elements.is_null() {
                    let b = &*s.elements;
                    (!b.value.is_null() && b.length > 0 && b.length <= 1024).then(|| {
                        std::slice::from_raw_parts(b.value as *const u8, b.length).to_vec()
                    })
                } else {
                    None
                }
            }
        };
        if !set.is_null() {
            let mut m = 0;
            // SAFETY: `set` was allocated by the library and is released once.
            unsafe { (lib.release_buffer_set)(&mut m, &mut set) };
        }
        key.ok_or_else(|| KerberosError::Other {
            detail: if major & ERROR_MASK != 0 {
                describe(lib, major, minor)
            } else {
                "the context has no session key".into()
            },
        })
    }
}

impl Drop for ClientContext {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            let mut m = 0;
            // SAFETY: `raw` came from gss_init_sec_context and is deleted
            // once; no output token is asked for (null).
            unsafe { (self.lib.delete_sec_context)(&mut m, &mut self.raw, ptr::null_mut()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_loads_and_a_missing_cache_is_no_ticket() {
        // The test environment's Kerberos library (a fresh machine's is
        // libgssapi-krb5-2, which krb5-user depends on).
        available().unwrap();
        let dir = std::env::temp_dir().join(format!("capmedia-gssapi-{}", std::process::id()));
        // A cache that does not exist: the error names it and says kinit.
        std::env::set_var("KRB5CCNAME", format!("FILE:{}/none", dir.display()));
        let e = have_ticket(None).unwrap_err();
        assert!(matches!(e, KerberosError::NoTicket { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("kinit") && text.contains("none"), "{text}");
        let e = ClientContext::new("HTTP", "dp01", Some("alice@EXAMPLE.TEST"), FLAG_MUTUAL)
            .unwrap_err();
        assert!(e.to_string().contains("kinit alice@EXAMPLE.TEST"), "{e}");
    }
}
