//! The benchmark rows. Each issue that promises a speed or memory figure adds
//! its row here.

use anyhow::Result;

use super::{Ctx, Pair};

pub struct Row {
    pub name: &'static str,
    pub about: &'static str,
    pub setup: fn(&Ctx) -> Result<Pair>,
}

pub fn rows() -> Vec<Row> {
    vec![]
}
