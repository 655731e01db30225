//! The BLAKE3 of an image written front to back, with one range (the
//! manifest of a volume whose streamed files lie after it) whose bytes are
//! final only at the end.
//!
//! BLAKE3 is a tree of 1 KiB chunks, so the image is hashed as the maximal
//! subtrees that do not touch the late range, each while its bytes go by
//! (`blake3::hazmat` chaining values), and the few chunks that do touch it
//! are kept (at most the range plus two chunks) and hashed at the end; the
//! tree is then merged as `blake3::hash` would build it. So the image is
//! hashed as written, never read again, and the result is `b3sum` of the
//! final file.

use blake3::hazmat::{
    left_subtree_len, merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};
use blake3::CHUNK_LEN;

const CHUNK: u64 = CHUNK_LEN as u64;

/// A piece of the image in hashing order.
#[derive(Debug, Clone, Copy)]
struct Piece {
    start: u64,
    len: u64,
    /// Touches the late range: kept and hashed at the end.
    late: bool,
}

/// Hashes an image of a known size fed in order (gaps read as zeros),
/// where bytes in `late` may be replaced until [`ImageHash::finish`].
#[derive(Debug)]
pub(crate) struct ImageHash {
    size: u64,
    state: State,
    /// Bytes fed so far (the next offset expected).
    to: u64,
}

#[derive(Debug)]
enum State {
    /// No late range: one plain hasher.
    Plain(Box<blake3::Hasher>),
    Split(Box<Split>),
    /// Written behind itself: no hash.
    Lost,
}

#[derive(Debug)]
struct Split {
    pieces: Vec<Piece>,
    /// The piece being fed.
    at: usize,
    hasher: blake3::Hasher,
    /// Chaining values of finished subtree pieces, by piece index.
    cvs: Vec<Option<ChainingValue>>,
    /// The bytes of late pieces, from `kept_from`.
    kept: Vec<u8>,
    kept_from: u64,
}

impl ImageHash {
    /// An image of `size` bytes; `late` is the byte range patched at the end.
    pub(crate) fn new(size: u64, late: Option<(u64, u64)>) -> ImageHash {
        let state = match late {
            Some((from, to)) if size > CHUNK && from < to && to <= size => {
                let lo = from / CHUNK * CHUNK;
                let hi = to.div_ceil(CHUNK).saturating_mul(CHUNK).min(size);
                let mut pieces = Vec::new();
                split(0, size, (lo, hi), &mut pieces);
                let kept_from = pieces.iter().find(|p| p.late).map_or(0, |p| p.start);
                let mut hasher = blake3::Hasher::new();
                if let Some(p) = pieces.first() {
                    hasher.set_input_offset(p.start);
                }
                State::Split(Box::new(Split {
                    cvs: vec![None; pieces.len()],
                    pieces,
                    at: 0,
                    hasher,
                    kept: Vec::new(),
                    kept_from,
                }))
            }
            _ => State::Plain(Box::new(blake3::Hasher::new())),
        };
        ImageHash { size, state, to: 0 }
    }

    /// `buf` was written at byte `at`.
    pub(crate) fn written(&mut self, at: u64, buf: &[u8]) {
        if at < self.to || at.saturating_add(buf.len() as u64) > self.size {
            self.state = State::Lost;
            return;
        }
        let gap = at - self.to;
        self.zeros(gap);
        self.feed(buf);
    }

    fn zeros(&mut self, mut n: u64) {
        static Z: [u8; 64 * 1024] = [0; 64 * 1024];
        while n > 0 {
            let k = n.min(Z.len() as u64) as usize;
            self.feed(&Z[..k]);
            n -= k as u64;
        }
    }

    fn feed(&mut self, mut buf: &[u8]) {
        match &mut self.state {
            State::Lost => {}
            State::Plain(h) => {
                h.update(buf);
                self.to += buf.len() as u64;
            }
            State::Split(s) => {
                while !buf.is_empty() {
                    let Some(p) = s.pieces.get(s.at).copied() else {
                        self.state = State::Lost;
                        return;
                    };
                    let take = (p.start + p.len - self.to).min(buf.len() as u64) as usize;
                    let (now, rest) = buf.split_at(take);
                    if p.late {
                        s.kept.extend_from_slice(now);
                    } else {
                        s.hasher.update(now);
                    }
                    self.to += take as u64;
                    buf = rest;
                    if self.to == p.start + p.len {
                        if !p.late {
                            s.cvs[s.at] = Some(s.hasher.finalize_non_root());
                        }
                        s.at += 1;
                        s.hasher = blake3::Hasher::new();
                        if let Some(next) = s.pieces.get(s.at) {
                            s.hasher.set_input_offset(next.start);
                        }
                    }
                }
            }
        }
    }

    /// Replace bytes already fed at `at` (inside the late range).
    pub(crate) fn patch(&mut self, at: u64, bytes: &[u8]) {
        let end = at.saturating_add(bytes.len() as u64);
        match &mut self.state {
            State::Split(s) if at >= s.kept_from && end <= s.kept_from + s.kept.len() as u64 => {
                let i = (at - s.kept_from) as usize;
                s.kept[i..i + bytes.len()].copy_from_slice(bytes);
            }
            _ => self.state = State::Lost,
        }
    }

