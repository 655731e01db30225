//! A read-only SMB 3 client that logs on with whatever security context
//! its caller brings (NTLM, Kerberos from the user's ticket cache through
//! GSSAPI): this crate's one job.
//!
//! Why by hand: the `smb` crate (smb-rs), which capmedia used before,
//! logs on only through `sspi` with a password (`Authenticator::build`
//! takes an `sspi::AuthIdentity`, with no other hook), and `sspi` reads no
//! ticket cache. Its transport cannot be intercepted either, since the
//! signing key comes from `sspi`'s session key. It also could not wait for
//! an interim STATUS_PENDING answer to a READ, and needed its transport
//! replaced for throughput. The other SMB crates are async-only and would
//! bring a second runtime. What a DP reader needs is
//! small: NEGOTIATE (3.0, 3.0.2, 3.1.1 with SHA-512 pre-authentication
//! integrity), SESSION_SETUP carrying the caller's tokens, AES-GMAC or -CMAC signing
//! with keys from the SP800-108 KDF ([MS-SMB2] 3.1.4.2), TREE_CONNECT,
//! CREATE, QUERY_DIRECTORY, READ with several in flight, and CLOSE. That
//! is what is here; the crypto comes from RustCrypto crates.
//!
//! Encryption: where the session or a share requires it, messages travel
//! encrypted (AES-128-GCM on 3.1.1, AES-128-CCM on 3.0 and 3.0.2, keys from
//! the same KDF); a server that requires it but offers neither is refused
//! with [`Error::Unsupported`].
//!
//! Threads: one reader thread per connection hands each answer to the
//! request waiting for it (by message id), so READs from many threads share
//! one connection, each costing the credits its length needs. Every answer
//! on a signed session is checked against its signature (or, encrypted,
//! its AEAD tag) before use.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use aes_gcm::aead::AeadInPlace as _;
use aes_gcm::KeyInit as _;
use cmac::Mac as _;
use sha2::Digest as _;

mod wire;

use wire::{cmd, status, Header, HEADER_LEN};
pub use wire::{parse_any, DirEntry};

/// The largest message accepted from a server: a READ answer of the
/// largest READ asked for ([`MAX_READ`]) and its header, with room.
const MAX_MESSAGE: usize = (MAX_READ as usize) + (64 << 10);
/// The largest READ this client asks for.
pub const MAX_READ: u32 = 1 << 20;
/// QUERY_DIRECTORY answers of at most this many bytes (one credit).
const DIR_CHUNK: u32 = 64 << 10;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection failed or was closed (worth a new connection).
    #[error("the connection failed: {0}")]
    Io(#[from] io::Error),
    /// No answer within the timeout.
    #[error("no answer to {0} within {1:?}")]
    Timeout(&'static str, Duration),
    /// The server answered with an NT status.
    #[error("the server answered {command} with NT status {status:#010x}")]
    Status { command: &'static str, status: u32 },
    /// The security context refused a token or made none.
    #[error("{0}")]
    Auth(String),
    /// The server's answer does not follow the protocol.
    #[error("the server's answer does not follow SMB2: {0}")]
    Protocol(String),
    /// An answer's signature does not match: tampered, or the keys differ.
    #[error("the signature of the server's answer to {0} does not match")]
    BadSignature(&'static str),
    /// Something this client does not do (an old dialect, a cipher it
    /// lacks, encryption on a guest session).
    #[error("{0}")]
    Unsupported(String),
    /// A folder has more entries than the caller allows.
    #[error("the folder has more than {0} entries")]
    TooManyEntries(usize),
}

impl Error {
    /// The NT status the server answered, if that is what failed.
    pub fn status(&self) -> Option<u32> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether a new connection might succeed where this one failed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Io(_) | Error::Timeout(..))
    }
}

/// A GSSAPI-like security context: the tokens of one logon, and the
/// session key once it is established.
pub trait SecurityContext {
    /// The next token for the server (`input`: the server's last token,
    /// `None` on the first call); `Ok(None)` when there is nothing to send.
    fn step(&mut self, input: Option<&[u8]>) -> Result<Option<Vec<u8>>, String>;
    fn is_complete(&self) -> bool;
    fn session_key(&self) -> Result<Vec<u8>, String>;
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long to wait for any one answer.
    pub timeout: Duration,
    /// Credits asked for in every request (the server grants what it
    /// will); bounds the READs that can be in flight.
    pub credits: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timeout: Duration::from_secs(60),
            credits: 512,
        }
    }
}

/// One answer: its header and the whole message, and whether it came
/// encrypted (its AEAD tag then stands for a signature).
#[derive(Debug)]
struct Answer {
    header: Header,
    msg: Vec<u8>,
    encrypted: bool,
}

