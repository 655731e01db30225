//! SMB2 messages as bytes ([MS-SMB2] 2.2): the few requests a read-only
//! client sends, and bounded parsers of the server's answers. Pure
//! functions, so the parsers can be fuzzed on their own.

use crate::Error;

pub const HEADER_LEN: usize = 64;

/// Commands ([MS-SMB2] 2.2.1.2).
pub mod cmd {
    pub const NEGOTIATE: u16 = 0;
    pub const SESSION_SETUP: u16 = 1;
    pub const TREE_CONNECT: u16 = 3;
    pub const CREATE: u16 = 5;
    pub const CLOSE: u16 = 6;
    pub const READ: u16 = 8;
    pub const QUERY_DIRECTORY: u16 = 0x0e;

    pub fn name(c: u16) -> &'static str {
        match c {
            NEGOTIATE => "NEGOTIATE",
            SESSION_SETUP => "SESSION_SETUP",
            TREE_CONNECT => "TREE_CONNECT",
            CREATE => "CREATE",
            CLOSE => "CLOSE",
            READ => "READ",
            QUERY_DIRECTORY => "QUERY_DIRECTORY",
            _ => "an unknown command",
        }
    }
}

/// Header flags.
pub const FLAG_RESPONSE: u32 = 0x1;
pub const FLAG_ASYNC: u32 = 0x2;
pub const FLAG_SIGNED: u32 = 0x8;

/// NT status codes the client itself acts on ([MS-ERREF] 2.3.1).
pub mod status {
    pub const SUCCESS: u32 = 0;
    pub const PENDING: u32 = 0x0000_0103;
    pub const NO_MORE_FILES: u32 = 0x8000_0006;
    pub const END_OF_FILE: u32 = 0xC000_0011;
    pub const MORE_PROCESSING_REQUIRED: u32 = 0xC000_0016;
}

/// Dialects offered: SMB 3.0, 3.0.2 and 3.1.1, the ones with AES-CMAC
/// signing (every DP's Windows Server since 2012 speaks them).
pub const DIALECTS: [u16; 3] = [0x0300, 0x0302, 0x0311];
pub const DIALECT_311: u16 = 0x0311;

/// Client capability: multi-credit requests (READs over 64 KiB).
pub const CAP_LARGE_MTU: u32 = 0x4;
/// Capability (3.0, 3.0.2): the client or server can encrypt (AES-128-CCM).
pub const CAP_ENCRYPTION: u32 = 0x40;
/// Ciphers ([MS-SMB2] 2.2.3.1.2), the 128-bit ones this client offers.
pub const CIPHER_AES128_CCM: u16 = 1;
pub const CIPHER_AES128_GCM: u16 = 2;
/// Signing algorithms ([MS-SMB2] 2.2.3.1.7), the ones this client offers.
pub const SIGNING_AES_CMAC: u16 = 1;
pub const SIGNING_AES_GMAC: u16 = 2;
/// Negotiate context types.
const CTX_PREAUTH: u16 = 1;
const CTX_ENCRYPTION: u16 = 2;
const CTX_SIGNING: u16 = 8;
/// The transform header of an encrypted message.
pub const TRANSFORM_LEN: usize = 52;
/// Share flag: the share must be reached encrypted.
pub const SHAREFLAG_ENCRYPT_DATA: u32 = 0x8000;
/// Session flags.
pub const SESSION_FLAG_IS_GUEST: u16 = 0x1;
pub const SESSION_FLAG_IS_NULL: u16 = 0x2;
pub const SESSION_FLAG_ENCRYPT_DATA: u16 = 0x4;
/// NEGOTIATE security mode: signing enabled (every logon signs anyway).
pub const SIGNING_ENABLED: u16 = 0x1;

/// A parsed SMB2 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub credit_charge: u16,
    pub status: u32,
    pub command: u16,
    pub credits: u16,
    pub flags: u32,
    pub next_command: u32,
    pub message_id: u64,
    pub tree_id: u32,
    pub session_id: u64,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, Error> {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or_else(|| short(at + 2))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, Error> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| short(at + 4))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, Error> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| short(at + 8))
}

fn short(need: usize) -> Error {
    Error::Protocol(format!(
        "a message shorter than its fields ({need} bytes needed)"
    ))
}

