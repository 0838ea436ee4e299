"""TLS helpers of the e2e tests: configurations with TLS listeners, `openssl s_client` and curl
runs against them, and an nginx TLS backend. Used by test_tls.py, test_testssl.py and
test_upstream_tls.py; the certificates come from pki.py.

Standard library only. Every peer (openssl, curl, nginx) is required through
harness.require_program(): a missing one fails the test, never skips it.
"""

import json
import os
import re
import signal
import subprocess
import textwrap
import time

import harness
import pki as pki_module

PEER_TIMEOUT = 30  # seconds for one openssl/curl run: a hang fails, it never blocks ctest

OK_ROUTE = """\
- name: ok
  match: { prefix: / }
  direct_response: { status: 200, body: "ok\\n" }
"""


def tls_block(certificates, min_version=None, client_certificate=None, alpn=None):
    """The `tls:` map of a listener. certificates: [(cert, key), ...]; client_certificate: a
    dict like {"mode": "required", "ca": PATH, "crl": PATH}."""
    lines = ["tls:", "  certificates:"]
    lines += [f"    - {{ cert: {json.dumps(c)}, key: {json.dumps(k)} }}" for c, k in certificates]
    if min_version:
        lines.append(f'  min_version: "{min_version}"')
    if alpn:
        lines.append(f"  alpn: [{', '.join(alpn)}]")
    if client_certificate:
        items = ", ".join(f"{k}: {json.dumps(v)}" for k, v in client_certificate.items())
        lines.append(f"  client_certificate: {{ {items} }}")
    return "\n".join(lines) + "\n"


def listener(name, port=0, tls=None, routes=OK_ROUTE, handshake_timeout=None):
    """One entry of `listeners:` (a YAML list item) with one virtual host "app" for every
    domain. tls: the text of tls_block(), or None for plaintext."""
    body = [f"name: {name}", f"address: 127.0.0.1:{port}"]
    if handshake_timeout:
        body.append(f"tls_handshake_timeout: {handshake_timeout}")
    text = "\n".join(body) + "\n"
    if tls:
        text += tls
    text += "virtual_hosts:\n  - name: app\n    domains: [\"*\"]\n    routes:\n"
    text += textwrap.indent(routes, "      ")
    return "- " + textwrap.indent(text, "  ")[2:]


def config(listeners, clusters="", workers=2):
    """A whole configuration: `listeners` is a list of listener() texts, `clusters` the text of
    the `clusters:` list items (empty: one unused cluster)."""
    out = f"workers: {workers}\nadmin: {{ address: 127.0.0.1:0 }}\nlisteners:\n"
    out += "".join(textwrap.indent(x, "  ") for x in listeners)
    # A configuration needs a cluster even when every route answers by itself.
    clusters = clusters or "- name: unused\n  endpoints: [ 127.0.0.1:9 ]\n"
    out += "clusters:\n" + textwrap.indent(clusters, "  ")
    return out


def make_pki(directory):
    """The whole test PKI (pki.create) in `directory`."""
    harness.require_program("openssl", "openssl")
    return pki_module.create(directory)


# --- openssl s_client ----------------------------------------------------------------------------

class SClient:
    """The outcome of one `openssl s_client` run: its output, and what it says about the
    session (protocol, cipher, reuse, ALPN, the served certificate)."""

    def __init__(self, proc):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.text = proc.stdout + proc.stderr

    def _search(self, pattern):
        m = re.search(pattern, self.stdout, re.M)
        return m.group(1) if m else None

    @property
    def session_line(self):
        """"New, TLSv1.3, Cipher is ..." or "Reused, TLSv1.2, Cipher is ..." (None: no session)."""
        m = re.search(r"^(New|Reused), (TLSv[0-9.]+), Cipher is (\S+)$", self.stdout, re.M)
        return m.groups() if m else None

    @property
    def reused(self):
        line = self.session_line
        return line is not None and line[0] == "Reused"

    @property
    def protocol(self):
        line = self.session_line
        return line[1] if line else None

    @property
    def alpn(self):
        return self._search(r"^ALPN protocol: (\S+)$")

    @property
    def certificate_pem(self):
        m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", self.stdout,
                      re.S)
        return m.group(0) if m else None

    def served_certificate(self):
        """(subject in RFC 2253, serial in upper-case hex without leading zeros, public key
        algorithm: "rsaEncryption" or "id-ecPublicKey") of the certificate the server sent;
        fails when none was."""
        pem = self.certificate_pem
        if pem is None:
            raise AssertionError(f"s_client saw no server certificate:\n{self.text[-3000:]}")
        out = subprocess.run(
            [harness.require_program("openssl", "openssl"), "x509", "-noout", "-subject",
             "-serial", "-nameopt", "RFC2253", "-text"],
            input=pem, capture_output=True, text=True, timeout=PEER_TIMEOUT, check=True).stdout
        subject = re.search(r"^subject=(.*)$", out, re.M).group(1).strip()
        serial = re.search(r"^serial=([0-9A-F]+)$", out, re.M).group(1).lstrip("0")
        algorithm = re.search(r"Public Key Algorithm: (\S+)", out).group(1)
        return subject, serial, algorithm

    @property
    def got_http_200(self):
        return re.search(r"^HTTP/1\.1 200 ", self.stdout, re.M) is not None

    def __repr__(self):
        return f"<s_client exit {self.returncode}:\n{self.text[-4000:]}>"


