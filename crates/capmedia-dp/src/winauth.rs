//! Windows authentication for HTTP(S) DPs: the NTLM handshake IIS answers
//! to `WWW-Authenticate: NTLM` (and, as a raw NTLM token, to `Negotiate`).
//!
//! NTLM authenticates a TCP connection, not a request: the negotiate,
//! challenge and authenticate legs must travel on one connection, and later
//! requests on it need no header. ureq pools connections per agent, so each
//! [`Conn`] here is an agent of its own whose pool holds one connection:
//! the legs of a handshake cannot land on different connections, and
//! parallel downloads each lease their own `Conn` and authenticate it on
//! its own. A lease goes back to [`WinAuth`]'s idle list when its response
//! body is dropped. When a kept connection closes, ureq opens a new one,
//! the DP answers 401 again, and the handshake runs again on it.
//!
//! The NTLM messages come from `ntlmclient` (NTLMv2 responses, 31 crates
//! in all). `sspi` (Devolutions) would also bring Kerberos but pulls in
//! ~190 crates (picky, rsa, Kerberos ASN.1) even without default features,
//! and logs on with a password, not from a ticket cache.
//!
//! Kerberos from the user's ticket cache (`kinit`) comes from the system's
//! GSSAPI library through `capmedia-gssapi`: when the DP offers
//! `Negotiate` and a ticket is there, a SPNEGO token for `HTTP/<host>`
//! goes in the first authenticated request (one leg; the DP's mutual
//! authentication token on the answer is checked). Kerberos is used with
//! no account given (the cache's default principal) or with an account
//! written `user@REALM` (that principal's ticket); a `DOMAIN\user`
//! account is never mapped to a principal, so it is NTLM only. Where
//! Kerberos cannot be used (no ticket, expired, no KDC, no SPN) and a
//! password was given, NTLM is used instead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::prelude::{Engine, BASE64_STANDARD};
use ntlmclient::{Flags, Message, NegotiateMessage, TargetInfoType};
use ureq::http::{Response, StatusCode};
use ureq::{Agent, Body};
use zeroize::{Zeroize, Zeroizing};

use crate::error::BackendError;
use crate::Credentials;

/// The most bytes of a 401 body read (and dropped) between legs; IIS's are
/// about 1 KiB. A longer one closes the connection instead.
const DRAIN_LIMIT: u64 = 64 << 10;
/// The most `WWW-Authenticate` text looked at, and the largest token.
const HEADER_LIMIT: usize = 16 << 10;
/// A challenge's target information is a few hundred bytes; a larger one
/// would overflow the 16-bit lengths of the authenticate message.
const TARGET_INFO_LIMIT: usize = 8 << 10;

/// Which `Authorization` scheme carries which tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Ntlm,
    /// SPNEGO's scheme name with a raw NTLM token, which Windows'
    /// Negotiate package (and IIS) accepts.
    Negotiate,
    /// `Negotiate` with SPNEGO carrying Kerberos, from the ticket cache.
    Kerberos,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Ntlm => "NTLM",
            Scheme::Negotiate | Scheme::Kerberos => "Negotiate",
        }
    }
}

/// Kerberos for one DP: the host of its SPN (`HTTP/<host>`) and the
/// principal whose ticket to use (`None`: the cache's default).
#[derive(Debug, Clone)]
pub(crate) struct KerberosTarget {
    pub(crate) host: String,
    pub(crate) principal: Option<String>,
}

/// Sends the request on a connection, with an `Authorization` value.
type SendFn<'a> = dyn Fn(&Conn, Option<&str>) -> Result<Response<Body>, BackendError> + 'a;

/// How a Kerberos attempt on one connection ended, when not with success.
enum KrbFail {
    /// No token could be made here (no ticket, no KDC, no SPN...).
    Local(capmedia_gssapi::KerberosError),
    /// The DP refused the ticket (a 401 after it), or its answer token.
    Refused(String),
    /// The request itself failed.
    Backend(BackendError),
}

/// The request method, for the few the backend sends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Method {
    Get,
    Head,
}