/// `len` bytes at `offset` of `msg` (offsets count from the header's start).
fn slice_at(msg: &[u8], offset: usize, len: usize) -> Result<&[u8], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    offset
        .checked_add(len)
        .and_then(|end| msg.get(offset..end))
        .ok_or_else(|| {
            Error::Protocol(format!(
                "a buffer of {len} bytes at offset {offset} lies outside the {}-byte message",
                msg.len()
            ))
        })
}

pub fn parse_header(msg: &[u8]) -> Result<Header, Error> {
    match msg.get(..4) {
        Some(b"\xfeSMB") => {}
        Some(b"\xfdSMB") => {
            return Err(Error::Protocol(
                "an encrypted message where none can be (before the logon, or inside another)"
                    .into(),
            ))
        }
        _ => return Err(Error::Protocol("not an SMB2 message".into())),
    }
    if u16_at(msg, 4)? != 64 {
        return Err(Error::Protocol("an SMB2 header of the wrong size".into()));
    }
    let flags = u32_at(msg, 16)?;
    Ok(Header {
        credit_charge: u16_at(msg, 6)?,
        status: u32_at(msg, 8)?,
        command: u16_at(msg, 12)?,
        credits: u16_at(msg, 14)?,
        flags,
        next_command: u32_at(msg, 20)?,
        message_id: u64_at(msg, 24)?,
        // An async answer has an AsyncId where the tree id would be.
        tree_id: if flags & FLAG_ASYNC != 0 {
            0
        } else {
            u32_at(msg, 36)?
        },
        session_id: u64_at(msg, 40)?,
    })
}

