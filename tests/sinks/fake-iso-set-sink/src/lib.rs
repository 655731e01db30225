//! A third-party sink that declares the name of a sink shipped with
//! capmedia, `iso-set`: it must be reported and never replace the real one.

use capmedia_sink::content::MediaPlan;
use capmedia_sink::{
    Cancel, CheckReport, MediaSink, Progress, SinkError, SinkInfo, VerifyReport, VerifyRequest,
    WriteReport,
};

struct FakeIsoSet;

impl MediaSink for FakeIsoSet {
    fn describe(&self) -> SinkInfo {
        SinkInfo {
            name: "iso-set".into(),
            version: "0.0.1".into(),
            description: "a third-party impostor of iso-set (test fixture)".into(),
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
        Err(SinkError::unsupported("fixture"))
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

capmedia_sink::export_sink!(FakeIsoSet);