/// The logon's keys.
#[derive(Debug)]
struct Session {
    id: u64,
    /// `None` for a guest session, which has no key to sign with (a DP
    /// that lets guests in has chosen so).
    signing: Option<Signer>,
    /// The keys to encrypt with, if the server can.
    crypt: Option<Crypt>,
    /// The server wants every message of the session encrypted.
    encrypt_all: bool,
}

/// The cipher and the keys of both directions.
#[derive(Debug)]
struct Crypt {
    cipher: u16,
    /// Client to server, server to client.
    c2s: [u8; 16],
    s2c: [u8; 16],
    /// Nonces never repeat under a key: a counter (keys are per session).
    next_nonce: AtomicU64,
}

type Ccm = ccm::Ccm<aes::Aes128, ccm::consts::U16, ccm::consts::U11>;

impl Crypt {
    fn gcm(&self) -> bool {
        self.cipher == wire::CIPHER_AES128_GCM
    }

    /// `msg` (an unsigned SMB2 message) as a transform header and
    /// ciphertext.
    fn seal(&self, session_id: u64, msg: Vec<u8>) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; 16];
        let n = self.next_nonce.fetch_add(1, Ordering::Relaxed);
        nonce[..8].copy_from_slice(&n.to_le_bytes());
        let size =
            u32::try_from(msg.len()).map_err(|_| Error::Protocol("a message over 4 GiB".into()))?;
        let mut t = wire::transform(&nonce, size, session_id);
        let mut body = msg;
        let aad = t[20..].to_vec();
        let tag = if self.gcm() {
            aes_gcm::Aes128Gcm::new((&self.c2s).into()).encrypt_in_place_detached(
                aes_gcm::Nonce::from_slice(&nonce[..12]),
                &aad,
                &mut body,
            )
        } else {
            Ccm::new((&self.c2s).into()).encrypt_in_place_detached(
                ccm::Nonce::<ccm::consts::U11>::from_slice(&nonce[..11]),
                &aad,
                &mut body,
            )
        }
        .map_err(|_| Error::Protocol("a message the cipher cannot encrypt".into()))?;
        t[4..20].copy_from_slice(&tag);
        let mut out = Vec::with_capacity(wire::TRANSFORM_LEN + body.len());
        out.extend_from_slice(&t);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// The SMB2 message inside an encrypted one, if its tag is right.
    fn open(&self, session_id: u64, mut msg: Vec<u8>) -> Result<Vec<u8>, Error> {
        let t = wire::parse_transform(&msg)?;
        if t.session_id != session_id {
            return Err(Error::Protocol(
                "an encrypted message of another session".into(),
            ));
        }
        let aad = msg
            .get(20..wire::TRANSFORM_LEN)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        let mut body = msg.split_off(wire::TRANSFORM_LEN);
        let ok = if self.gcm() {
            aes_gcm::Aes128Gcm::new((&self.s2c).into()).decrypt_in_place_detached(
                aes_gcm::Nonce::from_slice(&t.nonce[..12]),
                &aad,
                &mut body,
                (&t.tag).into(),
            )
        } else {
            Ccm::new((&self.s2c).into()).decrypt_in_place_detached(
                ccm::Nonce::<ccm::consts::U11>::from_slice(&t.nonce[..11]),
                &aad,
                &mut body,
                (&t.tag).into(),
            )
        };
        ok.map_err(|_| Error::BadSignature("an encrypted answer"))?;
        Ok(body)
    }
}

type Waiter = SyncSender<Result<Answer, Arc<io::Error>>>;

#[derive(Debug)]
struct State {
    /// Credits granted and not yet spent.
    credits: u32,
    next_id: u64,
    waiting: HashMap<u64, Waiter>,
    /// Why the connection ended, once it has.
    dead: Option<Arc<io::Error>>,
}

#[derive(Debug)]
struct Inner {
    stream: Mutex<TcpStream>,
    state: Mutex<State>,
    more_credits: Condvar,
    config: Config,
    negotiated: wire::Negotiated,
    /// The logon: its id and keys (set once).
    session: OnceLock<Session>,
    /// The connection's pre-authentication hash (3.1.1) after NEGOTIATE.
    preauth: [u8; 64],
}

/// A connection to one server (cheap to clone; closed when the last
/// clone is dropped).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    _reader: Arc<ReaderThread>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field(
                "dialect",
                &format_args!("{:#06x}", self.inner.negotiated.dialect),
            )
            .finish()
    }
}

/// Shuts the socket down (ending the reader thread) when the last client
/// clone goes.
struct ReaderThread {
    stream: TcpStream,
    handle: Option<JoinHandle<()>>,
}