/// A request's header; the signature is filled in when it is signed.
pub fn header(
    command: u16,
    credit_charge: u16,
    credits: u16,
    message_id: u64,
    tree_id: u32,
    session_id: u64,
) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN + 128);
    h.extend_from_slice(b"\xfeSMB");
    h.extend_from_slice(&64u16.to_le_bytes());
    h.extend_from_slice(&credit_charge.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // channel sequence, reserved
    h.extend_from_slice(&command.to_le_bytes());
    h.extend_from_slice(&credits.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // flags
    h.extend_from_slice(&0u32.to_le_bytes()); // next command
    h.extend_from_slice(&message_id.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // reserved (process id)
    h.extend_from_slice(&tree_id.to_le_bytes());
    h.extend_from_slice(&session_id.to_le_bytes());
    h.extend_from_slice(&[0; 16]);
    h
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn pad8(b: &mut Vec<u8>) {
    while !b.len().is_multiple_of(8) {
        b.push(0);
    }
}

/// The NEGOTIATE body: the dialects, and for 3.1.1 the pre-authentication
/// integrity context (SHA-512 with `salt`).
pub fn negotiate(client_guid: [u8; 16], salt: [u8; 32]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&36u16.to_le_bytes());
    b.extend_from_slice(&(DIALECTS.len() as u16).to_le_bytes());
    b.extend_from_slice(&SIGNING_ENABLED.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&(CAP_LARGE_MTU | CAP_ENCRYPTION).to_le_bytes());
    b.extend_from_slice(&client_guid);
    let ctx_offset_at = b.len();
    b.extend_from_slice(&0u32.to_le_bytes()); // context offset, set below
    b.extend_from_slice(&3u16.to_le_bytes()); // three contexts
    b.extend_from_slice(&0u16.to_le_bytes());
    for d in DIALECTS {
        b.extend_from_slice(&d.to_le_bytes());
    }
    // Contexts start 8-aligned from the header's start (64 is aligned).
    pad8(&mut b);
    let offset = (HEADER_LEN + b.len()) as u32;
    b[ctx_offset_at..ctx_offset_at + 4].copy_from_slice(&offset.to_le_bytes());
    // SMB2_PREAUTH_INTEGRITY_CAPABILITIES: one algorithm (SHA-512), a salt.
    b.extend_from_slice(&CTX_PREAUTH.to_le_bytes());
    b.extend_from_slice(&(4u16 + 2 + 32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&32u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&salt);
    pad8(&mut b);
    // SMB2_ENCRYPTION_CAPABILITIES: GCM preferred, CCM.
    b.extend_from_slice(&CTX_ENCRYPTION.to_le_bytes());
    b.extend_from_slice(&6u16.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&CIPHER_AES128_GCM.to_le_bytes());
    b.extend_from_slice(&CIPHER_AES128_CCM.to_le_bytes());
    pad8(&mut b);
    // SMB2_SIGNING_CAPABILITIES: GMAC preferred, CMAC.
    b.extend_from_slice(&CTX_SIGNING.to_le_bytes());
    b.extend_from_slice(&6u16.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&SIGNING_AES_GMAC.to_le_bytes());
    b.extend_from_slice(&SIGNING_AES_CMAC.to_le_bytes());
    b
}

/// What the client keeps of the NEGOTIATE answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub dialect: u16,
    pub max_transact: u32,
    pub max_read: u32,
    /// The server's first security token (SPNEGO's mechanism list).
    pub token: Vec<u8>,
    /// The cipher the server chose, if it can encrypt with one this
    /// client offered.
    pub cipher: Option<u16>,
    /// The signing algorithm the server chose (3.1.1); `None`: AES-CMAC.
    pub signing: Option<u16>,
}

pub fn parse_negotiate(msg: &[u8]) -> Result<Negotiated, Error> {
    let b = msg.get(HEADER_LEN..).ok_or_else(|| short(HEADER_LEN))?;
    if u16_at(b, 0)? != 65 {
        return Err(Error::Protocol(
            "a NEGOTIATE answer of the wrong size".into(),
        ));
    }
    let dialect = u16_at(b, 4)?;
    let off = usize::from(u16_at(b, 56)?);
    let len = usize::from(u16_at(b, 58)?);
    let capabilities = u32_at(b, 24)?;
    let (cipher, signing) = if dialect == DIALECT_311 {
        negotiate_contexts(msg, u32_at(b, 60)?, u16_at(b, 6)?)?
    } else {
        (
            (capabilities & CAP_ENCRYPTION != 0).then_some(CIPHER_AES128_CCM),
            None,
        )
    };
    Ok(Negotiated {
        dialect,
        max_transact: u32_at(b, 28)?,
        max_read: u32_at(b, 32)?,
        token: slice_at(msg, off, len)?.to_vec(),
        cipher,
        signing,
    })
}

/// The cipher and signing algorithm of a 3.1.1 NEGOTIATE answer's
/// contexts, where it names ones this client offered. At most `count`
/// contexts are read, each inside the message.
fn negotiate_contexts(
    msg: &[u8],
    offset: u32,
    count: u16,
) -> Result<(Option<u16>, Option<u16>), Error> {
    let mut at = usize::try_from(offset).unwrap_or(usize::MAX);
    let mut cipher = None;
    let mut signing = None;
    for _ in 0..count {
        let ty = u16_at(msg, at)?;
        let len = usize::from(u16_at(msg, at + 2)?);
        let data = slice_at(msg, at + 8, len)?;
        if ty == CTX_ENCRYPTION {
            let n = u16_at(data, 0)?;
            let c = u16_at(data, 2)?;
            if n != 1 {
                return Err(Error::Protocol(format!(
                    "the server chose {n} ciphers where one was expected"
                )));
            }
            cipher = [CIPHER_AES128_GCM, CIPHER_AES128_CCM]
                .contains(&c)
                .then_some(c);
        }
        if ty == CTX_SIGNING {
            let n = u16_at(data, 0)?;
            let a = u16_at(data, 2)?;
            if n != 1 || ![SIGNING_AES_GMAC, SIGNING_AES_CMAC].contains(&a) {
                return Err(Error::Protocol(format!(
                    "the server chose signing algorithm {a} (of {n}), not one offered"
                )));
            }
            signing = Some(a);
        }
        at = (at + 8 + len).next_multiple_of(8);
    }
    Ok((cipher, signing))
}

/// The transform header fields of an encrypted message: the tag, the
/// nonce, the original size and the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transform {
    pub tag: [u8; 16],
    pub nonce: [u8; 16],
    pub size: u32,
    pub session_id: u64,
}

pub fn parse_transform(msg: &[u8]) -> Result<Transform, Error> {
    if msg.get(..4) != Some(b"\xfdSMB") {
        return Err(Error::Protocol("not an encrypted SMB message".into()));
    }
    let field = |r: std::ops::Range<usize>| -> Result<[u8; 16], Error> {
        msg.get(r)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| short(TRANSFORM_LEN))
    };
    let t = Transform {
        tag: field(4..20)?,
        nonce: field(20..36)?,
        size: u32_at(msg, 36)?,
        session_id: u64_at(msg, 44)?,
    };
    if u16_at(msg, 42)? != 1 {
        return Err(Error::Protocol(
            "an encrypted message of an unknown kind".into(),
        ));
    }
    if usize::try_from(t.size).ok() != Some(msg.len() - TRANSFORM_LEN) {
        return Err(Error::Protocol(
            "an encrypted message whose size is not the one its header gives".into(),
        ));
    }
    Ok(t)
}