def s_client(port, *args, request=True, host="127.0.0.1"):
    """`openssl s_client -connect host:port ARGS`. With `request`, sends one GET with
    `connection: close` and waits for the server to close (so TLS 1.3 session tickets, which
    come after the handshake, are read before -sess_out writes the session)."""
    openssl = harness.require_program("openssl", "openssl")
    stdin = (f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n" if request else "")
    argv = [openssl, "s_client", "-connect", f"{host}:{port}", *(["-ign_eof"] if request else []),
            *args]
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                          timeout=PEER_TIMEOUT)
    return SClient(proc)


# --- curl ----------------------------------------------------------------------------------------

class CurlResult:
    def __init__(self, proc):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        m = re.search(r"\nhttp_code=(\d{3})$", proc.stdout)
        self.status = int(m.group(1)) if m else None
        self.body = proc.stdout[:m.start()] if m else proc.stdout

    def __repr__(self):
        return (f"<curl exit {self.returncode} status {self.status}\n--- stdout ---\n"
                f"{self.stdout[-2000:]}\n--- stderr ---\n{self.stderr[-3000:]}>")


def curl(url, *args, ca=None, resolve=None):
    """curl -sS -v URL; `resolve` (host, port) pins the name to 127.0.0.1 (SNI and verification
    then use the name)."""
    argv = [harness.require_program("curl", "curl"), "-sS", "-v", "--max-time", "20",
            "-w", "\nhttp_code=%{http_code}"]
    if ca:
        argv += ["--cacert", ca]
    if resolve:
        argv += ["--resolve", f"{resolve[0]}:{resolve[1]}:127.0.0.1"]
    argv += [*args, url]
    return CurlResult(subprocess.run(argv, capture_output=True, text=True,
                                     timeout=PEER_TIMEOUT, stdin=subprocess.DEVNULL))


# --- nginx ---------------------------------------------------------------------------------------

NGINX_CONF = """\
# One nginx process (master_process off): nothing changes user when the tests run as root, so
# the test PKI's owner-only keys and the temp dir stay readable.
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    # One line per request: the connection serial number (keep-alive reuse), whether the TLS
    # session was resumed ("r") and the client certificate's subject.
    log_format tls '$server_port conn=$connection reused=$ssl_session_reused '
                   'proto=$ssl_protocol dn="$ssl_client_s_dn" $request_uri $status';
    access_log {dir}/access.log tls;
    keepalive_timeout 60s;
    keepalive_requests 1000;
{servers}
}}
"""

NGINX_SERVER = """\
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets on;
        ssl_session_cache shared:tls_sessions_{port}:1m;
{client_auth}{extra}
        location = /health {{ return 200 "ok\\n"; }}
        location / {{
            add_header x-client-dn $ssl_client_s_dn always;
            add_header x-nginx-port $server_port always;
            return 200 "nginx $request_uri\\n";
        }}
    }}
"""


class Nginx:
    """A Debian nginx serving TLS on the given ports with the test PKI's certificates.

    servers: [{"port": P, "cert": C, "key": K, "client_ca": CA or None, "extra": TEXT}]
    (client_ca: nginx requires a client certificate issued by CA, `ssl_verify_client on`;
    extra: more directives for the server block)."""

    def __init__(self, workdir, servers):
        self.dir = os.path.join(workdir, "nginx")
        for d in ("", "client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        parts = []
        for s in servers:
            client_auth = ""
            if s.get("client_ca"):
                client_auth = (f"        ssl_client_certificate {s['client_ca']};\n"
                               "        ssl_verify_client on;\n")
            extra = "".join(f"        {line}\n" for line in s.get("extra", "").splitlines())
            parts.append(NGINX_SERVER.format(port=s["port"], cert=s["cert"], key=s["key"],
                                              client_auth=client_auth, extra=extra))
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.dir, servers="".join(parts)))
        self.ports = [s["port"] for s in servers]
        self.proc = None

    def start(self, timeout=20.0):
        binary = harness.require_program("nginx", "nginx")
        check = subprocess.run([binary, "-t", "-p", self.dir, "-c", self.conf],
                               capture_output=True, text=True, timeout=PEER_TIMEOUT)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t refused the test config:\n{check.stderr}")
        self.proc = harness._spawn([binary, "-p", self.dir, "-c", self.conf],
                                   os.path.join(self.dir, "stdout"),
                                   os.path.join(self.dir, "stderr"))
        deadline = time.monotonic() + timeout
        while not all(harness.port_accepts(p) for p in self.ports):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start:\n{self.error_log()[-3000:]}")
            time.sleep(0.05)
        return self

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            harness._kill_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(harness.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                harness._kill_group(self.proc, signal.SIGKILL)
                self.proc.wait(10)
        harness._live.discard(self.proc)

    def error_log(self):
        return harness._read(os.path.join(self.dir, "error.log"))

    def access_log(self):
        """The access log as a list of dicts: port, conn, reused, proto, dn, uri, status."""
        out = []
        regex = re.compile(r'^(\d+) conn=(\d+) reused=(\S*) proto=(\S*) dn="(.*)" (\S+) (\d+)$')
        for line in harness._read(os.path.join(self.dir, "access.log")).splitlines():
            m = regex.match(line)
            if not m:
                raise AssertionError(f"unexpected nginx access log line: {line!r}")
            out.append(dict(zip(("port", "conn", "reused", "proto", "dn", "uri", "status"),
                                m.groups())))
        return out
