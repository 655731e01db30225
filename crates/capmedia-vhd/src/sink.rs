//! The `vhd` sink: the bootable disk of the USB-raw sink (written by
//! `capmedia-disk`, no second copy of partitioning or FAT code) inside a
//! fixed or dynamic VHD, for reference computers that are virtual machines.

use std::path::{Path, PathBuf};

use capmedia_directio::DirectFile;

use capmedia_content::{Capacity, MediaPlan, Volume};
use capmedia_disk::{
    check_plan, min_disk_size, verify_while_syncing, write_disk, DiskError, DiskLayout, DiskReader,
    HashingReader, PartitionScheme,
};
use capmedia_manifest::{ManifestError, VerifyOutcome};
use capmedia_sink::output::{check_output, OutputKind, OutputSet};
use capmedia_sink::{
    Cancel, CheckReport, MediaSink, Progress, SinkError, SinkInfo, SinkOption, VerifyReport,
    VerifyRequest, WriteReport,
};

use crate::{
    unique_id_from_seed, virtual_size_for, VhdError, VhdParams, VhdReader, VhdType, VhdWriter,
};

/// The sink's name, given to `--sink`.
pub const SINK_NAME: &str = "vhd";
/// `fixed` (default) or `dynamic`.
pub const OPT_VHD_TYPE: &str = "vhd-type";
/// `mbr` (default) or `gpt`, as for the USB-raw sink.
pub const OPT_PARTITION_SCHEME: &str = "partition-scheme";

/// Writes the plan as a VHD; see the module documentation.
#[derive(Debug, Default, Clone, Copy)]
pub struct VhdSink;

/// Everything `write` needs, decided before the first byte is written.
#[derive(Debug, Clone, Copy)]
struct Decided {
    vhd_type: VhdType,
    scheme: PartitionScheme,
    /// The virtual disk's size: whole MiB, CHS-exact ([`virtual_size_for`]).
    disk_bytes: u64,
}

/// What the VHD's data occupies on the folder's file system: about the
/// content, rounded to blocks, plus metadata (a fixed VHD's unwritten areas
/// stay sparse).
fn written_bytes(plan: &MediaPlan, d: &Decided) -> u64 {
    plan.content_bytes() + (d.disk_bytes >> 9) + (4 << 20)
}

fn decide(plan: &MediaPlan) -> Result<Decided, SinkError> {
    let vhd_type = match plan.option(OPT_VHD_TYPE) {
        None => VhdType::Fixed,
        Some(v) => v
            .parse()
            .map_err(|e: VhdError| SinkError::refused(format!("--{OPT_VHD_TYPE}: {e}")))?,
    };
    let scheme = match plan.option(OPT_PARTITION_SCHEME) {
        None => PartitionScheme::default(),
        Some(v) => v
            .parse()
            .map_err(|e: DiskError| SinkError::refused(format!("--{OPT_PARTITION_SCHEME}: {e}")))?,
    };
    if let Some(preset) = plan.capacity.disc_preset() {
        return Err(SinkError::refused(format!(
            "--media-size {preset} is a disc's capacity, not a virtual disk's: give the VHD's size in bytes with K/M/G (e.g. --media-size 1G), or leave it out for a disk just large enough"
        )));
    }
    check_plan(plan).map_err(disk_error)?;
    // --media-size, or the content plus slack.
    let wanted = plan.capacity.bytes().unwrap_or_else(|| min_disk_size(plan));
    let disk_bytes = virtual_size_for(wanted).map_err(|e| SinkError::refused(e.to_string()))?;
    DiskLayout::new(disk_bytes, scheme)
        .and_then(|l| l.check_fits(plan))
        .map_err(disk_error)?;
    Ok(Decided {
        vhd_type,
        scheme,
        disk_bytes,
    })
}

