#!/usr/bin/env python3
"""A test DP that requires Windows authentication, as an IIS content site
with only "Windows Authentication" enabled does.

It serves a content library at /SMS_DP_SMSPKG$/ on 127.0.0.1 (directory
listings, HEAD, single byte ranges), answers an unauthenticated request with
401 and `WWW-Authenticate: Negotiate` + `WWW-Authenticate: NTLM`, and accepts
the NTLM handshake with pyspnego's pure-Python NTLM acceptor, which checks
the client's answer against the accounts in the file named by
NTLM_USER_FILE (lines `DOMAIN:USER:PASSWORD`).

As on IIS, NTLM authenticates the TCP connection: the three legs must come
on one connection, and later requests on it need no Authorization header.
A handshake split over two connections fails here as it fails on IIS.

With --kerberos it is a DP whose site takes Kerberos only (Negotiate with
SPNEGO/Kerberos, as IIS does for a client with a ticket): it offers
`WWW-Authenticate: Negotiate` alone and accepts the token with MIT GSSAPI
(python3-gssapi) and the service key from the keytab named by KRB5_KTNAME;
the final token (mutual authentication) goes on the 200 answer. pyspnego is
not needed then, nor gssapi in NTLM mode.

Usage: ntlm_dp.py LIB_DIR PORT_FILE [--kerberos] [--forbid TEXT]...
It binds 127.0.0.1 on a free port and writes the port to PORT_FILE when it
listens. Requests whose path contains a --forbid TEXT get 403 once
authenticated (an account without Read access to that file). Each
authentication is logged on stderr as `auth conn=N user=DOMAIN\\USER`.
"""

import base64
import html
import os
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/SMS_DP_SMSPKG$/"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "capmedia-ntlm-test-dp"

    # One handler object per connection: its authentication lives here.
    def setup(self):
        super().setup()
        self.ctx = None
        self.user = None
        self.final_token = None
        with self.server.lock:
            self.server.conns += 1
            self.conn = self.server.conns

    def log_message(self, fmt, *args):
        pass

    def send_plain(self, status, text, extra=()):
        body = text.encode()
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def end_headers(self):
        # Kerberos: the acceptor's last token (mutual authentication) goes
        # on the first answer after the handshake, as IIS sends it.
        if self.final_token is not None:
            self.send_header("WWW-Authenticate", "Negotiate " + base64.b64encode(self.final_token).decode())
            self.final_token = None
        super().end_headers()

    def challenge(self, token=None, scheme="NTLM"):
        if token is None and self.server.kerberos:
            extra = [("WWW-Authenticate", "Negotiate")]
        elif token is None:
            extra = [("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM")]
        else:
            extra = [("WWW-Authenticate", scheme + " " + base64.b64encode(token).decode())]
        self.send_plain(401, "401 - Unauthorized: Access is denied due to invalid credentials.", extra)

    def authenticate(self):
        """True when this connection is authenticated (and the request may
        be served); otherwise the 401 has been sent."""
        if self.user is not None:
            return True
        header = self.headers.get("Authorization")
        if not header or " " not in header:
            self.ctx = None
            self.challenge()
            return False
        scheme, _, b64 = header.partition(" ")
        if scheme.lower() not in ("ntlm", "negotiate"):
            self.challenge()
            return False
        try:
            token = base64.b64decode(b64.strip())
        except ValueError:
            self.send_plain(400, "bad Authorization header")
            return False
        if self.server.kerberos:
            return self.kerberos(token)
        if token.startswith(b"NTLMSSP\0\x01"):
            import spnego

            # A new handshake (type 1) starts over on this connection.
            self.ctx = spnego.server(protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm)
        if self.ctx is None:
            # A type 3 without a type 1 on this connection: the handshake
            # was split across connections.
            self.challenge()
            return False
        try:
            out = self.ctx.step(token)
        except Exception as e:  # wrong password, unknown user, bad token
            sys.stderr.write(f"refused conn={self.conn}: {type(e).__name__}\n")
            sys.stderr.flush()
            self.ctx = None
            self.challenge()
            return False
        if not self.ctx.complete:
            self.challenge(out, scheme)
            return False
        self.user = self.ctx.client_principal
        self.ctx = None
        sys.stderr.write(f"auth conn={self.conn} user={self.user}\n")
        sys.stderr.flush()
        return True

    def kerberos(self, token):
        import gssapi

        try:
            ctx = gssapi.SecurityContext(creds=self.server.creds, usage="accept")
            out = ctx.step(token)
        except Exception as e:  # not Kerberos, unknown key, expired ticket
            sys.stderr.write(f"refused conn={self.conn}: {type(e).__name__}: {e}\n")
            sys.stderr.flush()
            self.challenge()
            return False
        if not ctx.complete:
            self.challenge(out, "Negotiate")
            return False
        self.user = str(ctx.initiator_name)
        self.final_token = out
        sys.stderr.write(f"auth conn={self.conn} user={self.user} mech=kerberos\n")
        sys.stderr.flush()
        return True

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        if not self.authenticate():
            return
        raw = urllib.parse.urlsplit(self.path).path
        if not raw.startswith(PREFIX):
            return self.send_plain(404, "not found")
        if any(f in raw for f in self.server.forbid):
            return self.send_plain(403, "403 - Forbidden: Access is denied.")
        rel = urllib.parse.unquote(raw[len(PREFIX):])
        parts = [p for p in rel.split("/") if p]
        if any(p in (".", "..") for p in parts):
            return self.send_plain(404, "not found")
        path = os.path.join(self.server.lib, *parts)
        if os.path.isdir(path):
            return self.listing(raw, path)
        if not os.path.isfile(path):
            return self.send_plain(404, "not found")
        self.file(path)

    def listing(self, raw, path):
        if not raw.endswith("/"):
            return self.send_plain(404, "not found")
        rows = ['<a href="../">../</a>']
        for name in sorted(os.listdir(path)):
            slash = "/" if os.path.isdir(os.path.join(path, name)) else ""
            href = urllib.parse.quote(name) + slash
            rows.append(f'<a href="{href}">{html.escape(name)}{slash}</a>')
        body = ("<html><body><pre>\n" + "\n".join(rows) + "\n</pre></body></html>\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def file(self, path):
        size = os.path.getsize(path)
        start, end, status = 0, size - 1, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and "," not in rng:
            a, _, b = rng[6:].partition("-")
            try:
                start = int(a)
                end = min(int(b), size - 1) if b else size - 1
            except ValueError:
                return self.send_plain(400, "bad range")
            if start >= size or start > end:
                return self.send_plain(416, "range not satisfiable", [("Content-Range", f"bytes */{size}")])
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        with open(path, "rb") as f:
            f.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)


def main():
    args = sys.argv[1:]
    forbid = []
    kerberos = "--kerberos" in args
    args = [a for a in args if a != "--kerberos"]
    while "--forbid" in args:
        i = args.index("--forbid")
        forbid.append(args[i + 1])
        del args[i : i + 2]
    lib, port_file = args
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.lib = lib
    server.forbid = forbid
    server.kerberos = kerberos
    if kerberos:
        import gssapi

        server.creds = gssapi.Credentials(usage="accept")
    server.lock = threading.Lock()
    server.conns = 0
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