impl Drop for ReaderThread {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn random<const N: usize>() -> [u8; N] {
    // The GUID and salt need only be unlikely to repeat: from the
    // standard library's randomly keyed hasher, no RNG crate needed.
    use std::hash::{BuildHasher, Hasher};
    let mut out = [0u8; N];
    for (i, c) in out.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        let v = h.finish().to_le_bytes();
        c.copy_from_slice(&v[..c.len()]);
    }
    out
}

fn sha512(parts: &[&[u8]]) -> [u8; 64] {
    let mut h = sha2::Sha512::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// [MS-SMB2] 3.1.4.2: SP800-108 counter mode with HMAC-SHA256, one block,
/// 128 bits out. `label` includes its terminating NUL.
fn kdf(key: &[u8; 16], label: &[u8], context: &[u8]) -> [u8; 16] {
    use hmac::Mac as _;
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(&1u32.to_be_bytes());
    mac.update(label);
    mac.update(&[0]);
    mac.update(context);
    mac.update(&128u32.to_be_bytes());
    let out = mac.finalize().into_bytes();
    let mut k = [0u8; 16];
    k.copy_from_slice(&out[..16]);
    k
}

/// A session's signing key and algorithm: AES-128-CMAC, or AES-128-GMAC
/// (3.1.1, when the server picks it: GHASH runs on carry-less multiply,
/// several times cheaper per byte than CMAC's serial AES chain, on both
/// ends of the link).
#[derive(Debug, Clone, Copy)]
struct Signer {
    key: [u8; 16],
    gmac: bool,
}

impl Signer {
    /// The signature of `msg`, computed with its signature field zeroed
    /// (and left so).
    fn signature(&self, msg: &mut [u8]) -> [u8; 16] {
        if let Some(s) = msg.get_mut(48..64) {
            s.fill(0);
        }
        if self.gmac {
            // The nonce: the message id, then the sender's role (bit 0:
            // the server) and whether it is a CANCEL (bit 1).
            let mut nonce = [0u8; 12];
            if let Some(id) = msg.get(24..32) {
                nonce[..8].copy_from_slice(id);
            }
            let flags = msg.get(16).copied().unwrap_or(0);
            nonce[8] =
                (flags & wire::FLAG_RESPONSE as u8) | (u8::from(msg.get(12) == Some(&0x0c)) << 1);
            let tag = aes_gcm::Aes128Gcm::new((&self.key).into()).encrypt_in_place_detached(
                aes_gcm::Nonce::from_slice(&nonce),
                msg,
                &mut [],
            );
            // Encrypting nothing cannot fail (it fails only past 64 GiB).
            tag.map(Into::into).unwrap_or([0; 16])
        } else {
            let mut mac = <cmac::Cmac<aes::Aes128> as cmac::Mac>::new((&self.key).into());
            mac.update(msg);
            mac.finalize().into_bytes().into()
        }
    }

    fn sign(&self, msg: &mut [u8]) {
        if let Some(f) = msg.get_mut(16..20) {
            let flags = u32::from_le_bytes([f[0], f[1], f[2], f[3]]) | wire::FLAG_SIGNED;
            f.copy_from_slice(&flags.to_le_bytes());
        }
        let sig = self.signature(msg);
        if let Some(s) = msg.get_mut(48..64) {
            s.copy_from_slice(&sig);
        }
    }

    /// Whether `msg` carries its signature (the field is zeroed on the way).
    fn verify(&self, msg: &mut [u8]) -> bool {
        let Some(got) = msg.get(48..64).and_then(|s| <[u8; 16]>::try_from(s).ok()) else {
            return false;
        };
        let want = self.signature(msg);
        // Not secret-dependent timing that matters here (the server
        // already knows the key), but cheap to make constant anyway.
        got.iter().zip(want).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
    }
}

/// Read one message (after its 4-byte transport header), bounded.
fn read_message(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = [0u8; 4];
    stream.read_exact(&mut head)?;
    if head[0] != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a direct-TCP SMB message",
        ));
    }
    let len = u32::from_be_bytes([0, head[1], head[2], head[3]]) as usize;
    if !(HEADER_LEN..=MAX_MESSAGE).contains(&len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a {len}-byte SMB message (at most {MAX_MESSAGE} expected)"),
        ));
    }
    let mut msg = vec![0u8; len];
    stream.read_exact(&mut msg)?;
    Ok(msg)
}

