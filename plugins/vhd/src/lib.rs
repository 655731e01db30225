//! The `vhd` sink, exported as a capmedia plugin. All logic lives in
//! `capmedia-vhd`, so it is testable and reusable without dynamic loading.

capmedia_sink::export_sink!(capmedia_vhd::VhdSink);