/// The schemes a 401 offers (`WWW-Authenticate`), as the server names them.
pub(crate) fn offered_schemes(resp: &Response<Body>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = 0usize;
    for v in resp.headers().get_all("www-authenticate") {
        let Ok(v) = v.to_str() else { continue };
        seen += v.len();
        if seen > HEADER_LIMIT {
            break;
        }
        // `Negotiate, NTLM` (merged headers) or `Basic realm="x"`: a scheme
        // is the first word of a comma-separated piece that is no parameter.
        for piece in v.split(',') {
            let word = piece.split_whitespace().next().unwrap_or("");
            if !word.is_empty()
                && !word.contains('=')
                && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !out.iter().any(|s| s.eq_ignore_ascii_case(word))
                && out.len() < 16
            {
                out.push(word.to_owned());
            }
        }
    }
    out
}

/// `Negotiate, NTLM` for messages; `none` when the 401 named no scheme.
pub(crate) fn describe_schemes(offered: &[String]) -> String {
    if offered.is_empty() {
        "no scheme".into()
    } else {
        offered.join(", ")
    }
}

fn pick(offered: &[String]) -> Option<Scheme> {
    let has = |n: &str| offered.iter().any(|s| s.eq_ignore_ascii_case(n));
    if has("NTLM") {
        Some(Scheme::Ntlm)
    } else if has("Negotiate") {
        Some(Scheme::Negotiate)
    } else {
        None
    }
}

/// The token of `WWW-Authenticate: <scheme> <base64>`, if the 401 has one.
fn challenge_token(resp: &Response<Body>, scheme: Scheme) -> Option<Vec<u8>> {
    resp.headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.len() <= HEADER_LIMIT)
        .find_map(|v| {
            let (name, token) = v.trim().split_once(' ')?;
            if !name.eq_ignore_ascii_case(scheme.name()) {
                return None;
            }
            BASE64_STANDARD.decode(token.trim()).ok()
        })
}

const NEGOTIATE_FLAGS: Flags = Flags::NEGOTIATE_UNICODE
    .union(Flags::REQUEST_TARGET)
    .union(Flags::NEGOTIATE_NTLM)
    .union(Flags::NEGOTIATE_ALWAYS_SIGN)
    .union(Flags::NEGOTIATE_NTLM2_KEY)
    .union(Flags::NEGOTIATE_128BIT)
    .union(Flags::NEGOTIATE_56BIT);

/// SMB's: also a session key to sign with (NTLMSSP_NEGOTIATE_SIGN). No
/// key exchange: the exported session key is then NTLMv2's session base
/// key ([MS-NLMP] 3.4.5.1), which `ntlmclient` computes.
pub(crate) const SMB_FLAGS: Flags = NEGOTIATE_FLAGS.union(Flags::NEGOTIATE_SIGN);

fn negotiate_message() -> Result<Vec<u8>, String> {
    negotiate_message_with(NEGOTIATE_FLAGS)
}

pub(crate) fn negotiate_message_with(flags: Flags) -> Result<Vec<u8>, String> {
    Message::Negotiate(NegotiateMessage {
        flags,
        supplied_domain: String::new(),
        supplied_workstation: String::new(),
        os_version: Default::default(),
    })
    .to_bytes()
    .map_err(|e| format!("building the NTLM negotiate message: {e}"))
}

/// The authenticate message (NTLMv2) answering `challenge` for `creds`.
fn authenticate_message(challenge: &[u8], creds: &Credentials) -> Result<Vec<u8>, String> {
    ntlm_answer(challenge, creds, NEGOTIATE_FLAGS).map(|(m, _)| m)
}

