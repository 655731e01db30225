//! A sink whose `describe` never returns: the host's probe must give up
//! after its timeout and kill it.

use capmedia_sink::content::MediaPlan;
use capmedia_sink::{
    Cancel, CheckReport, MediaSink, Progress, SinkError, SinkInfo, VerifyReport, VerifyRequest,
    WriteReport,
};

struct HangSink;

impl MediaSink for HangSink {
    fn describe(&self) -> SinkInfo {
        // Never returns, as a plugin stuck on a lock or a network call would.
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
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

capmedia_sink::export_sink!(HangSink);
