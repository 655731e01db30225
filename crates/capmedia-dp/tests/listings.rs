//! The HTML listing parser on listings as IIS, nginx and Apache write them.
#![allow(clippy::unwrap_used)]

use capmedia_dp::{parse_html_listing, ListingEntry};

fn e(name: &str, is_dir: bool, size: Option<u64>) -> ListingEntry {
    ListingEntry {
        name: name.into(),
        is_dir,
        size,
    }
}

/// IIS 10 directory browsing of a DP's `SMS_DP_SMSPKG$` virtual directory.
const IIS_DATALIB: &str = "<html><head><title>dp01.corp.contoso.com - /SMS_DP_SMSPKG$/DataLib/</title></head><body><H1>dp01.corp.contoso.com - /SMS_DP_SMSPKG$/DataLib/</H1><hr>\r\n\r\n<pre><A HREF=\"/SMS_DP_SMSPKG$/\">[To Parent Directory]</A><br><br> 3/14/2024  9:26 AM        &lt;dir&gt; <A HREF=\"/SMS_DP_SMSPKG$/DataLib/PS100005.3/\">PS100005.3</A><br> 3/14/2024  9:26 AM          132 <A HREF=\"/SMS_DP_SMSPKG$/DataLib/PS100005.3.INI\">PS100005.3.INI</A><br>11/2/2023  4:01 PM        &lt;dir&gt; <A HREF=\"/SMS_DP_SMSPKG$/DataLib/Content_3c2b5d4e-1a2b-4c3d-8e9f-0123456789ab.1/\">Content_3c2b5d4e-1a2b-4c3d-8e9f-0123456789ab.1</A><br>11/2/2023  4:01 PM           98 <A HREF=\"/SMS_DP_SMSPKG$/DataLib/Content_3c2b5d4e-1a2b-4c3d-8e9f-0123456789ab.1.INI\">Content_3c2b5d4e-1a2b-4c3d-8e9f-0123456789ab.1.INI</A><br></pre><hr></body></html>";

const IIS_PACKAGE: &str = "<html><head><title>dp01 - /SMS_DP_SMSPKG$/DataLib/PS100005.3/</title></head><body><H1>dp01 - /SMS_DP_SMSPKG$/DataLib/PS100005.3/</H1><hr>\r\n\r\n<pre><A HREF=\"/SMS_DP_SMSPKG$/DataLib/\">[To Parent Directory]</A><br><br> 3/14/2024  9:26 AM          262 <A HREF=\"/SMS_DP_SMSPKG$/DataLib/PS100005.3/boot.PS100005.wim.INI\">boot.PS100005.wim.INI</A><br> 3/14/2024  9:26 AM        &lt;dir&gt; <A HREF=\"/SMS_DP_SMSPKG$/DataLib/PS100005.3/Program%20Files/\">Program Files</A><br> 3/14/2024  9:26 AM          250 <A HREF=\"/SMS_DP_SMSPKG$/DataLib/PS100005.3/R&amp;D%20notes.txt.INI\">R&amp;D notes.txt.INI</A><br></pre><hr></body></html>";

#[test]
fn iis_listings() {
    let got = parse_html_listing(IIS_DATALIB, "/SMS_DP_SMSPKG$/DataLib/").unwrap();
    assert_eq!(
        got,
        [
            e("PS100005.3", true, None),
            e("PS100005.3.INI", false, Some(132)),
            e("Content_3c2b5d4e-1a2b-4c3d-8e9f-0123456789ab.1", true, None),
            e(
                "Content_3c2b5d4e-1a2b-4c3d-8e9f-0123456789ab.1.INI",
                false,
                Some(98)
            ),
        ]
    );
    let got = parse_html_listing(IIS_PACKAGE, "/SMS_DP_SMSPKG$/DataLib/PS100005.3/").unwrap();
    assert_eq!(
        got,
        [
            e("boot.PS100005.wim.INI", false, Some(262)),
            e("Program Files", true, None),
            e("R&D notes.txt.INI", false, Some(250)),
        ]
    );
    // IIS renders the on-disk case; the DP URL may have been typed otherwise.
    let got = parse_html_listing(IIS_DATALIB, "/sms_dp_smspkg$/datalib/").unwrap();
    assert_eq!(got.len(), 4);
}

#[test]
fn iis_dir_rows_without_trailing_slash() {
    let html = "<pre><A HREF=\"/x/\">[To Parent Directory]</A><br><br> 3/14/2024  9:26 AM        &lt;dir&gt; <A HREF=\"/x/y/sub\">sub</A><br></pre>";
    assert_eq!(
        parse_html_listing(html, "/x/y/").unwrap(),
        [e("sub", true, None)]
    );
}