/// The reader thread: each answer to its waiter; interim answers only
/// grant credits. Ends on a transport failure, failing every waiter.
fn reader(inner: Arc<Inner>, mut stream: TcpStream) {
    let why = loop {
        let mut msg = match read_message(&mut stream) {
            Ok(m) => m,
            Err(e) => break e,
        };
        let encrypted = msg.starts_with(b"\xfdSMB");
        if encrypted {
            let opened = match inner.session.get() {
                Some(Session {
                    id, crypt: Some(c), ..
                }) => c.open(*id, msg),
                _ => Err(Error::Protocol(
                    "an encrypted message before the logon's keys exist".into(),
                )),
            };
            msg = match opened {
                Ok(m) => m,
                // A message that does not decrypt cannot be told apart
                // from a forged one: the connection is not trusted further.
                Err(e) => break io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
            };
        }
        let header = match wire::parse_header(&msg) {
            Ok(h) => h,
            Err(e) => break io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
        };
        let Ok(mut st) = inner.state.lock() else {
            return;
        };
        st.credits = st.credits.saturating_add(u32::from(header.credits));
        inner.more_credits.notify_all();
        let interim = header.flags & wire::FLAG_ASYNC != 0 && header.status == status::PENDING;
        if interim {
            continue;
        }
        if let Some(w) = st.waiting.remove(&header.message_id) {
            let _ = w.send(Ok(Answer {
                header,
                msg,
                encrypted,
            }));
        }
        // An answer nobody waits for (a timed-out request's) is dropped.
    };
    let why = Arc::new(why);
    if let Ok(mut st) = inner.state.lock() {
        st.dead = Some(why.clone());
        for (_, w) in st.waiting.drain() {
            let _ = w.send(Err(why.clone()));
        }
        inner.more_credits.notify_all();
    }
}

/// A request on its way; [`Pending::wait`] gets its answer.
#[derive(Debug)]
struct Pending {
    rx: Receiver<Result<Answer, Arc<io::Error>>>,
    command: u16,
    message_id: u64,
    inner: Arc<Inner>,
}

impl Pending {
    fn wait(self) -> Result<Answer, Error> {
        let name = cmd::name(self.command);
        let mut answer = match self.rx.recv_timeout(self.inner.config.timeout) {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => return Err(Error::Io(io::Error::new(e.kind(), e.to_string()))),
            Err(_) => {
                if let Ok(mut st) = self.inner.state.lock() {
                    st.waiting.remove(&self.message_id);
                }
                return Err(Error::Timeout(name, self.inner.config.timeout));
            }
        };
        if answer.header.command != self.command || answer.header.flags & wire::FLAG_RESPONSE == 0 {
            return Err(Error::Protocol(format!(
                "the answer to {name} is not one (command {})",
                answer.header.command
            )));
        }
        // On a signed session every answer is signed (or came encrypted,
        // its tag checked): an unsigned one, or one that does not match,
        // is not believed.
        if let Some(Session {
            signing: Some(signing),
            ..
        }) = self.inner.session.get()
        {
            if !answer.encrypted
                && (answer.header.flags & wire::FLAG_SIGNED == 0
                    || !signing.verify(&mut answer.msg))
            {
                return Err(Error::BadSignature(name));
            }
        }
        Ok(answer)
    }
}