/// The authenticate message answering `challenge` for `creds` with the
/// `offered` flags the server also set, and the session key it yields.
pub(crate) fn ntlm_answer(
    challenge: &[u8],
    creds: &Credentials,
    offered: Flags,
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), String> {
    let challenge = match Message::try_from(challenge) {
        Ok(Message::Challenge(c)) => c,
        Ok(other) => {
            return Err(format!(
                "the DP answered with NTLM message type {} instead of a challenge",
                other.message_number()
            ))
        }
        Err(e) => return Err(format!("the DP's NTLM challenge is malformed: {e}")),
    };
    let target_info: Vec<u8> = challenge
        .target_information
        .iter()
        .flat_map(|e| e.to_bytes())
        .collect();
    if target_info.len() > TARGET_INFO_LIMIT {
        return Err(format!(
            "the DP's NTLM challenge carries {} bytes of target information (at most \
             {TARGET_INFO_LIMIT} expected)",
            target_info.len()
        ));
    }
    // The server's clock, where it sends it, so that its replay check
    // does not depend on this machine's clock (MS-NLMP 3.1.5.1.2).
    let time = challenge
        .target_information
        .iter()
        .find(|e| e.entry_type == TargetInfoType::Timestamp)
        .and_then(|e| <[u8; 8]>::try_from(e.data.as_slice()).ok())
        .map(i64::from_le_bytes)
        .unwrap_or_else(ntlmclient::get_ntlm_time);
    // A UPN (`user@REALM`) goes whole in the user field with no domain,
    // as Windows sends it.
    let (username, domain) = if creds.account.upn {
        (creds.account.to_string(), String::new())
    } else {
        (creds.account.user.clone(), creds.account.domain.clone())
    };
    if username.len() > 256 || domain.len() > 256 {
        return Err("the account name is longer than NTLM allows".into());
    }
    let mut nc = ntlmclient::Credentials {
        username,
        password: creds.password.expose().to_owned(),
        domain,
    };
    let mut response =
        ntlmclient::respond_challenge_ntlm_v2(challenge.challenge, &target_info, time, &nc);
    // The session base key is the signing secret: ntlmclient would put it
    // in the message's EncryptedRandomSessionKey field in the clear, where
    // (with no key exchange) it does not belong at all.
    let key = Zeroizing::new(std::mem::take(&mut response.session_key));
    let flags = (challenge.flags & offered) | Flags::NEGOTIATE_UNICODE;
    let msg = response.to_message(&nc, "", flags).to_bytes();
    // ntlmclient keeps the password in a plain String: wipe our copy.
    nc.password.zeroize();
    msg.map(|m| (m, key))
        .map_err(|e| format!("building the NTLM authenticate message: {e}"))
}

/// [`authenticate_message`] for a fixed account, for the fuzz target.
pub(crate) fn answer_for_fuzzing(challenge: &[u8]) {
    let creds = Credentials {
        account: crate::Account {
            user: "user".into(),
            domain: "DOMAIN".into(),
            upn: false,
        },
        password: crate::Secret::new("password".into()),
    };
    let _ = authenticate_message(challenge, &creds);
}

/// One connection's agent, and whether its connection was authenticated.
#[derive(Debug)]
pub(crate) struct Conn {
    agent: Agent,
    authed: bool,
}

/// The account, and the idle authenticated connections.
#[derive(Debug)]
pub(crate) struct WinAuth {
    /// The account and password for NTLM, if given.
    creds: Option<Arc<Credentials>>,
    /// Kerberos from the ticket cache, when it may be used.
    kerberos: Option<KerberosTarget>,
    /// Why Kerberos could not be used, once known: not tried again.
    kerberos_failed: Mutex<Option<capmedia_gssapi::KerberosError>>,
    /// The per-connection agents' configuration: the backend's, with a
    /// pool of one connection.
    config: ureq::config::Config,
    idle: Mutex<Vec<Conn>>,
    max_idle: usize,
    /// The scheme the DP's 401 asked for, once seen: a new connection
    /// then opens with the negotiate message, saving a round trip.
    scheme: Mutex<Option<Scheme>>,
    /// Set once the DP refused the password: no further attempt is made
    /// with it, so parallel downloads cannot lock the account out.
    refused: AtomicBool,
}

/// A leased connection; back to the idle list when dropped.
#[derive(Debug)]
pub(crate) struct Lease {
    conn: Option<Conn>,
    home: Arc<WinAuth>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if let Ok(mut idle) = self.home.idle.lock() {
                if idle.len() < self.home.max_idle {
                    idle.push(conn);
                }
            }
        }
    }
}

impl WinAuth {
    pub(crate) fn new(
        creds: Option<Arc<Credentials>>,
        kerberos: Option<KerberosTarget>,
        config: ureq::config::Config,
        max_idle: usize,
    ) -> Self {
        WinAuth {
            creds,
            kerberos,
            kerberos_failed: Mutex::new(None),
            config,
            idle: Mutex::new(Vec::new()),
            max_idle: max_idle.max(1),
            scheme: Mutex::new(None),
            refused: AtomicBool::new(false),
        }
    }

    /// The account given (for messages), if one was.
    pub(crate) fn given_account(&self) -> Option<String> {
        match (&self.creds, &self.kerberos) {
            (Some(c), _) => Some(c.account.to_string()),
            (
                None,
                Some(KerberosTarget {
                    principal: Some(p), ..
                }),
            ) => Some(p.clone()),
            _ => None,
        }
    }

    /// Who is authenticating, for messages.
    pub(crate) fn account(&self) -> String {
        self.given_account()
            .unwrap_or_else(capmedia_gssapi::describe_default_principal)
    }

