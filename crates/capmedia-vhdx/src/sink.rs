//! The `vhdx` sink: the bootable disk of the USB-raw sink (written by
//! `capmedia-disk`, no second copy of partitioning or FAT code) inside a
//! fixed or dynamic VHDX, for Hyper-V generation 2 machines (UEFI boot from
//! VHDX only, hence GPT by default).

use std::path::Path;

use capmedia_content::{MediaPlan, Volume};
use capmedia_directio::DirectFile;
use capmedia_disk::{
    check_plan, min_disk_size, write_disk, DiskError, DiskLayout, PartitionScheme,
};
use capmedia_manifest::VerifyOutcome;
use capmedia_sink::output::{check_output, OutputKind};
use capmedia_sink::{
    Cancel, CheckReport, MediaSink, Progress, SinkError, SinkInfo, SinkOption, VerifyReport,
    VerifyRequest, WriteReport,
};

use crate::{virtual_size_for, VhdxError, VhdxIds, VhdxParams, VhdxReader, VhdxType, VhdxWriter};

/// The sink's name, given to `--sink`.
pub const SINK_NAME: &str = "vhdx";
/// `dynamic` (default) or `fixed`.
///
/// Dynamic by default: it is Hyper-V's default, the file is about as large
/// as the content (the disk's slack costs nothing), so it is faster to write,
/// read back and copy to a Hyper-V host; a capture VM boots it a few times.
pub const OPT_VHDX_TYPE: &str = "vhdx-type";
/// `gpt` (default) or `mbr`. GPT by default: Hyper-V generation 2 machines
/// boot by UEFI, and only they boot from VHDX.
pub const OPT_PARTITION_SCHEME: &str = "partition-scheme";

/// Writes the plan as a VHDX; see the module documentation.
#[derive(Debug, Default, Clone, Copy)]
pub struct VhdxSink;

/// Everything `write` needs, decided before the first byte is written.
#[derive(Debug, Clone, Copy)]
struct Decided {
    vhdx_type: VhdxType,
    scheme: PartitionScheme,
    /// The virtual disk's size: whole MiB ([`virtual_size_for`]).
    disk_bytes: u64,
}

/// What the VHDX's data occupies on the folder's file system: about the
/// content, plus the FAT (1/128 of the disk at most), the header section, log,
/// metadata and BAT regions, and a block of rounding per file (a fixed VHDX's
/// unwritten areas stay sparse).
fn written_bytes(plan: &MediaPlan, d: &Decided) -> u64 {
    let files = plan.entries.len() as u64 + 1;
    plan.content_bytes() + (d.disk_bytes >> 7) + (8 << 20) + files * 4096
}

fn decide(plan: &MediaPlan) -> Result<Decided, SinkError> {
    let vhdx_type = match plan.option(OPT_VHDX_TYPE) {
        None => VhdxType::Dynamic,
        Some(v) => v
            .parse()
            .map_err(|e: VhdxError| SinkError::refused(format!("--{OPT_VHDX_TYPE}: {e}")))?,
    };
    let scheme = match plan.option(OPT_PARTITION_SCHEME) {
        None => PartitionScheme::Gpt,
        Some(v) => v
            .parse()
            .map_err(|e: DiskError| SinkError::refused(format!("--{OPT_PARTITION_SCHEME}: {e}")))?,
    };
    check_plan(plan).map_err(capmedia_vhd::disk_error)?;
    // --media-size, or the content plus slack.
    let wanted = plan.capacity.bytes().unwrap_or_else(|| min_disk_size(plan));
    let disk_bytes = virtual_size_for(wanted).map_err(|e| SinkError::refused(e.to_string()))?;
    DiskLayout::new(disk_bytes, scheme)
        .and_then(|l| l.check_fits(plan))
        .map_err(capmedia_vhd::disk_error)?;
    Ok(Decided {
        vhdx_type,
        scheme,
        disk_bytes,
    })
}

fn vhdx_error(path: &Path, e: VhdxError) -> SinkError {
    match e {
        VhdxError::Io(e) => SinkError::io(format!("{}: {e}", path.display())),
        // Not a VHDX at all: another sink's format, not a damaged VHDX.
        VhdxError::TooSmall(_) | VhdxError::FileSignature(_) => {
            SinkError::unsupported(format!("{}: not a VHDX: {e}", path.display()))
        }
        other => SinkError::corrupt(format!("{}: {other}", path.display())),
    }
}

