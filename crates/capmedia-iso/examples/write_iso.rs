//! Write a folder as a single ISO with the iso-set sink, for benchmarks:
//! `cargo run --release -p capmedia-iso --example write_iso -- TREE OUT.iso [MEDIA-SIZE]`
//! Prints the time to hash the tree into a plan, and to write + read back.

use std::time::Instant;

use capmedia_content::{Capacity, EntryRole, PlanBuilder};
use capmedia_iso::IsoSetSink;
use capmedia_sink::{MediaSink, NeverCancel, NoProgress};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(tree), Some(out)) = (args.next(), args.next()) else {
        return Err("usage: write_iso TREE OUT.iso [MEDIA-SIZE]".into());
    };
    let cap: Capacity = args.next().as_deref().unwrap_or("unlimited").parse()?;
    let t0 = Instant::now();
    let mut b = PlanBuilder::new("BENCH", "iso-set", &out)
        .capacity(cap)
        .source_date_epoch(1_700_000_000);
    b.add_tree("", std::path::Path::new(&tree), EntryRole::Package, "tree")?;
    let plan = b.build()?;
    let t1 = Instant::now();
    let r = IsoSetSink.write(&plan, &NoProgress, &NeverCancel)?;
    let t2 = Instant::now();
    eprintln!(
        "plan (hash) {:.2}s, write+sync+verify {:.2}s, {} volume(s), {} bytes",
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        r.outputs.len(),
        r.outputs.iter().map(|o| o.bytes).sum::<u64>()
    );
    Ok(())
}
