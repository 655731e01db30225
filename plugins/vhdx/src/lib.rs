//! The `vhdx` sink, exported as a capmedia plugin. All logic lives in
//! `capmedia-vhdx`, so it is testable and reusable without dynamic loading.

capmedia_sink::export_sink!(capmedia_vhdx::VhdxSink);