/// Why the VHD is not the size asked for: its disk size must be an exact
/// cylinders × heads × sectors geometry (the VHD footer's CHS, which
/// Windows and Hyper-V use to size the disk), in whole MiB.
fn rounding_note(asked: u64, disk_bytes: u64) -> String {
    let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
    format!(
        "{:.0} MiB ({asked} bytes) requested, {:.0} MiB ({disk_bytes} bytes) virtual disk written (plus the 512-byte footer), because a VHD's size must be a whole number of MiB that is an exact cylinders x heads x sectors (CHS) geometry, which Windows and Hyper-V use to size the disk: it is rounded up to the next such size",
        mib(asked),
        mib(disk_bytes)
    )
}

/// A disk-writing error as the sink reports it (refusals are the plan's;
/// the rest is I/O or corruption). Shared with the vhdx sink.
pub fn disk_error(e: DiskError) -> SinkError {
    match e {
        DiskError::Cancelled => SinkError::cancelled(),
        DiskError::FileTooLarge { .. }
        | DiskError::BadName { .. }
        | DiskError::DoesNotFit { .. }
        | DiskError::TooSmallForFat32 { .. }
        | DiskError::BadScheme(_) => SinkError::refused(e.to_string()),
        DiskError::NoFatPartition(_) | DiskError::NotFat32(_) => SinkError::corrupt(e.to_string()),
        other => SinkError::io(other.to_string()),
    }
}

fn vhd_error(path: &Path, e: VhdError) -> SinkError {
    match e {
        VhdError::Io(e) => SinkError::io(format!("{}: {e}", path.display())),
        // Not a VHD at all: another sink's format, not a damaged VHD.
        VhdError::TooSmall(_) | VhdError::FooterCookie(_) => {
            SinkError::unsupported(format!("{}: not a VHD: {e}", path.display()))
        }
        other => SinkError::corrupt(format!("{}: {other}", path.display())),
    }
}

/// Read a VHD back through [`VhdReader`] and the disk crate's reader, and
/// check every file against the manifest on it.
pub fn verify_vhd(
    path: &Path,
    progress: &dyn Progress,
    cancel: &dyn Cancel,
) -> Result<VerifyOutcome, SinkError> {
    let vhd = VhdReader::open_path(path).map_err(|e| vhd_error(path, e))?;
    verify_virtual_disk(vhd, path, progress, cancel)
}

/// The read-back of a new container file (VHD, VHDX) that also returns
/// the file's BLAKE3 for the write report, taken from the read-back's own
/// reads (capmedia-disk's `HashingReader`): no second pass over the file.
/// `open` opens the container over the file, `into_inner` gives the file
/// back; the hash is `None` when the read-back found problems or was
/// cancelled (nothing is reported then).
pub fn verify_container<F, C>(
    file: F,
    path: &Path,
    open: impl FnOnce(HashingReader<F>) -> Result<C, SinkError>,
    into_inner: impl FnOnce(C) -> HashingReader<F>,
    progress: &dyn Progress,
    cancel: &dyn Cancel,
) -> Result<(VerifyOutcome, Option<String>), SinkError>
where
    F: std::io::Read + std::io::Seek,
    C: std::io::Read + std::io::Seek,
{
    let io = |e: std::io::Error| SinkError::io(format!("{}: {e}", path.display()));
    let mut container = open(HashingReader::new(file).map_err(io)?)?;
    let outcome = verify_virtual_disk(&mut container, path, progress, cancel)?;
    if !outcome.is_ok() || cancel.is_cancelled() {
        return Ok((outcome, None));
    }
    let (blake3, _) = into_inner(container).finish().map_err(io)?;
    Ok((outcome, Some(blake3)))
}

/// A virtual-disk container being written (VHD, VHDX): the output set
/// and the temporary it writes, open past the page cache
/// (capmedia-directio) with read-behind, so the blocks go to the disk in
/// large aligned runs from background threads and each run is read back
/// from the disk beside the writes, for [`read_back_and_commit`].
#[derive(Debug)]
pub struct NewContainer {
    pub set: OutputSet,
    pub tmp_path: PathBuf,
}