/// A transform header (the tag left zero, filled in once encrypted).
pub fn transform(nonce: &[u8; 16], size: u32, session_id: u64) -> [u8; TRANSFORM_LEN] {
    let mut t = [0u8; TRANSFORM_LEN];
    t[..4].copy_from_slice(b"\xfdSMB");
    t[20..36].copy_from_slice(nonce);
    t[36..40].copy_from_slice(&size.to_le_bytes());
    t[42..44].copy_from_slice(&1u16.to_le_bytes());
    t[44..52].copy_from_slice(&session_id.to_le_bytes());
    t
}

pub fn session_setup(token: &[u8]) -> Result<Vec<u8>, Error> {
    let len = u16::try_from(token.len())
        .map_err(|_| Error::Protocol("a security token over 64 KiB".into()))?;
    let mut b = Vec::with_capacity(24 + token.len());
    b.extend_from_slice(&25u16.to_le_bytes());
    b.push(0); // flags
    b.push(SIGNING_ENABLED as u8);
    b.extend_from_slice(&0u32.to_le_bytes()); // capabilities
    b.extend_from_slice(&0u32.to_le_bytes()); // channel
    b.extend_from_slice(&((HEADER_LEN + 24) as u16).to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes()); // previous session
    b.extend_from_slice(token);
    Ok(b)
}

/// SESSION_SETUP answer: the session flags and the server's token.
pub fn parse_session_setup(msg: &[u8]) -> Result<(u16, Vec<u8>), Error> {
    let b = msg.get(HEADER_LEN..).ok_or_else(|| short(HEADER_LEN))?;
    if u16_at(b, 0)? != 9 {
        return Err(Error::Protocol(
            "a SESSION_SETUP answer of the wrong size".into(),
        ));
    }
    let flags = u16_at(b, 2)?;
    let off = usize::from(u16_at(b, 4)?);
    let len = usize::from(u16_at(b, 6)?);
    Ok((flags, slice_at(msg, off, len)?.to_vec()))
}

pub fn tree_connect(unc: &str) -> Result<Vec<u8>, Error> {
    let path = utf16(unc);
    let len =
        u16::try_from(path.len()).map_err(|_| Error::Protocol("a share path too long".into()))?;
    let mut b = Vec::with_capacity(8 + path.len());
    b.extend_from_slice(&9u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&((HEADER_LEN + 8) as u16).to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&path);
    Ok(b)
}

/// TREE_CONNECT answer: the share flags.
pub fn parse_tree_connect(msg: &[u8]) -> Result<u32, Error> {
    let b = msg.get(HEADER_LEN..).ok_or_else(|| short(HEADER_LEN))?;
    if u16_at(b, 0)? != 16 {
        return Err(Error::Protocol(
            "a TREE_CONNECT answer of the wrong size".into(),
        ));
    }
    u32_at(b, 4)
}

/// Read data, read attributes, synchronize: nothing that changes a file.
const READ_ACCESS: u32 = 0x1 | 0x80 | 0x0010_0000;
/// Others may read, write and delete meanwhile: a reader never blocks the
/// DP's own work on its library.
const SHARE_ALL: u32 = 0x7;
const FILE_OPEN: u32 = 1;
const IMPERSONATION: u32 = 2;

