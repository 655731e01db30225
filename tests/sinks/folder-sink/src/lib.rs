//! A sink written against the SDK alone: it lays the media tree out in a
//! folder. Useful for inspecting a plan, and the proof that third parties can
//! add sinks.

use std::fs;
use std::io;
use std::path::Path;

use capmedia_sink::content::{MediaPlan, Volume, MANIFEST_PATH};
use capmedia_sink::manifest::{self, DirReader, Manifest};
use capmedia_sink::output::{self, OutputKind, OutputSet};
use capmedia_sink::{
    Cancel, CheckReport, MediaSink, Progress, SinkError, SinkInfo, VerifyReport, VerifyRequest,
    WriteReport,
};

#[derive(Default)]
struct FolderSink;

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
            ..Default::default()
        }
    }

    fn check(&self, plan: &MediaPlan) -> Result<CheckReport, SinkError> {
        // The SDK's output protocol: the folder's place, its kind, the room.
        output::check_output(&plan.output, OutputKind::Folder, plan.content_bytes())?;
        Ok(CheckReport {
            volumes: vec![Volume::whole(plan, plan.content_bytes(), plan.capacity)],
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
        let mut out = OutputSet::begin(&plan.output, OutputKind::Folder, plan.content_bytes())?;
        let tmp = out.create_dir(&plan.output)?;
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
        let outcome = manifest::verify(&mut DirReader(tmp.clone()), progress, cancel)
            .map_err(|x| SinkError::corrupt(x.to_string()))?;
        if !outcome.is_ok() {
            return Err(SinkError::corrupt("read-back differs"));
        }
        if cancel.is_cancelled() {
            return Err(SinkError::cancelled());
        }
        // Synced, the old folder swapped out in one step and removed.
        out.commit(&[])?;
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
        cancel: &dyn Cancel,
    ) -> Result<VerifyReport, SinkError> {
        VerifyReport::each(request, |out| {
            manifest::verify(&mut DirReader(out.to_path_buf()), progress, cancel).map_err(|e| {
                match e {
                    manifest::ManifestError::Cancelled => SinkError::cancelled(),
                    e => SinkError::corrupt(format!("{}: {e}", out.display())),
                }
            })
        })
    }
}

capmedia_sink::export_sink!(FolderSink);