    /// Whether a password for NTLM was given.
    pub(crate) fn has_password(&self) -> bool {
        self.creds.is_some()
    }

    fn kerberos_error(&self) -> Option<capmedia_gssapi::KerberosError> {
        self.kerberos_failed.lock().ok().and_then(|k| k.clone())
    }

    /// The error for a 401 when no scheme capmedia can answer with is left.
    fn auth_required(&self, offered: &[String]) -> BackendError {
        match self.kerberos_error() {
            Some(e) if !self.has_password() => kerberos_backend_error(e, offered),
            _ => BackendError::AuthRequired {
                offered: describe_schemes(offered),
                account: self.given_account(),
                kerberos: None,
            },
        }
    }

    /// The scheme to answer a 401 offering `offered` with: Kerberos where
    /// it may be used and has not failed, else NTLM with the password.
    fn choose(&self, offered: &[String]) -> Option<Scheme> {
        let negotiate = offered.iter().any(|s| s.eq_ignore_ascii_case("Negotiate"));
        if negotiate && self.kerberos.is_some() && self.kerberos_error().is_none() {
            return Some(Scheme::Kerberos);
        }
        if self.has_password() {
            pick(offered)
        } else {
            None
        }
    }

    fn lease(self: &Arc<Self>) -> Lease {
        let conn = self
            .idle
            .lock()
            .ok()
            .and_then(|mut idle| idle.pop())
            .unwrap_or_else(|| Conn {
                agent: Agent::new_with_config(self.config.clone()),
                authed: false,
            });
        Lease {
            conn: Some(conn),
            home: Arc::clone(self),
        }
    }

    fn logon_failed(&self, scheme: Scheme) -> BackendError {
        BackendError::Logon {
            account: self.account(),
            detail: format!(
                "the DP refused it after a complete {} handshake",
                scheme.name()
            ),
        }
    }

    fn known_scheme(&self) -> Option<Scheme> {
        self.scheme.lock().ok().and_then(|s| *s)
    }

    /// Send `method url` on a leased connection, authenticating it first
    /// if the DP asks. The lease must live as long as the response body
    /// is read (the connection returns to its agent's pool only then).
    pub(crate) fn call(
        self: &Arc<Self>,
        method: Method,
        url: &str,
        range: Option<&str>,
        deadline: Option<Duration>,
        map: &dyn Fn(ureq::Error) -> BackendError,
    ) -> Result<(Response<Body>, Lease), BackendError> {
        let mut lease = self.lease();
        let Some(conn) = lease.conn.as_mut() else {
            return Err(BackendError::Other("no connection".into()));
        };
        let send = |conn: &Conn, auth: Option<&str>| -> Result<Response<Body>, BackendError> {
            let mut req = match method {
                Method::Get => conn.agent.get(url),
                Method::Head => conn.agent.head(url),
            }
            .config()
            .timeout_global(deadline)
            .build();
            if let Some(r) = range {
                req = req.header("Range", r);
            }
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.call().map_err(map)
        };

        let (mut scheme, offered) = match (conn.authed, self.known_scheme()) {
            (false, Some(s)) => (s, None),
            _ => {
                let resp = send(conn, None)?;
                if resp.status() != StatusCode::UNAUTHORIZED {
                    return Ok((resp, lease));
                }
                let offered = offered_schemes(&resp);
                let Some(s) = self.choose(&offered) else {
                    return Err(self.auth_required(&offered));
                };
                drain(resp);
                (s, Some(offered))
            }
        };
        conn.authed = false;
        if scheme == Scheme::Kerberos {
            let e = match self.kerberos_leg(conn, &send) {
                Ok(resp) => {
                    // New connections open with a Kerberos token at once.
                    if let Ok(mut k) = self.scheme.lock() {
                        *k = Some(Scheme::Kerberos);
                    }
                    conn.authed = true;
                    return Ok((resp, lease));
                }
                Err(KrbFail::Backend(e)) => return Err(e),
                Err(KrbFail::Local(e)) => e,
                Err(KrbFail::Refused(detail)) => capmedia_gssapi::KerberosError::Other { detail },
            };
            if let Ok(mut k) = self.kerberos_failed.lock() {
                k.get_or_insert(e);
            }
            if let Ok(mut k) = self.scheme.lock() {
                *k = None;
            }
            // NTLM with the password, if one was given and the DP
            // takes it; else the Kerberos error, named.
            let offered = offered.unwrap_or_else(|| vec!["Negotiate".into()]);
            match self.choose(&offered) {
                Some(s) => scheme = s,
                None => return Err(self.auth_required(&offered)),
            }
        }
        if let Ok(mut k) = self.scheme.lock() {
            *k = Some(scheme);
        }
        if self.refused.load(Ordering::Relaxed) {
            return Err(self.logon_failed(scheme));
        }
        let Some(creds) = self.creds.as_ref() else {
            return Err(self.auth_required(&[]));
        };

        let negotiate = negotiate_message().map_err(BackendError::Other)?;
        let header = format!("{} {}", scheme.name(), BASE64_STANDARD.encode(negotiate));
        let resp = send(conn, Some(&header))?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            // Accepted without a challenge (anonymous after all).
            return Ok((resp, lease));
        }
        let Some(token) = challenge_token(&resp, scheme) else {
            let offered = offered_schemes(&resp);
            return Err(if pick(&offered).is_none() {
                BackendError::AuthRequired {
                    offered: describe_schemes(&offered),
                    account: self.given_account(),
                    kerberos: None,
                }
            } else {
                BackendError::Other(format!(
                    "{url}: the DP answered the NTLM negotiate message without a challenge \
                     (offering {})",
                    describe_schemes(&offered)
                ))
            });
        };
        drain(resp);
        if token.first() == Some(&0xa1) || token.first() == Some(&0x60) {
            return Err(BackendError::Other(format!(
                "{url}: the DP answered the NTLM negotiate message with a SPNEGO (Kerberos) \
                 token: it wants Kerberos; get a ticket with kinit user@REALM and give \
                 --dp-user user@REALM (or no --dp-user), or enable NTLM for the DP's content \
                 web site"
            )));
        }
        let answer = authenticate_message(&token, creds)
            .map_err(|e| BackendError::Other(format!("{url}: {e}")))?;
        let header = format!("{} {}", scheme.name(), BASE64_STANDARD.encode(answer));
        let resp = send(conn, Some(&header))?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            drain(resp);
            self.refused.store(true, Ordering::Relaxed);
            return Err(self.logon_failed(scheme));
        }
        conn.authed = true;
        Ok((resp, lease))
    }
}

