//! A sink written against the SDK alone: it lays the media tree out in a
//! folder. Useful for inspecting a plan, and the proof that third parties can
//! add sinks.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use capmedia_sink::content::{MediaPlan, Volume, MANIFEST_PATH};
use capmedia_sink::manifest::{self, DirReader, Manifest};
use capmedia_sink::{
    Cancel, CheckReport, MediaSink, Progress, SinkError, SinkInfo, VerifyReport, VerifyRequest,
    WriteReport,
};

#[derive(Default)]
struct FolderSink;

fn tmp_name(out: &Path) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    out.with_file_name(format!(".{name}.folder-sink-tmp"))
}

fn io_err(what: &str, p: &Path, e: io::Error) -> SinkError {
    SinkError::io(format!("{what} {}: {e}", p.display()))
}

impl MediaSink for FolderSink {
    fn describe(&self) -> SinkInfo {
        SinkInfo {
            name: "folder".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "the media tree, written into a folder".into(),
            options: vec![],
        }
    }

    fn check(&self, plan: &MediaPlan) -> Result<CheckReport, SinkError> {
        let parent = plan.output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(SinkError::refused(format!(
                "output folder {} does not exist",
                parent.display()
            )));
        }
        Ok(CheckReport {
            volumes: vec![Volume {
                number: 1,
                count: 1,
                output: plan.output.clone(),
                entries: plan.entries.iter().map(|e| e.path.clone()).collect(),
                used: plan.content_bytes(),
                capacity: plan.capacity,
            }],
            notes: vec![],
        })
    }

    fn write(
        &self,
        plan: &MediaPlan,
        progress: &dyn Progress,
        cancel: &dyn Cancel,
    ) -> Result<WriteReport, SinkError> {
        self.check(plan)?;
        let tmp = tmp_name(&plan.output);
        let _ = fs::remove_dir_all(&tmp);
        let result = (|| {
            let total = plan.content_bytes();
            let mut done = 0;
            for e in &plan.entries {
                if cancel.is_cancelled() {
                    return Err(SinkError::cancelled());
                }
                let dst = e.path.to_host_path(&tmp);
                if let Some(d) = dst.parent() {
                    fs::create_dir_all(d).map_err(|x| io_err("creating", d, x))?;
                }
                let mut r = e.source.open().map_err(|x| io_err("reading", &dst, x))?;
                let mut w = fs::File::create(&dst).map_err(|x| io_err("creating", &dst, x))?;
                done += io::copy(&mut r, &mut w).map_err(|x| io_err("writing", &dst, x))?;
                progress.update("write", done, total);
            }
            let m = Manifest::for_plan(plan).to_bytes();
            fs::write(tmp.join(MANIFEST_PATH), m).map_err(|x| io_err("writing", &tmp, x))?;
            let outcome = manifest::verify(&mut DirReader(tmp.clone()), &mut |_, _| {})
                .map_err(|x| SinkError::corrupt(x.to_string()))?;
            if !outcome.is_ok() {
                return Err(SinkError::corrupt("read-back differs"));
            }
            let _ = fs::remove_dir_all(&plan.output);
            fs::rename(&tmp, &plan.output).map_err(|x| io_err("renaming", &tmp, x))
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result?;
        Ok(WriteReport::single(
            "folder",
            plan,
            plan.output.clone(),
            plan.content_bytes(),
            true,
        ))
    }

    fn verify(
        &self,
        request: &VerifyRequest,
        progress: &dyn Progress,
    ) -> Result<VerifyReport, SinkError> {
        VerifyReport::each(request, |out| {
            manifest::verify(&mut DirReader(out.to_path_buf()), &mut |d, t| {
                progress.update("verify", d, t)
            })
            .map_err(|e| SinkError::corrupt(format!("{}: {e}", out.display())))
        })
    }
}

capmedia_sink::export_sink!(FolderSink);
