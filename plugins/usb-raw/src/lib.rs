//! The `usb-raw` sink, exported as a capmedia plugin. All logic lives in
//! `capmedia-usb`, so it is testable and reusable without dynamic loading.

capmedia_sink::export_sink!(capmedia_usb::UsbRawSink::new());