impl WinAuth {
    /// Authenticate `conn` with Kerberos: the SPNEGO token in the request,
    /// the DP's answer token (mutual authentication) checked on its answer.
    fn kerberos_leg(&self, conn: &Conn, send: &SendFn<'_>) -> Result<Response<Body>, KrbFail> {
        let Some(target) = &self.kerberos else {
            return Err(KrbFail::Refused("Kerberos is not in use".into()));
        };
        let mut ctx = capmedia_gssapi::ClientContext::new(
            "HTTP",
            &target.host,
            target.principal.as_deref(),
            capmedia_gssapi::FLAG_MUTUAL,
        )
        .map_err(KrbFail::Local)?;
        let mut out = ctx.step(None).map_err(KrbFail::Local)?;
        // SPNEGO with Kerberos takes one round trip; a DP that keeps
        // asking is not followed for ever.
        for _ in 0..3 {
            let Some(token) = out.take() else {
                return Err(KrbFail::Refused(
                    "the Kerberos exchange ended without a token for the DP".into(),
                ));
            };
            let header = format!("Negotiate {}", BASE64_STANDARD.encode(token));
            let resp = send(conn, Some(&header)).map_err(KrbFail::Backend)?;
            let answer = challenge_token(&resp, Scheme::Kerberos);
            if resp.status() != StatusCode::UNAUTHORIZED {
                if let Some(t) = answer {
                    if !ctx.is_complete() {
                        ctx.step(Some(&t)).map_err(|e| {
                            KrbFail::Refused(format!(
                                "the DP's answer failed mutual authentication: {e}"
                            ))
                        })?;
                    }
                }
                return Ok(resp);
            }
            drain(resp);
            let Some(t) = answer else {
                return Err(KrbFail::Refused(format!(
                    "the DP refused the Kerberos ticket for HTTP/{} (is the SPN on the \
                     account of the DP's web site, and the principal allowed to read?)",
                    target.host
                )));
            };
            out = ctx
                .step(Some(&t))
                .map_err(|e| KrbFail::Refused(e.to_string()))?;
        }
        Err(KrbFail::Refused(
            "the DP asked for more Kerberos legs than SPNEGO needs".into(),
        ))
    }
}