/// CREATE (open an existing file or folder for reading) of `path`,
/// relative to the share, `\`-separated.
pub fn create(path: &str) -> Result<Vec<u8>, Error> {
    let name = utf16(path);
    let len = u16::try_from(name.len()).map_err(|_| Error::Protocol("a path too long".into()))?;
    let mut b = Vec::with_capacity(56 + name.len() + 8);
    b.extend_from_slice(&57u16.to_le_bytes());
    b.push(0); // security flags
    b.push(0); // no oplock
    b.extend_from_slice(&IMPERSONATION.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes()); // create flags
    b.extend_from_slice(&0u64.to_le_bytes()); // reserved
    b.extend_from_slice(&READ_ACCESS.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes()); // attributes
    b.extend_from_slice(&SHARE_ALL.to_le_bytes());
    b.extend_from_slice(&FILE_OPEN.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes()); // options: file or folder
    b.extend_from_slice(&((HEADER_LEN + 56) as u16).to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes()); // no create contexts
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&name);
    if name.is_empty() {
        // The buffer is at least one byte long, even for the share root.
        b.push(0);
    }
    Ok(b)
}

/// What CREATE answers: the handle, whether it is a folder, the size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    pub file_id: [u8; 16],
    pub is_dir: bool,
    pub size: u64,
}

const ATTR_DIRECTORY: u32 = 0x10;

pub fn parse_create(msg: &[u8]) -> Result<Opened, Error> {
    let b = msg.get(HEADER_LEN..).ok_or_else(|| short(HEADER_LEN))?;
    if u16_at(b, 0)? != 89 {
        return Err(Error::Protocol("a CREATE answer of the wrong size".into()));
    }
    let file_id = b
        .get(64..80)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| short(HEADER_LEN + 80))?;
    Ok(Opened {
        file_id,
        is_dir: u32_at(b, 56)? & ATTR_DIRECTORY != 0,
        size: u64_at(b, 48)?,
    })
}

pub fn close(file_id: &[u8; 16]) -> Vec<u8> {
    let mut b = Vec::with_capacity(24);
    b.extend_from_slice(&24u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(file_id);
    b
}

pub fn read(file_id: &[u8; 16], offset: u64, len: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(49);
    b.extend_from_slice(&49u16.to_le_bytes());
    b.push(0x50); // padding: where the data would start
    b.push(0); // flags
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&offset.to_le_bytes());
    b.extend_from_slice(file_id);
    b.extend_from_slice(&0u32.to_le_bytes()); // minimum count
    b.extend_from_slice(&0u32.to_le_bytes()); // channel
    b.extend_from_slice(&0u32.to_le_bytes()); // remaining
    b.extend_from_slice(&0u16.to_le_bytes()); // channel info offset
    b.extend_from_slice(&0u16.to_le_bytes()); // channel info length
    b.push(0);
    b
}

/// The data of a READ answer, as a range of `msg`, at most `asked` long.
pub fn parse_read(msg: &[u8], asked: usize) -> Result<std::ops::Range<usize>, Error> {
    let b = msg.get(HEADER_LEN..).ok_or_else(|| short(HEADER_LEN))?;
    if u16_at(b, 0)? != 17 {
        return Err(Error::Protocol("a READ answer of the wrong size".into()));
    }
    let off = usize::from(*b.get(2).ok_or_else(|| short(HEADER_LEN + 3))?);
    let len = usize::try_from(u32_at(b, 4)?).unwrap_or(usize::MAX);
    if len > asked {
        return Err(Error::Protocol(format!(
            "a READ answered {len} bytes where {asked} were asked for"
        )));
    }
    slice_at(msg, off, len)?;
    Ok(off..off + len)
}

/// FileDirectoryInformation, the one class asked for.
const FILE_DIRECTORY_INFORMATION: u8 = 1;
const RESTART_SCANS: u8 = 1;

pub fn query_directory(file_id: &[u8; 16], first: bool, out_len: u32) -> Vec<u8> {
    let pattern = utf16("*");
    let mut b = Vec::with_capacity(32 + pattern.len());
    b.extend_from_slice(&33u16.to_le_bytes());
    b.push(FILE_DIRECTORY_INFORMATION);
    b.push(if first { RESTART_SCANS } else { 0 });
    b.extend_from_slice(&0u32.to_le_bytes()); // file index
    b.extend_from_slice(file_id);
    b.extend_from_slice(&((HEADER_LEN + 32) as u16).to_le_bytes());
    b.extend_from_slice(&(pattern.len() as u16).to_le_bytes());
    b.extend_from_slice(&out_len.to_le_bytes());
    b.extend_from_slice(&pattern);
    b
}

