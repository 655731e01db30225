//! A sink whose `describe` crashes with SIGSEGV: the host's probe must
//! report it, and every other command must go on without it.

use capmedia_sink::content::MediaPlan;
use capmedia_sink::{
    Cancel, CheckReport, MediaSink, Progress, SinkError, SinkInfo, VerifyReport, VerifyRequest,
    WriteReport,
};

struct SegvSink;

impl MediaSink for SegvSink {
    fn describe(&self) -> SinkInfo {
        // SAFETY: none; this is deliberately undefined behaviour, the
        // fixture's one purpose. Address 8 is in the never-mapped first page,
        // so the write faults and the process dies with SIGSEGV, as a buggy C
        // plugin would. (Not a null pointer: the standard library's debug
        // checks would turn that into a panic-abort, SIGABRT.)
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::write_volatile(std::ptr::without_provenance_mut::<u8>(8), 1);
        }
        SinkInfo {
            name: "segv".into(),
            version: "0.0.1".into(),
            description: "crashes in describe (test fixture)".into(),
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

capmedia_sink::export_sink!(SegvSink);