/// A Kerberos failure as the backend reports it: no ticket (or no library)
/// is the DP wanting credentials capmedia does not have; anything else
/// (expired, no KDC, no SPN, refused) is named as a Kerberos failure.
fn kerberos_backend_error(e: capmedia_gssapi::KerberosError, offered: &[String]) -> BackendError {
    use capmedia_gssapi::KerberosError as K;
    match e {
        K::NoTicket { .. } | K::LibraryMissing { .. } => BackendError::AuthRequired {
            offered: describe_schemes(offered),
            account: match &e {
                K::NoTicket {
                    principal: Some(p), ..
                } => Some(p.clone()),
                _ => None,
            },
            kerberos: Some(e.to_string()),
        },
        other => BackendError::Kerberos(other.to_string()),
    }
}

/// Read a 401's body to its end, so ureq hands the connection back to the
/// agent's pool for the next leg.
fn drain(resp: Response<Body>) {
    let _ = resp
        .into_body()
        .into_with_config()
        .limit(DRAIN_LIMIT)
        .read_to_vec();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Account, Secret};

    #[test]
    fn schemes_are_read_from_separate_and_merged_headers() {
        let resp = Response::builder()
            .status(401)
            .header("WWW-Authenticate", "Negotiate")
            .header("WWW-Authenticate", "NTLM")
            .header("WWW-Authenticate", "Basic realm=\"dp, site\"")
            .body(Body::builder().data(""))
            .unwrap();
        let offered = offered_schemes(&resp);
        assert_eq!(offered, ["Negotiate", "NTLM", "Basic"]);
        assert_eq!(pick(&offered), Some(Scheme::Ntlm));
        assert_eq!(pick(&["Negotiate".into()]), Some(Scheme::Negotiate));
        assert_eq!(pick(&["Basic".into()]), None);
    }

    #[test]
    fn a_real_challenge_gets_an_ntlmv2_answer() {
        let creds = Credentials {
            account: Account::parse("CONTOSO\\cmadmin").unwrap(),
            password: Secret::new("pw".into()),
        };
        // What pyspnego's acceptor sent (the fuzz target's seed).
        let challenge = include_bytes!("../fuzz/corpus/ntlm_challenge/pyspnego");
        let answer = authenticate_message(challenge, &creds).unwrap();
        assert_eq!(&answer[..12], b"NTLMSSP\0\x03\0\0\0");
        assert!(answer.len() > 100);
        let minimal = include_bytes!("../fuzz/corpus/ntlm_challenge/minimal");
        assert!(authenticate_message(minimal, &creds).is_ok());
    }

    /// The fallback for the `ntlm_challenge` fuzz target where cargo fuzz
    /// cannot run: every truncation of a real challenge, and 20,000
    /// deterministic mutations of it (bytes flipped, lengths and offsets
    /// of the security buffers set to extremes), answered without panic.
    #[test]
    fn mutated_challenges_never_panic() {
        let seed = include_bytes!("../fuzz/corpus/ntlm_challenge/pyspnego");
        for n in 0..seed.len() {
            answer_for_fuzzing(&seed[..n]);
        }
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let mut m = seed.to_vec();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % m.len();
                m[i] = match next() % 4 {
                    0 => 0xff,
                    1 => 0,
                    _ => next() as u8,
                };
            }
            if next() % 8 == 0 {
                m.extend(std::iter::repeat_n(0x41, (next() % 70_000) as usize));
            }
            answer_for_fuzzing(&m);
        }
    }

    #[test]
    fn a_malformed_or_oversized_challenge_is_an_error_not_a_panic() {
        let creds = Credentials {
            account: Account::parse("D\\u").unwrap(),
            password: Secret::new("pw".into()),
        };
        for bad in [
            &b""[..],
            b"NTLMSSP\0",
            b"NTLMSSP\0\x02\0\0\0",
            b"NTLMSSP\0\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            &[0xff; 64],
        ] {
            assert!(authenticate_message(bad, &creds).is_err(), "{bad:?}");
        }
        // A challenge whose target info points past the end.
        let mut c = b"NTLMSSP\0\x02\0\0\0".to_vec();
        c.extend_from_slice(&[0; 8]); // target name
        c.extend_from_slice(&0x0082_8201u32.to_le_bytes());
        c.extend_from_slice(&[7; 8]); // challenge
        c.extend_from_slice(&[0; 8]); // context
        c.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 48, 0, 0, 0]);
        c.extend_from_slice(&[0; 8]);
        assert!(authenticate_message(&c, &creds).is_err());
    }
}
