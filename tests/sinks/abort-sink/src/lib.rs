//! An ordinary sink; the test builds it with `panic = "abort"`, which the
//! host must refuse.

use capmedia_sink::content::MediaPlan;
use capmedia_sink::{
    Cancel, CheckReport, MediaSink, Progress, SinkError, SinkInfo, VerifyReport, VerifyRequest,
    WriteReport,
};

struct AbortSink;

impl MediaSink for AbortSink {
    fn describe(&self) -> SinkInfo {
        SinkInfo {
            name: "abort".into(),
            version: "0.0.1".into(),
            description: "built with panic = abort (test fixture)".into(),
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

capmedia_sink::export_sink!(AbortSink);