impl Client {
    /// NEGOTIATE on a connected stream.
    pub fn connect(stream: TcpStream, config: Config) -> Result<Client, Error> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(None)?;
        stream.set_write_timeout(Some(config.timeout))?;
        let mut s = stream.try_clone()?;
        // NEGOTIATE by hand, before the reader thread exists: its bytes
        // feed the pre-authentication hash.
        let mut req = wire::header(cmd::NEGOTIATE, 0, 1, 0, 0, 0);
        req.extend_from_slice(&wire::negotiate(random(), random()));
        send_frame(&mut s, &req)?;
        s.set_read_timeout(Some(config.timeout))?;
        let msg = read_message(&mut s).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                Error::Timeout("NEGOTIATE", config.timeout)
            }
            _ => Error::Io(e),
        })?;
        s.set_read_timeout(None)?;
        let header = wire::parse_header(&msg)?;
        if header.status != status::SUCCESS {
            return Err(Error::Status {
                command: "NEGOTIATE",
                status: header.status,
            });
        }
        let negotiated = wire::parse_negotiate(&msg)?;
        if !wire::DIALECTS.contains(&negotiated.dialect) {
            return Err(Error::Unsupported(format!(
                "the server chose SMB dialect {:#06x}; this client speaks 3.0, 3.0.2 and 3.1.1",
                negotiated.dialect
            )));
        }
        let preauth = sha512(&[&sha512(&[&[0; 64], &req]), &msg]);
        let inner = Arc::new(Inner {
            stream: Mutex::new(stream.try_clone()?),
            state: Mutex::new(State {
                credits: u32::from(header.credits.max(1)),
                next_id: 1,
                waiting: HashMap::new(),
                dead: None,
            }),
            more_credits: Condvar::new(),
            config,
            negotiated,
            session: OnceLock::new(),
            preauth,
        });
        let r = inner.clone();
        let handle = std::thread::Builder::new()
            .name("smb2-reader".into())
            .spawn(move || reader(r, s))?;
        Ok(Client {
            inner,
            _reader: Arc::new(ReaderThread {
                stream,
                handle: Some(handle),
            }),
        })
    }

    /// The dialect the server chose (0x0300, 0x0302 or 0x0311).
    pub fn dialect(&self) -> u16 {
        self.inner.negotiated.dialect
    }

    /// The largest READ the server takes, capped at [`MAX_READ`].
    pub fn max_read(&self) -> u32 {
        self.inner.negotiated.max_read.clamp(1, MAX_READ)
    }

    /// Send a request; `charge` credits are spent (waiting for them if
    /// need be). Signed when the session is set up.
    fn send(
        &self,
        command: u16,
        tree_id: u32,
        body: &[u8],
        charge: u16,
        encrypt: bool,
    ) -> Result<Pending, Error> {
        self.send_raw(
            command,
            tree_id,
            body,
            charge,
            self.inner.session.get().map(|s| s.id),
            encrypt,
        )
        .map(|(p, _)| p)
    }

    fn send_raw(
        &self,
        command: u16,
        tree_id: u32,
        body: &[u8],
        charge: u16,
        session_id: Option<u64>,
        encrypt: bool,
    ) -> Result<(Pending, Vec<u8>), Error> {
        let inner = &self.inner;
        let charge = charge.max(1);
        let (tx, rx) = mpsc::sync_channel(1);
        // The stream lock is held from taking the message id to the
        // write, so requests go out in message-id order.
        let mut stream = inner
            .stream
            .lock()
            .map_err(|_| Error::Io(io::Error::other("a thread panicked while sending")))?;
        let message_id = {
            let mut st = inner
                .state
                .lock()
                .map_err(|_| Error::Io(io::Error::other("a thread panicked")))?;
            loop {
                if let Some(why) = &st.dead {
                    return Err(Error::Io(io::Error::new(why.kind(), why.to_string())));
                }
                if st.credits >= u32::from(charge) {
                    break;
                }
                let (g, t) = inner
                    .more_credits
                    .wait_timeout(st, inner.config.timeout)
                    .map_err(|_| Error::Io(io::Error::other("a thread panicked")))?;
                st = g;
                if t.timed_out() && st.credits < u32::from(charge) {
                    return Err(Error::Timeout(cmd::name(command), inner.config.timeout));
                }
            }
            st.credits -= u32::from(charge);
            let id = st.next_id;
            st.next_id += u64::from(charge);
            st.waiting.insert(id, tx);
            id
        };
        let mut msg = wire::header(
            command,
            charge,
            inner.config.credits,
            message_id,
            tree_id,
            session_id.unwrap_or(0),
        );
        msg.extend_from_slice(body);
        let mut sealed = None;
        if let Some(s) = inner.session.get() {
            match &s.crypt {
                // Encrypted messages are not signed: the tag covers them.
                Some(c) if encrypt || s.encrypt_all => {
                    sealed = Some(c.seal(s.id, msg.clone())?);
                }
                _ => {
                    if let Some(signing) = &s.signing {
                        signing.sign(&mut msg);
                    }
                }
            }
        }
        if let Err(e) = send_frame(&mut stream, sealed.as_deref().unwrap_or(&msg)) {
            if let Ok(mut st) = inner.state.lock() {
                st.waiting.remove(&message_id);
            }
            let _ = stream.shutdown(Shutdown::Both);
            return Err(Error::Io(e));
        }
        Ok((
            Pending {
                rx,
                command,
                message_id,
                inner: inner.clone(),
            },
            msg,
        ))
    }

    fn request(
        &self,
        command: u16,
        tree_id: u32,
        body: &[u8],
        encrypt: bool,
    ) -> Result<Answer, Error> {
        let a = self.send(command, tree_id, body, 1, encrypt)?.wait()?;
        check(&a, command)?;
        Ok(a)
    }

    /// Log on with `ctx`'s tokens. A guest or anonymous session is
    /// refused unless `guest` (an account that logs on as nobody is a
    /// failed logon); it is then unsigned, having no key.
    pub fn logon(&self, ctx: &mut dyn SecurityContext, guest: bool) -> Result<(), Error> {
        if self.inner.session.get().is_some() {
            return Err(Error::Auth("already logged on".into()));
        }
        // The NEGOTIATE answer's token only lists the server's mechanisms;
        // a GSSAPI initiator starts with no input (as Windows' SSPI does).
        let mut token = ctx
            .step(None)
            .map_err(Error::Auth)?
            .ok_or_else(|| Error::Auth("the security context made no first token".into()))?;
        let mut preauth = self.inner.preauth;
        let mut session_id = 0u64;
        // A Kerberos or NTLM logon takes one or two round trips; a few more are
        // allowed, not an endless exchange.
        for _ in 0..6 {
            let body = wire::session_setup(&token)?;
            let (pending, sent) =
                self.send_raw(cmd::SESSION_SETUP, 0, &body, 1, Some(session_id), false)?;
            preauth = sha512(&[&preauth, &sent]);
            let mut a = pending.wait()?;
            session_id = a.header.session_id;
            let (flags, server_token) = wire::parse_session_setup(&a.msg)?;
            match a.header.status {
                status::MORE_PROCESSING_REQUIRED => {
                    preauth = sha512(&[&preauth, &a.msg]);
                    token = ctx
                        .step(Some(&server_token))
                        .map_err(Error::Auth)?
                        .ok_or_else(|| Error::Auth("the security context ended early".into()))?;
                }
                status::SUCCESS => {
                    if !server_token.is_empty() || !ctx.is_complete() {
                        // The server's last token (Kerberos' AP-REP, for
                        // mutual authentication) completes the context.
                        ctx.step((!server_token.is_empty()).then_some(server_token.as_slice()))
                            .map_err(Error::Auth)?;
                    }
                    if !ctx.is_complete() {
                        return Err(Error::Auth(
                            "the server accepted the logon but the security context is not \
                             complete (no mutual authentication)"
                                .into(),
                        ));
                    }
                    if flags & (wire::SESSION_FLAG_IS_GUEST | wire::SESSION_FLAG_IS_NULL) != 0 {
                        if !guest {
                            return Err(Error::Auth(
                                "the server logged the account on as a guest, not as itself".into(),
                            ));
                        }
                        let _ = self.inner.session.set(Session {
                            id: session_id,
                            signing: None,
                            crypt: None,
                            encrypt_all: false,
                        });
                        return Ok(());
                    }
                    let encrypt_all = flags & wire::SESSION_FLAG_ENCRYPT_DATA != 0;
                    let cipher = self.inner.negotiated.cipher;
                    if encrypt_all && cipher.is_none() {
                        return Err(Error::Unsupported(
                            "the server requires SMB encryption for this session but offered \
                             no cipher this client speaks (AES-128-GCM, AES-128-CCM)"
                                .into(),
                        ));
                    }
                    let key = ctx.session_key().map_err(Error::Auth)?;
                    let mut k = [0u8; 16];
                    for (d, s) in k.iter_mut().zip(&key) {
                        *d = *s;
                    }
                    let v311 = self.dialect() == wire::DIALECT_311;
                    let signing = Signer {
                        key: if v311 {
                            kdf(&k, b"SMBSigningKey\0", &preauth)
                        } else {
                            kdf(&k, b"SMB2AESCMAC\0", b"SmbSign\0")
                        },
                        gmac: self.inner.negotiated.signing == Some(wire::SIGNING_AES_GMAC),
                    };
                    if a.header.flags & wire::FLAG_SIGNED == 0 || !signing.verify(&mut a.msg) {
                        return Err(Error::BadSignature("SESSION_SETUP"));
                    }
                    let crypt = cipher.map(|cipher| {
                        let (c2s, s2c) = if v311 {
                            (
                                kdf(&k, b"SMBC2SCipherKey\0", &preauth),
                                kdf(&k, b"SMBS2CCipherKey\0", &preauth),
                            )
                        } else {
                            (
                                kdf(&k, b"SMB2AESCCM\0", b"ServerIn \0"),
                                kdf(&k, b"SMB2AESCCM\0", b"ServerOut\0"),
                            )
                        };
                        Crypt {
                            cipher,
                            c2s,
                            s2c,
                            next_nonce: AtomicU64::new(0),
                        }
                    });
                    let _ = self.inner.session.set(Session {
                        id: session_id,
                        signing: Some(signing),
                        crypt,
                        encrypt_all,
                    });
                    return Ok(());
                }
                s => {
                    return Err(Error::Status {
                        command: "SESSION_SETUP",
                        status: s,
                    })
                }
            }
        }
        Err(Error::Auth("the logon took too many round trips".into()))
    }

    /// Connect to `share` on `server` (as the UNC path names it).
    pub fn tree_connect(&self, server: &str, share: &str) -> Result<Tree, Error> {
        let body = wire::tree_connect(&format!("\\\\{server}\\{share}"))?;
        let a = self.request(cmd::TREE_CONNECT, 0, &body, false)?;
        let flags = wire::parse_tree_connect(&a.msg)?;
        let encrypt = flags & wire::SHAREFLAG_ENCRYPT_DATA != 0;
        let keyless = self
            .inner
            .session
            .get()
            .is_some_and(|s| s.signing.is_none());
        if encrypt && keyless {
            return Err(Error::Unsupported(format!(
                "\\\\{server}\\{share} requires SMB encryption, which a guest session cannot do"
            )));
        }
        if encrypt && self.inner.negotiated.cipher.is_none() {
            return Err(Error::Unsupported(format!(
                "\\\\{server}\\{share} requires SMB encryption but the server offered no \
                 cipher this client speaks (AES-128-GCM, AES-128-CCM)"
            )));
        }
        Ok(Tree {
            client: self.clone(),
            id: a.header.tree_id,
            encrypt,
        })
    }
}

