//! The FAT read-back over arbitrary bytes: find the partition, check every
//! cluster chain, list every folder and read every file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    capmedia_disk::fuzzing::read_all(data);
});