impl NewContainer {
    /// Begin the output set of `plan` (`bytes` to be written) and open its
    /// temporary; the file goes to the format's writer.
    pub fn begin(plan: &MediaPlan, bytes: u64) -> Result<(NewContainer, DirectFile), SinkError> {
        let out = &plan.output;
        let mut set = OutputSet::begin(out, OutputKind::File, bytes)?;
        let tmp_path = set.create_file(out)?;
        let io_err = |e: std::io::Error| SinkError::io(format!("{}: {e}", tmp_path.display()));
        let mut file = DirectFile::open_rw(&tmp_path, 0).map_err(io_err)?;
        file.read_behind(bytes).map_err(io_err)?;
        Ok((NewContainer { set, tmp_path }, file))
    }
}

/// The end of a virtual-disk sink's write (VHD, VHDX): `(new, file)` is
/// what [`NewContainer::begin`] gave, the file now holding the container
/// the format's writer finished. The file is put on the disk; its `fsync`
/// runs beside its read-back ([`verify_container`] over the pages the
/// read-behind read back from the disk), both passed before the set is
/// committed; and the report with the image's hash from that read-back.
/// `kind` names the format in the error.
pub fn read_back_and_commit<C>(
    (new, file): (NewContainer, DirectFile),
    plan: &MediaPlan,
    (sink, kind): (&str, &str),
    open: impl FnOnce(HashingReader<DirectFile>) -> Result<C, SinkError>,
    into_inner: impl FnOnce(C) -> HashingReader<DirectFile>,
    progress: &dyn Progress,
    cancel: &dyn Cancel,
) -> Result<WriteReport, SinkError>
where
    C: std::io::Read + std::io::Seek,
{
    let NewContainer { set, tmp_path } = new;
    let tmp_path = tmp_path.as_path();
    let out = &plan.output;
    let io_err = |e: std::io::Error| SinkError::io(format!("{}: {e}", tmp_path.display()));
    let bytes = file.len();
    // Every run on the medium (and the writer threads gone).
    let file = file.into_file().map_err(io_err)?;
    if cancel.is_cancelled() {
        return Err(SinkError::cancelled());
    }
    let (verified, synced) = verify_while_syncing(&file, || {
        let reader = DirectFile::open_read_behind(tmp_path).map_err(io_err)?;
        verify_container(reader, tmp_path, open, into_inner, progress, cancel)
    });
    drop(file);
    let (outcome, blake3) = verified?;
    synced.map_err(io_err)?;
    if !outcome.is_ok() {
        let first = outcome
            .problems
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        return Err(SinkError::corrupt(format!(
            "the new {kind} does not read back as written ({} problems, first: {first}); {} was left alone",
            outcome.problems.len(),
            out.display()
        )));
    }
    if cancel.is_cancelled() {
        return Err(SinkError::cancelled());
    }
    // A rename: the bytes hashed are the output's.
    set.commit(&[])?;
    let mut report = WriteReport::single(sink, plan, out.clone(), bytes, true);
    for o in &mut report.outputs {
        o.blake3.clone_from(&blake3);
    }
    Ok(report)
}

/// The read-back of a disk inside any virtual-disk container (VHD, VHDX):
/// its FAT32 volume through the disk crate's reader, every file against
/// the manifest on it. `path` names the container in errors.
pub fn verify_virtual_disk<T: std::io::Read + std::io::Seek>(
    disk: T,
    path: &Path,
    progress: &dyn Progress,
    cancel: &dyn Cancel,
) -> Result<VerifyOutcome, SinkError> {
    let mut disk = DiskReader::open(disk)
        .map_err(|e| SinkError::corrupt(format!("{}: {e}", path.display())))?;
    capmedia_manifest::verify(&mut disk, progress, cancel).map_err(|e| match e {
        ManifestError::Io(e) => SinkError::io(format!("{}: {e}", path.display())),
        ManifestError::Cancelled => SinkError::cancelled(),
        other => SinkError::corrupt(format!("{}: {other}", path.display())),
    })
}