/// Read a VHDX back through [`VhdxReader`] and the shared virtual-disk
/// read-back (`capmedia_vhd::verify_virtual_disk`).
pub fn verify_vhdx(
    path: &Path,
    progress: &dyn Progress,
    cancel: &dyn Cancel,
) -> Result<VerifyOutcome, SinkError> {
    let file = DirectFile::open_read(path).map_err(|e| vhdx_error(path, e.into()))?;
    let vhdx = VhdxReader::open(file).map_err(|e| vhdx_error(path, e))?;
    capmedia_vhd::verify_virtual_disk(vhdx, path, progress, cancel)
}

impl MediaSink for VhdxSink {
    fn describe(&self) -> SinkInfo {
        SinkInfo {
            name: SINK_NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description:
                "the bootable capture disk as a VHDX (fixed or dynamic) for Hyper-V generation 2 machines"
                    .to_owned(),
            options: vec![
                SinkOption {
                    name: OPT_VHDX_TYPE.to_owned(),
                    values: "fixed|dynamic".to_owned(),
                    default: Some("dynamic".to_owned()),
                    help: "dynamic: only the 1 MiB blocks that hold data; fixed: every block allocated"
                        .to_owned(),
                },
                SinkOption {
                    name: OPT_PARTITION_SCHEME.to_owned(),
                    values: "mbr|gpt".to_owned(),
                    default: Some(PartitionScheme::Gpt.to_string()),
                    help: "the partition table in front of the FAT32 volume".to_owned(),
                },
            ],
            streams: true,
            ..Default::default()
        }
    }

    fn check(&self, plan: &MediaPlan) -> Result<CheckReport, SinkError> {
        let d = decide(plan)?;
        // The temporary VHDX is written beside the target: its data must fit
        // there (a fixed VHDX's unwritten areas stay sparse).
        check_output(&plan.output, OutputKind::File, written_bytes(plan, &d))?;
        let mut notes = vec![format!(
            "{} VHDX, {} partition table, virtual disk of {} bytes",
            d.vhdx_type, d.scheme, d.disk_bytes
        )];
        if plan.output.exists() {
            notes.push(format!(
                "{} exists; it is replaced only once the new VHDX is complete and verified",
                plan.output.display()
            ));
        }
        let used = match d.vhdx_type {
            VhdxType::Fixed => d.disk_bytes + (4 << 20),
            VhdxType::Dynamic => written_bytes(plan, &d),
        };
        Ok(CheckReport {
            volumes: vec![Volume::whole(plan, used, plan.capacity)],
            notes,
        })
    }

    fn write(
        &self,
        plan: &MediaPlan,
        progress: &dyn Progress,
        cancel: &dyn Cancel,
    ) -> Result<WriteReport, SinkError> {
        self.check(plan)?;
        let d = decide(plan)?;
        let out = &plan.output;
        // Past the page cache, read back beside the writes, committed after
        // the read-back: capmedia-vhd's `NewContainer`, as the VHD.
        let (new, file) = capmedia_vhd::NewContainer::begin(plan, written_bytes(plan, &d))?;
        let tmp_path = new.tmp_path.clone();
        progress.message(&format!(
            "writing a {} VHDX of {} bytes to {}",
            d.vhdx_type,
            d.disk_bytes,
            out.display()
        ));
        let params = VhdxParams {
            vhdx_type: d.vhdx_type,
            min_size: d.disk_bytes,
            ids: VhdxIds::from_seed(&plan.set_id),
        };
        let mut vhdx = VhdxWriter::create(file, &params).map_err(|e| vhdx_error(&tmp_path, e))?;
        write_disk(&mut vhdx, d.disk_bytes, plan, d.scheme, progress, cancel)
            .map_err(capmedia_vhd::disk_error)?;
        let file = vhdx.finish().map_err(|e| vhdx_error(&tmp_path, e))?;
        capmedia_vhd::read_back_and_commit(
            (new, file),
            plan,
            (SINK_NAME, "VHDX"),
            |f| VhdxReader::open(f).map_err(|e| vhdx_error(&tmp_path, e)),
            VhdxReader::into_inner,
            progress,
            cancel,
        )
    }

    fn verify(
        &self,
        request: &VerifyRequest,
        progress: &dyn Progress,
        cancel: &dyn Cancel,
    ) -> Result<VerifyReport, SinkError> {
        VerifyReport::each(request, |output| verify_vhdx(output, progress, cancel))
    }
}