fn send_frame(stream: &mut TcpStream, msg: &[u8]) -> io::Result<()> {
    let len = u32::try_from(msg.len())
        .ok()
        .filter(|l| *l < 1 << 24)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a message over 16 MiB"))?;
    let head = len.to_be_bytes();
    // One write per message (with TCP_NODELAY): no wait on a delayed ACK.
    let mut frame = Vec::with_capacity(4 + msg.len());
    frame.extend_from_slice(&head);
    frame.extend_from_slice(msg);
    stream.write_all(&frame)
}

fn check(a: &Answer, command: u16) -> Result<(), Error> {
    if a.header.status == status::SUCCESS {
        Ok(())
    } else {
        Err(Error::Status {
            command: cmd::name(command),
            status: a.header.status,
        })
    }
}

/// A connected share.
#[derive(Debug, Clone)]
pub struct Tree {
    client: Client,
    id: u32,
    /// The share asks for encryption.
    encrypt: bool,
}

impl Tree {
    /// Open `path` (`\`-separated, relative to the share) for reading.
    pub fn open(&self, path: &str) -> Result<Handle, Error> {
        let a = self
            .client
            .request(cmd::CREATE, self.id, &wire::create(path)?, self.encrypt)?;
        let o = wire::parse_create(&a.msg)?;
        Ok(Handle {
            tree: self.clone(),
            file_id: o.file_id,
            is_dir: o.is_dir,
            size: o.size,
        })
    }
}