/// One folder entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub is_dir: bool,
    pub size: u64,
}

/// The entries of a QUERY_DIRECTORY answer, appended to `out`, which may
/// hold at most `max` entries in all.
pub fn parse_query_directory(msg: &[u8], out: &mut Vec<DirEntry>, max: usize) -> Result<(), Error> {
    let b = msg.get(HEADER_LEN..).ok_or_else(|| short(HEADER_LEN))?;
    if u16_at(b, 0)? != 9 {
        return Err(Error::Protocol(
            "a QUERY_DIRECTORY answer of the wrong size".into(),
        ));
    }
    let off = usize::from(u16_at(b, 2)?);
    let len = usize::try_from(u32_at(b, 4)?).unwrap_or(usize::MAX);
    let buf = slice_at(msg, off, len)?;
    let mut at = 0usize;
    loop {
        let e = buf.get(at..).ok_or_else(|| short(at))?;
        if e.is_empty() {
            return Ok(());
        }
        let next = usize::try_from(u32_at(e, 0)?).unwrap_or(usize::MAX);
        let size = u64_at(e, 40)?;
        let attrs = u32_at(e, 56)?;
        let name_len = usize::try_from(u32_at(e, 60)?).unwrap_or(usize::MAX);
        let raw = slice_at(e, 64, name_len)?;
        if !name_len.is_multiple_of(2) {
            return Err(Error::Protocol(
                "a file name of an odd number of bytes".into(),
            ));
        }
        let units: Vec<u16> = raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let name = String::from_utf16(&units)
            .map_err(|_| Error::Protocol("a file name that is not UTF-16".into()))?;
        if out.len() >= max {
            return Err(Error::TooManyEntries(max));
        }
        out.push(DirEntry {
            name,
            is_dir: attrs & ATTR_DIRECTORY != 0,
            size,
        });
        if next == 0 {
            return Ok(());
        }
        // Entries move forward by at least a header: no loop on a
        // hostile offset.
        if next < 64 {
            return Err(Error::Protocol(
                "a folder entry that does not move forward".into(),
            ));
        }
        at = at
            .checked_add(next)
            .ok_or_else(|| Error::Protocol("a folder entry offset overflows".into()))?;
    }
}

