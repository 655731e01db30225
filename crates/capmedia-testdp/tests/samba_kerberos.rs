//! The Kerberos test SMB server checked with a client nobody here wrote:
//! Samba's smbclient lists a share with a ticket from the test KDC, and
//! fails without one or with a principal that has no account.
#![allow(clippy::unwrap_used)]

use std::fs;

use capmedia_testdp::{Kdc, Samba, SMB_KRB_ALIAS, SMB_USER};

#[test]
fn smbclient_lists_a_share_with_kerberos_only() {
    let kdc = Kdc::start().unwrap();
    let share = tempfile::tempdir().unwrap();
    fs::write(share.path().join("marker-7f3a.txt"), b"hello").unwrap();
    Samba::open_up(share.path()).unwrap();
    let smb = Samba::start_kerberos(&[("data", share.path())], "Sm8-test-Pa55word", &kdc).unwrap();
    assert_eq!(
        smb.url_by_name("data"),
        format!("smb://localhost:{}/data", smb.port())
    );

    let ccache = kdc.ticket(SMB_USER).unwrap();
    let out = smb.smbclient_kerberos(&kdc, &ccache, "data", "ls").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("marker-7f3a.txt"),
        "smbclient failed ({}):\n{stdout}\n{stderr}\nsmbd:\n{}\nkdc:\n{}",
        out.status,
        smb.log(),
        kdc.log()
    );
    // The listing came through a Kerberos session: the KDC issued the
    // service ticket, and smbd logged the ticket's principal as the user.
    let service = format!("{SMB_USER}@TEST.CAPMEDIA for cifs/{SMB_KRB_ALIAS}@TEST.CAPMEDIA");
    assert!(kdc.log().contains(&service), "{}", kdc.log());
    let log = smb.log();
    assert!(
        log.contains(&format!(
            "Kerberos ticket principal name is [{SMB_USER}@TEST.CAPMEDIA]"
        )) && log.contains("Selected protocol SMB3_11"),
        "{log}"
    );

    // No ticket: the cache file does not exist.
    let none = share.path().join("no-such.ccache");
    let out = smb.smbclient_kerberos(&kdc, &none, "data", "ls").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && !stdout.contains("marker-7f3a.txt"),
        "listed without a ticket:\n{stdout}"
    );

    // A valid ticket for a principal with no unix account: refused at
    // SESSION_SETUP.
    let stranger = kdc.ticket("stranger").unwrap();
    let out = smb
        .smbclient_kerberos(&kdc, &stranger, "data", "ls")
        .unwrap();
    let all =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && all.contains("NT_STATUS_ACCESS_DENIED"),
        "stranger was not refused ({}):\n{all}\nsmbd:\n{}",
        out.status,
        smb.log()
    );
    assert!(
        smb.log()
            .contains("Username stranger is invalid on this system"),
        "{}",
        smb.log()
    );
}
