//! A tiny assembler: a byte buffer at a known origin, named labels, and
//! fix-ups for relative jumps and absolute 16-bit addresses. The
//! instructions themselves are written as bytes by the caller with their
//! mnemonic as a comment; this only saves counting displacements by hand,
//! which is where hand assembly goes wrong.
//!
//! Labels and fix-ups are fixed by this crate's code, never by input, so an
//! unresolved label or an out-of-range short jump is a bug here; `finish`
//! reports it as an error which the crate's tests turn into a failure.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// 8-bit displacement relative to the end of the instruction.
    Rel8,
    /// 16-bit displacement relative to the end of the instruction.
    Rel16,
    /// The label's absolute 16-bit offset (origin + position).
    Abs16,
}

#[derive(Debug)]
pub(crate) struct Asm {
    /// The offset (in segment 0) where the first byte runs.
    org: u16,
    pub(crate) bytes: Vec<u8>,
    labels: BTreeMap<&'static str, usize>,
    fixups: Vec<(usize, usize, &'static str, Kind)>,
}

impl Asm {
    pub(crate) fn new(org: u16) -> Self {
        Asm {
            org,
            bytes: Vec::new(),
            labels: BTreeMap::new(),
            fixups: Vec::new(),
        }
    }

    /// The absolute address of the next byte.
    pub(crate) fn here(&self) -> u16 {
        self.org.wrapping_add(self.bytes.len() as u16)
    }

    /// Appends raw bytes (an instruction or data).
    pub(crate) fn emit(&mut self, b: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(b);
        self
    }

    pub(crate) fn label(&mut self, name: &'static str) -> &mut Self {
        self.labels.insert(name, self.bytes.len());
        self
    }

    fn fixup(&mut self, opcode: &[u8], name: &'static str, kind: Kind, width: usize) -> &mut Self {
        self.emit(opcode);
        let at = self.bytes.len();
        self.bytes.resize(at + width, 0);
        self.fixups.push((at, at + width, name, kind));
        self
    }

    /// `opcode rel8` to `name` (jcc short, jmp short, loop).
    pub(crate) fn rel8(&mut self, opcode: &[u8], name: &'static str) -> &mut Self {
        self.fixup(opcode, name, Kind::Rel8, 1)
    }

    /// `opcode rel16` to `name` (call, jmp near).
    pub(crate) fn rel16(&mut self, opcode: &[u8], name: &'static str) -> &mut Self {
        self.fixup(opcode, name, Kind::Rel16, 2)
    }

    /// `opcode addr16`, the absolute address of `name`, then `tail` bytes.
    pub(crate) fn abs16(&mut self, opcode: &[u8], name: &'static str, tail: &[u8]) -> &mut Self {
        self.fixup(opcode, name, Kind::Abs16, 2).emit(tail)
    }

    /// `opcode rel16` to an absolute address outside this buffer (code
    /// assembled separately, e.g. the boot sector's routines from its
    /// second sector).
    pub(crate) fn rel16_to(&mut self, opcode: &[u8], target: u16) -> &mut Self {
        self.emit(opcode);
        let end = self.here().wrapping_add(2);
        self.emit(&target.wrapping_sub(end).to_le_bytes())
    }

    /// The absolute address of a label, once defined.
    pub(crate) fn addr(&self, name: &str) -> Option<u16> {
        self.labels
            .get(name)
            .map(|&p| self.org.wrapping_add(p as u16))
    }

    /// Resolves every fix-up.
    pub(crate) fn finish(mut self) -> Result<Vec<u8>, String> {
        for (at, end, name, kind) in std::mem::take(&mut self.fixups) {
            let target = *self
                .labels
                .get(name)
                .ok_or_else(|| format!("undefined label {name}"))?;
            let d = target as i64 - end as i64;
            let field: Vec<u8> = match kind {
                Kind::Rel8 => {
                    let d = i8::try_from(d)
                        .map_err(|_| format!("short jump to {name} out of range ({d})"))?;
                    vec![d as u8]
                }
                Kind::Rel16 => (d as i16).to_le_bytes().to_vec(),
                Kind::Abs16 => self.org.wrapping_add(target as u16).to_le_bytes().to_vec(),
            };
            let slot = self
                .bytes
                .get_mut(at..end)
                .ok_or_else(|| format!("fix-up for {name} outside the code"))?;
            slot.copy_from_slice(&field);
        }
        Ok(self.bytes)
    }
}