    /// The hex hash of the whole image, `None` if it was not written front
    /// to back.
    pub(crate) fn finish(mut self) -> Option<String> {
        let gap = self.size.checked_sub(self.to)?;
        self.zeros(gap);
        match self.state {
            State::Lost => None,
            State::Plain(h) => Some(h.finalize().to_hex().to_string()),
            State::Split(s) => {
                let mut cvs = s.cvs;
                for (i, p) in s.pieces.iter().enumerate() {
                    if p.late {
                        let from = usize::try_from(p.start - s.kept_from).ok()?;
                        let bytes = s.kept.get(from..from + p.len as usize)?;
                        let mut h = blake3::Hasher::new();
                        h.set_input_offset(p.start);
                        h.update(bytes);
                        cvs[i] = Some(h.finalize_non_root());
                    }
                }
                // The root is never one piece (a late range splits it).
                let left = left_subtree_len(self.size);
                let mut next = 0;
                let l = subtree(0, left, &s.pieces, &cvs, &mut next)?;
                let r = subtree(left, self.size - left, &s.pieces, &cvs, &mut next)?;
                Some(merge_subtrees_root(&l, &r, Mode::Hash).to_hex().to_string())
            }
        }
    }
}

/// The pieces of the subtree `[start, start + len)`: whole when it misses
/// `late`, else its two children (a chunk touching `late` is one piece).
fn split(start: u64, len: u64, late: (u64, u64), out: &mut Vec<Piece>) {
    let misses = start + len <= late.0 || start >= late.1;
    if misses || len <= CHUNK {
        out.push(Piece {
            start,
            len,
            late: !misses,
        });
        return;
    }
    let left = left_subtree_len(len);
    split(start, left, late, out);
    split(start + left, len - left, late, out);
}

/// The chaining value of the subtree `[start, start + len)`, from the
/// pieces in order (`next` is the first piece not yet used).
fn subtree(
    start: u64,
    len: u64,
    pieces: &[Piece],
    cvs: &[Option<ChainingValue>],
    next: &mut usize,
) -> Option<ChainingValue> {
    if let Some(p) = pieces.get(*next) {
        if p.start == start && p.len == len {
            *next += 1;
            return cvs.get(*next - 1).copied().flatten();
        }
    }
    if len <= CHUNK {
        return None;
    }
    let left = left_subtree_len(len);
    let l = subtree(start, left, pieces, cvs, next)?;
    let r = subtree(start + left, len - left, pieces, cvs, next)?;
    Some(merge_subtrees_non_root(&l, &r, Mode::Hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// Feed `img` in uneven writes (with one skipped gap of zeros), with
    /// `late` first written as junk and patched at the end.
    fn hashed(img: &[u8], late: Option<(u64, u64)>, step: usize) -> Option<String> {
        let mut h = ImageHash::new(img.len() as u64, late);
        let mut shown = img.to_vec();
        if let Some((a, b)) = late {
            shown[a as usize..b as usize].fill(0xAA);
        }
        let mut at = 0;
        while at < shown.len() {
            let n = step.min(shown.len() - at);
            if shown[at..at + n].iter().any(|&b| b != 0) {
                h.written(at as u64, &shown[at..at + n]);
            }
            at += n;
        }
        if let Some((a, b)) = late {
            h.patch(a, &img[a as usize..b as usize]);
        }
        h.finish()
    }

    #[test]
    fn equals_blake3_of_the_final_bytes() {
        for size in [
            1500usize,
            4096,
            5000,
            65536,
            200_000,
            1 << 20,
            (1 << 20) + 3000,
        ] {
            let mut img = data(size);
            // A run of zeros the writer skips.
            let z = size / 3;
            img[z..z + size / 10].fill(0);
            let want = blake3::hash(&img).to_hex().to_string();
            for step in [2048usize, 65536, 4096 * 3] {
                assert_eq!(hashed(&img, None, step).as_deref(), Some(&*want));
                for (a, b) in [
                    (0u64, 10u64),
                    (1024, 2048),
                    (1000, 3100),
                    (size as u64 / 2, size as u64 / 2 + 777),
                    (size as u64 - 5, size as u64),
                    (2047, 2049),
                ] {
                    if b as usize > size {
                        continue;
                    }
                    assert_eq!(
                        hashed(&img, Some((a, b)), step).as_deref(),
                        Some(&*want),
                        "size {size} late {a}..{b} step {step}"
                    );
                }
            }
        }
    }

    #[test]
    fn writing_behind_or_patching_outside_gives_no_hash() {
        let img = data(10_000);
        let mut h = ImageHash::new(10_000, Some((3000, 3100)));
        h.written(0, &img[..5000]);
        h.written(4000, &img[4000..5000]);
        assert_eq!(h.finish(), None);
        let mut h = ImageHash::new(10_000, Some((3000, 3100)));
        h.written(0, &img);
        h.patch(5000, &img[5000..5010]);
        assert_eq!(h.finish(), None);
    }
}
