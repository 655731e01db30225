//! A very small "assembler": a byte buffer with named labels and relative
//! fix-ups. The instructions themselves are written as bytes by the caller
//! (with a comment giving the mnemonic); this only saves us from counting
//! jump displacements by hand, which is where hand assembly usually goes wrong.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy)]
enum Width {
    Rel8,
    Rel32,
    /// The 16-bit distance from another label to the target.
    Diff16(&'static str),
}

#[derive(Debug, Default)]
pub(crate) struct Asm {
    pub(crate) bytes: Vec<u8>,
    labels: BTreeMap<&'static str, usize>,
    /// (position of the displacement field, end of the instruction, label, width)
    fixups: Vec<(usize, usize, &'static str, Width)>,
}

impl Asm {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Appends raw instruction bytes.
    pub(crate) fn emit(&mut self, b: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(b);
        self
    }

    /// Marks the current position as `name`.
    pub(crate) fn label(&mut self, name: &'static str) -> &mut Self {
        self.labels.insert(name, self.bytes.len());
        self
    }

    /// Emits `opcode` followed by an 8-bit displacement to `target`, relative
    /// to the end of the instruction (x86 short jumps, `loop`, `jcc rel8`).
    pub(crate) fn rel8(&mut self, opcode: &[u8], target: &'static str) -> &mut Self {
        self.emit(opcode);
        let at = self.bytes.len();
        self.bytes.push(0);
        self.fixups.push((at, at + 1, target, Width::Rel8));
        self
    }

    /// Emits `opcode` followed by a 32-bit displacement to `target`, relative
    /// to the end of the instruction (x86-64 RIP-relative addressing, `call rel32`).
    pub(crate) fn rel32(&mut self, opcode: &[u8], target: &'static str) -> &mut Self {
        self.emit(opcode);
        let at = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 4]);
        self.fixups.push((at, at + 4, target, Width::Rel32));
        self
    }

    /// Emits `opcode` followed by the 16-bit value `offset(target) - offset(base)`.
    pub(crate) fn diff16(
        &mut self,
        opcode: &[u8],
        target: &'static str,
        base: &'static str,
    ) -> &mut Self {
        self.emit(opcode);
        let at = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 2]);
        self.fixups.push((at, at + 2, target, Width::Diff16(base)));
        self
    }

    /// Resolves every fix-up. Labels and displacements are fixed by the code in
    /// this crate, never by input, so an unresolvable one is a bug in this
    /// crate; the debug assertions catch it in the crate's own tests.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        for (at, end, name, width) in std::mem::take(&mut self.fixups) {
            let target = self.labels.get(name).copied();
            debug_assert!(target.is_some(), "undefined label {name}");
            let target = target.unwrap_or(end) as i64;
            match width {
                Width::Rel8 => {
                    let d = target - end as i64;
                    debug_assert!((-128..=127).contains(&d), "rel8 out of range to {name}");
                    self.bytes[at] = d as i8 as u8;
                }
                Width::Rel32 => {
                    let d = (target - end as i64) as i32;
                    self.bytes[at..at + 4].copy_from_slice(&d.to_le_bytes());
                }
                Width::Diff16(base) => {
                    let base = self.labels.get(base).copied();
                    debug_assert!(base.is_some(), "undefined label");
                    let v = (target as u16).wrapping_sub(base.unwrap_or(0) as u16);
                    self.bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        self.bytes
    }
}