impl MediaSink for VhdSink {
    fn describe(&self) -> SinkInfo {
        SinkInfo {
            name: SINK_NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "the bootable capture disk as a VHD (fixed or dynamic) for virtual machines"
                .to_owned(),
            options: vec![
                SinkOption {
                    name: OPT_VHD_TYPE.to_owned(),
                    values: "fixed|dynamic".to_owned(),
                    default: Some("fixed".to_owned()),
                    help: "fixed: the raw disk plus a footer; dynamic: only the 2 MiB blocks that hold data"
                        .to_owned(),
                },
                SinkOption {
                    name: OPT_PARTITION_SCHEME.to_owned(),
                    values: "mbr|gpt".to_owned(),
                    default: Some(PartitionScheme::default().to_string()),
                    help: "the partition table in front of the FAT32 volume".to_owned(),
                },
            ],
            streams: true,
            ..Default::default()
        }
    }

    fn check(&self, plan: &MediaPlan) -> Result<CheckReport, SinkError> {
        let d = decide(plan)?;
        // The temporary VHD is written beside the target: its data must fit
        // there (a fixed VHD's unwritten areas stay sparse).
        check_output(&plan.output, OutputKind::File, written_bytes(plan, &d))?;
        let mut notes = vec![format!(
            "{} VHD, {} partition table, virtual disk of {} bytes",
            d.vhd_type, d.scheme, d.disk_bytes
        )];
        if let Some(asked) = plan.capacity.bytes().filter(|&b| b != d.disk_bytes) {
            notes.push(rounding_note(asked, d.disk_bytes));
        }
        if plan.output.exists() {
            notes.push(format!(
                "{} exists; it is replaced only once the new VHD is complete and verified",
                plan.output.display()
            ));
        }
        let used = match d.vhd_type {
            VhdType::Fixed => d.disk_bytes + 512,
            VhdType::Dynamic => written_bytes(plan, &d),
        };
        // The capacity shown is the file's real size (the rounded disk and
        // its footer), so a dry run never shows more used than there is.
        let capacity = match plan.capacity {
            Capacity::Bytes(b) => Capacity::Bytes(b.max(d.disk_bytes + 512).max(used)),
            Capacity::Unlimited => Capacity::Unlimited,
        };
        Ok(CheckReport {
            volumes: vec![Volume::whole(plan, used, capacity)],
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
        let (new, file) = NewContainer::begin(plan, written_bytes(plan, &d))?;
        let tmp_path = new.tmp_path.clone();
        progress.message(&format!(
            "writing a {} VHD of {} bytes to {}",
            d.vhd_type,
            d.disk_bytes,
            out.display()
        ));
        let params = VhdParams {
            vhd_type: d.vhd_type,
            min_size: d.disk_bytes,
            source_date_epoch: plan.source_date_epoch,
            unique_id: unique_id_from_seed(format!("capmedia vhd {}", plan.set_id).as_bytes()),
        };
        let mut vhd = VhdWriter::create(file, &params).map_err(|e| vhd_error(&tmp_path, e))?;
        write_disk(&mut vhd, d.disk_bytes, plan, d.scheme, progress, cancel).map_err(disk_error)?;
        let file = vhd.finish().map_err(|e| vhd_error(&tmp_path, e))?;
        read_back_and_commit(
            (new, file),
            plan,
            (SINK_NAME, "VHD"),
            |f| VhdReader::open(f).map_err(|e| vhd_error(&tmp_path, e)),
            VhdReader::into_inner,
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
        VerifyReport::each(request, |output| verify_vhd(output, progress, cancel))
    }
}