/// An open file or folder. Closed by [`Handle::close`]; one dropped
/// unclosed goes with its connection.
#[derive(Debug)]
pub struct Handle {
    tree: Tree,
    file_id: [u8; 16],
    is_dir: bool,
    size: u64,
}

/// A READ on its way.
#[derive(Debug)]
pub struct PendingRead {
    pending: Pending,
    len: usize,
}

impl PendingRead {
    /// Wait for the data and copy it to the front of `buf`; how many
    /// bytes came (0 at the end of the file).
    pub fn wait_into(self, buf: &mut [u8]) -> Result<usize, Error> {
        let a = self.pending.wait()?;
        if a.header.status == status::END_OF_FILE {
            return Ok(0);
        }
        check(&a, cmd::READ)?;
        let range = wire::parse_read(&a.msg, self.len.min(buf.len()))?;
        let n = range.len();
        if let (Some(to), Some(from)) = (buf.get_mut(..n), a.msg.get(range)) {
            to.copy_from_slice(from);
        }
        Ok(n)
    }
}

impl Handle {
    pub fn is_dir(&self) -> bool {
        self.is_dir
    }

    /// The file's size when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Ask for `len` bytes at `offset` (at most [`Client::max_read`]),
    /// without waiting for them: several may be in flight.
    pub fn start_read(&self, offset: u64, len: u32) -> Result<PendingRead, Error> {
        let len = len.clamp(1, self.tree.client.max_read());
        // A READ costs a credit per 64 KiB ([MS-SMB2] 3.1.5.2).
        let charge = u16::try_from(len.div_ceil(64 << 10)).unwrap_or(u16::MAX);
        let pending = self.tree.client.send(
            cmd::READ,
            self.tree.id,
            &wire::read(&self.file_id, offset, len),
            charge,
            self.tree.encrypt,
        )?;
        Ok(PendingRead {
            pending,
            len: len as usize,
        })
    }

