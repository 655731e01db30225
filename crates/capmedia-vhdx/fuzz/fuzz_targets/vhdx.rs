//! Fuzz the VHDX reader: open, then read the whole virtual disk.
//!
//! A VHDX is at least a few MiB (1 MiB header section, 1 MiB aligned
//! regions), too large for a fuzzer to mutate byte by byte, so the input
//! describes a sparse file: `flags: u8, len: u32` (capped at 16 MiB), then
//! records `offset: u32, n: u16, bytes[n]` laid over zeros. Flag bit 0 asks
//! to recompute the headers' and region tables' CRC-32C after patching, so
//! mutations reach the checks behind the checksums. The seeds are the files
//! `capmedia-vhdx`'s `fuzz_seeds` example writes, in this encoding.
#![no_main]

use std::io::{self, Read, Seek, SeekFrom};

use libfuzzer_sys::fuzz_target;

const MIB: u64 = 1 << 20;
const MAX_LEN: u64 = 16 * MIB;

/// The first MiB held whole (so checksums can be resealed), the rest as
/// patches over zeros.
struct Sparse {
    len: u64,
    head: Vec<u8>,
    patches: Vec<(u64, Vec<u8>)>,
    pos: u64,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl Sparse {
    fn parse(data: &[u8]) -> Option<(Sparse, bool)> {
        let flags = *data.first()?;
        let len = u64::from(u32_at(data, 1)?) % (MAX_LEN + 1);
        let mut s = Sparse {
            len,
            head: vec![0u8; MIB as usize],
            patches: Vec::new(),
            pos: 0,
        };
        let mut at = 5;
        while let Some(off) = u32_at(data, at) {
            let Some(n) = data.get(at + 4..at + 6) else {
                break;
            };
            let n = usize::from(u16::from_le_bytes([n[0], n[1]]));
            let bytes = data.get(at + 6..).unwrap_or(&[]);
            let bytes = &bytes[..n.min(bytes.len())];
            let off = u64::from(off) % MAX_LEN;
            for (i, &b) in bytes.iter().enumerate() {
                if let Some(h) = s.head.get_mut(off as usize + i) {
                    *h = b;
                }
            }
            if off + bytes.len() as u64 > MIB {
                s.patches.push((off, bytes.to_vec()));
            }
            at += 6 + bytes.len();
        }
        Some((s, flags & 1 != 0))
    }

    fn reseal(&mut self) {
        const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
        for (at, len) in [
            (64usize << 10, 4096usize),
            (128 << 10, 4096),
            (192 << 10, 64 << 10),
            (256 << 10, 64 << 10),
        ] {
            let s = &mut self.head[at..at + len];
            s[4..8].fill(0);
            let sum = CRC.checksum(s);
            s[4..8].copy_from_slice(&sum.to_le_bytes());
        }
    }
}

impl Read for Sparse {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.len - self.pos) as usize;
        let out = &mut buf[..n];
        out.fill(0);
        let (start, end) = (self.pos, self.pos + n as u64);
        if start < MIB {
            let e = end.min(MIB);
            out[..(e - start) as usize].copy_from_slice(&self.head[start as usize..e as usize]);
        }
        for (off, bytes) in &self.patches {
            let (ps, pe) = ((*off).max(MIB), off + bytes.len() as u64);
            let (s, e) = (ps.max(start), pe.min(end));
            if s < e {
                out[(s - start) as usize..(e - start) as usize]
                    .copy_from_slice(&bytes[(s - off) as usize..(e - off) as usize]);
            }
        }
        self.pos = end;
        Ok(n)
    }
}

impl Seek for Sparse {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((mut file, reseal)) = Sparse::parse(data) else {
        return;
    };
    if reseal {
        file.reseal();
    }
    if let Ok(mut r) = capmedia_vhdx::VhdxReader::open(file) {
        let _ = r.info();
        let mut buf = vec![0u8; 1 << 20];
        // At most 16 MiB of disk: the reader is bounded, the fuzzer's time too.
        for _ in 0..16 {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
});
