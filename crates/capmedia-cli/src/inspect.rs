//! `capmedia inspect`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

pub fn run(file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let info = capmedia_arch::inspect(file)
        .with_context(|| format!("cannot inspect {}", file.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        print!("{info}");
    }
    Ok(ExitCode::SUCCESS)
}