    /// The folder's entries, `.` and `..` included, at most `max`.
    pub fn list(&self, max: usize) -> Result<Vec<DirEntry>, Error> {
        let mut out = Vec::new();
        let chunk = DIR_CHUNK.min(self.tree.client.inner.negotiated.max_transact.max(1024));
        let mut first = true;
        loop {
            let a = self
                .tree
                .client
                .send(
                    cmd::QUERY_DIRECTORY,
                    self.tree.id,
                    &wire::query_directory(&self.file_id, first, chunk),
                    1,
                    self.tree.encrypt,
                )?
                .wait()?;
            first = false;
            if a.header.status == status::NO_MORE_FILES {
                return Ok(out);
            }
            check(&a, cmd::QUERY_DIRECTORY)?;
            let before = out.len();
            wire::parse_query_directory(&a.msg, &mut out, max)?;
            if out.len() == before {
                return Err(Error::Protocol(
                    "a QUERY_DIRECTORY answer with no entry and no end".into(),
                ));
            }
        }
    }

    pub fn close(&self) -> Result<(), Error> {
        self.tree
            .client
            .request(
                cmd::CLOSE,
                self.tree.id,
                &wire::close(&self.file_id),
                self.tree.encrypt,
            )
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [MS-SMB2] / SMB 3.0 test vector (Microsoft's "SMB 3.0 signing"
    /// blog example): the KDF with the SMB 3.0 label and context.
    #[test]
    fn the_kdf_follows_sp800_108() {
        // An independent check of the construction: HMAC-SHA256 of the
        // fixed input, computed here by hand from its parts.
        use hmac::Mac as _;
        let key = [7u8; 16];
        let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&key).unwrap();
        mac.update(b"\x00\x00\x00\x01SMB2AESCMAC\x00\x00SmbSign\x00\x00\x00\x00\x80");
        let want = mac.finalize().into_bytes();
        assert_eq!(kdf(&key, b"SMB2AESCMAC\0", b"SmbSign\0"), want[..16]);
    }

    #[test]
    fn a_signed_message_verifies_and_a_changed_one_does_not() {
        for gmac in [false, true] {
            let s = Signer {
                key: [3u8; 16],
                gmac,
            };
            let mut msg = wire::header(cmd::READ, 1, 1, 5, 1, 9);
            msg.extend_from_slice(&wire::read(&[1; 16], 0, 4096));
            s.sign(&mut msg);
            assert_ne!(msg[48..64], [0; 16]);
            assert!(s.verify(&mut msg.clone()));
            let mut changed = msg.clone();
            changed[70] ^= 1;
            assert!(!s.verify(&mut changed));
            // GMAC binds the message id (its nonce) too.
            let mut other_id = msg.clone();
            other_id[24] ^= 1;
            assert!(!s.verify(&mut other_id));
        }
    }

    /// AES-CMAC of the test vector of RFC 4493 (example 2, 16 bytes), to
    /// show the signature is the standard CMAC over the whole message.
    #[test]
    fn cmac_is_rfc_4493s() {
        let key: [u8; 16] = [
            0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf,
            0x4f, 0x3c,
        ];
        let mut mac = <cmac::Cmac<aes::Aes128> as cmac::Mac>::new((&key).into());
        mac.update(&[
            0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93,
            0x17, 0x2a,
        ]);
        let tag: [u8; 16] = mac.finalize().into_bytes().into();
        assert_eq!(
            tag,
            [
                0x07, 0x0a, 0x16, 0xb4, 0x6b, 0x4d, 0x41, 0x44, 0xf7, 0x9b, 0xdd, 0x9d, 0xd0, 0x4a,
                0x28, 0x7c
            ]
        );
    }

    #[test]
    fn sealed_messages_open_and_a_changed_byte_is_refused() {
        for cipher in [wire::CIPHER_AES128_GCM, wire::CIPHER_AES128_CCM] {
            // The same key both ways, so a sealed message opens here.
            let c = Crypt {
                cipher,
                c2s: [9; 16],
                s2c: [9; 16],
                next_nonce: AtomicU64::new(7),
            };
            let mut msg = wire::header(cmd::READ, 1, 1, 5, 1, 0x55);
            msg.extend_from_slice(&wire::read(&[1; 16], 0, 4096));
            let sealed = c.seal(0x55, msg.clone()).unwrap();
            assert_eq!(sealed.len(), wire::TRANSFORM_LEN + msg.len());
            assert_ne!(&sealed[wire::TRANSFORM_LEN..], &msg[..]);
            assert_eq!(c.open(0x55, sealed.clone()).unwrap(), msg);
            // Nonces differ from message to message.
            let again = c.seal(0x55, msg.clone()).unwrap();
            assert_ne!(sealed[20..36], again[20..36]);
            let mut bad = sealed.clone();
            bad[wire::TRANSFORM_LEN + 3] ^= 1;
            assert!(matches!(c.open(0x55, bad), Err(Error::BadSignature(_))));
            assert!(c.open(0x56, sealed).is_err());
        }
    }

    #[test]
    fn random_values_differ() {
        assert_ne!(random::<32>(), random::<32>());
    }
}