const NGINX: &str = "<html>\r\n<head><title>Index of /SMS_DP_SMSPKG$/PkgLib/</title></head>\r\n<body>\r\n<h1>Index of /SMS_DP_SMSPKG$/PkgLib/</h1><hr><pre><a href=\"../\">../</a>\r\n<a href=\"sub%20dir/\">sub dir/</a>                                          24-Nov-2026 00:01       -\r\n<a href=\"PS100005.INI\">PS100005.INI</a>                                       24-Nov-2026 00:01      40\r\n<a href=\"a-very-long-file-name-that-nginx-truncates-in-the-link-text.INI\">a-very-long-file-name-that-nginx-truncates-in-t..&gt;</a> 24-Nov-2026 00:01      40\r\n</pre><hr></body>\r\n</html>\r\n";

const APACHE: &str = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<html>\n <head>\n  <title>Index of /lib/PkgLib</title>\n </head>\n <body>\n<h1>Index of /lib/PkgLib</h1>\n  <table>\n   <tr><th valign=\"top\"><img src=\"/icons/blank.gif\" alt=\"[ICO]\"></th><th><a href=\"?C=N;O=D\">Name</a></th><th><a href=\"?C=M;O=A\">Last modified</a></th><th><a href=\"?C=S;O=A\">Size</a></th><th><a href=\"?C=D;O=A\">Description</a></th></tr>\n   <tr><th colspan=\"5\"><hr></th></tr>\n<tr><td valign=\"top\"><img src=\"/icons/back.gif\" alt=\"[PARENTDIR]\"></td><td><a href=\"/lib/\">Parent Directory</a></td><td>&nbsp;</td><td align=\"right\">  - </td><td>&nbsp;</td></tr>\n<tr><td valign=\"top\"><img src=\"/icons/unknown.gif\" alt=\"[   ]\"></td><td><a href=\"PS100005.INI\">PS100005.INI</a></td><td align=\"right\">2026-11-24 00:01  </td><td align=\"right\"> 40 </td><td>&nbsp;</td></tr>\n<tr><td valign=\"top\"><img src=\"/icons/folder.gif\" alt=\"[DIR]\"></td><td><a href='x/'>x/</a></td><td align=\"right\">2026-11-24 00:01  </td><td align=\"right\">  - </td><td>&nbsp;</td></tr>\n   <tr><th colspan=\"5\"><hr></th></tr>\n</table>\n</body></html>\n";

#[test]
fn nginx_and_apache_autoindex() {
    let got = parse_html_listing(NGINX, "/SMS_DP_SMSPKG$/PkgLib/").unwrap();
    assert_eq!(
        got.iter()
            .map(|x| (x.name.as_str(), x.is_dir))
            .collect::<Vec<_>>(),
        [
            ("sub dir", true),
            ("PS100005.INI", false),
            (
                "a-very-long-file-name-that-nginx-truncates-in-the-link-text.INI",
                false
            )
        ]
    );
    let got = parse_html_listing(APACHE, "/lib/PkgLib/").unwrap();
    assert_eq!(
        got.iter()
            .map(|x| (x.name.as_str(), x.is_dir))
            .collect::<Vec<_>>(),
        [("PS100005.INI", false), ("x", true)]
    );
}

fn refused(href: &str) -> String {
    let html = format!(
        "<pre><A HREF=\"/d/\">[To Parent Directory]</A><br><br> 3/14/2024  9:26 AM  1 <A HREF=\"{href}\">x</A><br></pre>"
    );
    match parse_html_listing(&html, "/d/e/") {
        Ok(v) => panic!("{href:?} accepted as {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn hostile_entries_are_refused() {
    for href in [
        "/d/e/../../etc/passwd",
        "../../etc/passwd",
        "/d/e/..%2F..%2Fetc",
        "/d/e/%2E%2E/",
        "..%5C..%5Cwin.ini",
        "/etc/passwd",
        "http://elsewhere/etc/passwd",
        "/d/e/C:%5CWindows%5Cwin.ini",
        "/d/e/C:evil",
        "/d/e/nul%00byte",
        "/d/e/bell%07",
        "/d/e/sub/deeper",
        "%FF%FE",
    ] {
        let msg = refused(href);
        assert!(msg.contains("listing entry"), "{msg}");
    }
}