/// Run every parser on `data` (as a whole message and as a body after a
/// valid header): the fuzz target's entry point.
pub fn parse_any(data: &[u8]) {
    let _ = parse_header(data);
    let _ = parse_transform(data);
    let mut msg = header(0, 0, 0, 0, 0, 0);
    msg.extend_from_slice(data);
    for m in [data, msg.as_slice()] {
        let _ = parse_negotiate(m);
        let _ = parse_session_setup(m);
        let _ = parse_tree_connect(m);
        let _ = parse_create(m);
        let _ = parse_read(m, 1 << 20);
        let mut out = Vec::new();
        let _ = parse_query_directory(m, &mut out, 1000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_their_structure_sizes_and_offsets() {
        let n = negotiate([1; 16], [2; 32]);
        assert_eq!(u16_at(&n, 0).unwrap(), 36);
        let ctx = u32_at(&n, 28).unwrap() as usize - HEADER_LEN;
        assert_eq!(ctx % 8, 0);
        assert_eq!(u16_at(&n, ctx).unwrap(), 1);
        assert!(n.windows(32).any(|w| w == [2; 32]));
        // The signing context comes last: GMAC, then CMAC.
        assert_eq!(&n[n.len() - 6..], &[2, 0, 2, 0, 1, 0]);
        assert_eq!(&n[n.len() - 14..n.len() - 12], &[8, 0]);
        let c = create("PkgLib\\X.INI").unwrap();
        assert_eq!(u16_at(&c, 44).unwrap() as usize, HEADER_LEN + 56);
        assert_eq!(c.len(), 56 + 24);
        assert_eq!(read(&[0; 16], 0, 1).len(), 49);
        assert_eq!(query_directory(&[0; 16], true, 1).len(), 34);
        assert_eq!(header(1, 1, 1, 7, 3, 9).len(), HEADER_LEN);
    }

    #[test]
    fn directory_entries_parse_and_hostile_ones_are_refused() {
        let mut entry = vec![0u8; 64];
        entry[40..48].copy_from_slice(&5u64.to_le_bytes());
        entry[56..60].copy_from_slice(&0x10u32.to_le_bytes());
        let name = utf16("PkgLib");
        entry[60..64].copy_from_slice(&(name.len() as u32).to_le_bytes());
        entry.extend_from_slice(&name);
        let mut msg = header(cmd::QUERY_DIRECTORY, 0, 0, 0, 0, 0);
        msg.extend_from_slice(&9u16.to_le_bytes());
        msg.extend_from_slice(&72u16.to_le_bytes());
        msg.extend_from_slice(&(entry.len() as u32).to_le_bytes());
        msg.extend_from_slice(&entry);
        let mut out = Vec::new();
        parse_query_directory(&msg, &mut out, 10).unwrap();
        assert_eq!(
            out,
            vec![DirEntry {
                name: "PkgLib".into(),
                is_dir: true,
                size: 5
            }]
        );
        // An entry pointing at itself is refused, not looped on.
        let mut looping = msg.clone();
        looping[72..76].copy_from_slice(&1u32.to_le_bytes());
        let mut out = Vec::new();
        assert!(parse_query_directory(&looping, &mut out, 10).is_err());
        // A name running past the message is refused.
        let mut long = msg.clone();
        long[72 + 60..72 + 64].copy_from_slice(&1000u32.to_le_bytes());
        assert!(parse_query_directory(&long, &mut Vec::new(), 10).is_err());
        // The cap holds.
        assert!(matches!(
            parse_query_directory(&msg, &mut Vec::new(), 0),
            Err(Error::TooManyEntries(0))
        ));
    }

    #[test]
    fn a_read_answer_longer_than_asked_is_refused() {
        let mut msg = header(cmd::READ, 0, 0, 0, 0, 0);
        msg.extend_from_slice(&17u16.to_le_bytes());
        msg.push(80);
        msg.push(0);
        msg.extend_from_slice(&4u32.to_le_bytes());
        msg.extend_from_slice(&[0; 8]);
        msg.extend_from_slice(b"data");
        assert_eq!(parse_read(&msg, 4).unwrap(), 80..84);
        assert!(parse_read(&msg, 3).is_err());
        msg.truncate(82);
        assert!(parse_read(&msg, 4).is_err());
    }

    /// The fallback for the `answers` fuzz target where cargo fuzz cannot
    /// run: every truncation of each seed answer, and deterministic
    /// mutations of them (bytes flipped, 16- and 32-bit fields set to
    /// extremes), parsed without panic. The real seeds parse.
    #[test]
    fn mutated_answers_never_panic() {
        let seeds: [&[u8]; 7] = [
            include_bytes!("../fuzz/corpus/answers/negotiate"),
            include_bytes!("../fuzz/corpus/answers/session_setup"),
            include_bytes!("../fuzz/corpus/answers/tree_connect"),
            include_bytes!("../fuzz/corpus/answers/create"),
            include_bytes!("../fuzz/corpus/answers/read"),
            include_bytes!("../fuzz/corpus/answers/query_directory"),
            include_bytes!("../fuzz/corpus/answers/transform"),
        ];
        let neg = parse_negotiate(seeds[0]).unwrap();
        assert_eq!(neg.dialect, 0x0311);
        assert_eq!(neg.cipher, Some(CIPHER_AES128_GCM));
        assert_eq!(parse_create(seeds[3]).unwrap().size, 5);
        let mut out = Vec::new();
        parse_query_directory(seeds[5], &mut out, 10).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(parse_transform(seeds[6]).unwrap().size, 80);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for seed in seeds {
            for n in 0..seed.len() {
                parse_any(&seed[..n]);
            }
            for _ in 0..5_000 {
                let mut m = seed.to_vec();
                for _ in 0..1 + next() % 4 {
                    let at = (next() % m.len() as u64) as usize;
                    match next() % 3 {
                        0 => m[at] ^= 1 << (next() % 8),
                        1 => {
                            let v = [0u8, 0xff][(next() % 2) as usize];
                            for b in m.iter_mut().skip(at).take(2) {
                                *b = v;
                            }
                        }
                        _ => {
                            for b in m.iter_mut().skip(at).take(4) {
                                *b = 0xff;
                            }
                        }
                    }
                }
                parse_any(&m);
            }
        }
    }
}
