//! A sink whose `write` panics: the host must turn that into an error.

use capmedia_sink::content::MediaPlan;
use capmedia_sink::{
    Cancel, CheckReport, MediaSink, Progress, SinkError, SinkInfo, VerifyReport, VerifyRequest,
    WriteReport,
};

struct PanicSink;

impl MediaSink for PanicSink {
    fn describe(&self) -> SinkInfo {
        SinkInfo {
            name: "panic".into(),
            version: "0.0.1".into(),
            description: "panics when asked to write (test fixture)".into(),
            options: vec![],
            ..Default::default()
        }
    }
    fn check(&self, _: &MediaPlan) -> Result<CheckReport, SinkError> {
        Ok(CheckReport::default())
    }
    fn write(
        &self,
        _: &MediaPlan,
        _: &dyn Progress,
        _: &dyn Cancel,
    ) -> Result<WriteReport, SinkError> {
        panic!("deliberate panic in write")
    }
    fn verify(
        &self,
        _: &VerifyRequest,
        _: &dyn Progress,
        _: &dyn Cancel,
    ) -> Result<VerifyReport, SinkError> {
        Ok(VerifyReport::default())
    }
}

capmedia_sink::export_sink!(PanicSink);
