"""A throw-away test PKI, made with the `openssl` CLI at test time (nothing private is committed).

    pki = create(directory)          # every artefact below, in `directory`
    pki = create_ca(directory)       # only the root CA; then pki.issue(stem, key_type, ...)
    pki.app_rsa_cert, pki.app_rsa_key, pki.ca_cert, pki.crl, ...
    cert, key = pki.issue_server("app_rsa", "app_rsa_2")   # same names, new key, new serial

    /usr/bin/python3 tests/e2e/pki.py DIR                       # the same, paths as JSON
    /usr/bin/python3 tests/e2e/pki.py DIR --reissue app_rsa app_rsa_2

The one source of truth for test certificates: the C++ integration tests run this file
(tests/support/test_pki.cc) and the benchmark harness imports it (bench/compare_lib/tls.py).

What `create` makes (every certificate has its own serial; CA-issued leaves count up from
0x51CE0000000000000A1000, the wrong CA's from 0x51CE0000000000000B9000):
  ca             test root CA (ECDSA P-256), issues every server and client certificate below
  wrong_ca       an unrelated root CA (what a client outside the trust domain would present)
  app_rsa        server, RSA 2048, DNS app.example.test and *.app.example.test
  api_ecdsa      server, ECDSA P-256, DNS api.example.test
  localhost      server, ECDSA P-256, DNS localhost and IP 127.0.0.1
  expired        server, ECDSA P-256, localhost/127.0.0.1/expired.example.test, valid from 30
                 days ago until yesterday (`openssl ca -startdate/-enddate`: the 3.0 CLI's
                 `x509` has no -not_before/-not_after)
  alice          client, subject CN=alice,O=corp, URI SAN spiffe://corp/ns/prod/sa/alice
  bob            client, subject CN=bob,O=corp, DNS SAN bob.clients.test
  carol          client, subject CN=carol,O=corp, URI SAN spiffe://corp/ns/prod/sa/carol,
                 revoked in `crl`
  mallory        client issued by wrong_ca, with alice's URI SAN (an impersonation attempt)
  crl            the CA's CRL (PEM), revoking carol
  encrypted_key  app_rsa's key encrypted with AES-256 under `encrypted_key_passphrase`

Standard library only; needs /usr/bin/openssl (Debian package openssl).
"""

import datetime
import json
import os
import shutil
import subprocess
import sys
import textwrap

ENCRYPTED_KEY_PASSPHRASE = "sluice-test-passphrase"

# name -> (key type, subject, SAN entries). Servers carry their DNS name as CN too, as most
# real certificates do; SNI matching must use the SAN (the issue says so), not the CN.
SERVERS = {
    "app_rsa": ("rsa", "/CN=app.example.test",
                ["DNS:app.example.test", "DNS:*.app.example.test"]),
    "api_ecdsa": ("ecdsa", "/CN=api.example.test", ["DNS:api.example.test"]),
    "localhost": ("ecdsa", "/CN=localhost", ["DNS:localhost", "IP:127.0.0.1"]),
    "expired": ("ecdsa", "/CN=expired.example.test",
                ["DNS:localhost", "IP:127.0.0.1", "DNS:expired.example.test"]),
}
# name -> (issuing CA, subject, SAN entries). -preserveDN keeps the order written here (O, then
# CN), which RFC 2253 (and Envoy's XFCC Subject) prints reversed: "CN=bob,O=corp".
CLIENTS = {
    "alice": ("ca", "/O=corp/CN=alice", ["URI:spiffe://corp/ns/prod/sa/alice"]),
    "bob": ("ca", "/O=corp/CN=bob", ["DNS:bob.clients.test"]),
    "carol": ("ca", "/O=corp/CN=carol", ["URI:spiffe://corp/ns/prod/sa/carol"]),
    "mallory": ("wrong_ca", "/O=corp/CN=alice", ["URI:spiffe://corp/ns/prod/sa/alice"]),
}
# name -> (subject, serial of the CA certificate, first serial it issues). Serials are 11 bytes
# (testssl.sh reports serials under 64 bits as a finding), counting up so each is distinct and a
# test can tell them apart at a glance.
CAS = {
    "ca": ("/O=Sluice tests/CN=Sluice Test Root CA", "0x51CE0000000000000000C1",
           "51CE0000000000000A1000"),
    "wrong_ca": ("/O=Elsewhere/CN=Unrelated Test Root CA", "0x51CE0000000000000000C2",
                 "51CE0000000000000B9000"),
}

CONFIG = """\
# openssl req / openssl ca configuration of one test CA (written by tests/e2e/pki.py).
[ ca ]
default_ca = ca_default

[ ca_default ]
dir = {dir}
database = $dir/index.txt
serial = $dir/serial
crlnumber = $dir/crlnumber
new_certs_dir = $dir/issued
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
default_crl_days = 30
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no

[ policy_any ]
organizationName = optional
commonName = optional

[ req ]
distinguished_name = req_dn
prompt = no

[ req_dn ]
CN = unused

[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""

LEAF_EXTENSIONS = """\
[ leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, {key_usage}
extendedKeyUsage = {eku}
subjectAltName = {san}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
{extra}"""

# Never fetched (no test runs a CRL server; OpenSSL does not fetch); it is there because
# testssl.sh rates a server certificate without a CRL or OCSP URI as a HIGH finding.
SERVER_EXTRA = "crlDistributionPoints = URI:http://crl.example.test/sluice-test-ca.crl\n"


class PkiError(RuntimeError):
    pass


def openssl_binary():
    path = shutil.which("openssl")
    if not path:
        # A failure, never a skip (DESIGN.md §8); harness.require_program says the same.
        raise PkiError("openssl is not installed: apt-get install openssl "
                       "(scripts/bootstrap installs every test peer)")
    return path


def _run(*args, cwd=None):
    r = subprocess.run([openssl_binary(), *args], cwd=cwd, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise PkiError(f"openssl {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def _asn1_time(t):
    return t.strftime("%Y%m%d%H%M%SZ")


def generate_key(path, key_type):
    """An unencrypted private key, readable by its owner only."""
    if key_type == "rsa":
        opts = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    elif key_type == "ecdsa":
        opts = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    else:
        raise ValueError(f"key type {key_type!r}: rsa or ecdsa")
    old = os.umask(0o077)
    try:
        _run("genpkey", *opts, "-out", path)
    finally:
        os.umask(old)
    return path


def serial_of(cert_path):
    """The certificate's serial as upper-case hex without leading zeros (as `openssl x509
    -serial` prints it, minus its padding)."""
    out = _run("x509", "-in", cert_path, "-noout", "-serial")
    return out.strip().split("=", 1)[1].lstrip("0") or "0"


class Pki:
    """The paths of one test PKI in `directory`; issues more certificates on demand."""

    def __init__(self, directory):
        self.dir = os.path.abspath(directory)
        self.paths = {}

    def __getattr__(self, name):
        paths = self.__dict__.get("paths", {})
        if name in paths:
            return paths[name]
        raise AttributeError(name)

    # --- CAs -------------------------------------------------------------------------------

    def _ca_dir(self, ca):
        return os.path.join(self.dir, ca)

    def _make_ca(self, ca):
        subject, cert_serial, first_serial = CAS[ca]
        d = self._ca_dir(ca)
        os.makedirs(os.path.join(d, "issued"), exist_ok=True)
        cnf = os.path.join(d, "ca.cnf")
        with open(cnf, "w") as f:
            f.write(CONFIG.format(dir=d))
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write(first_serial + "\n")
        with open(os.path.join(d, "crlnumber"), "w") as f:
            f.write("01\n")
        key = generate_key(os.path.join(d, "ca.key"), "ecdsa")
        cert = os.path.join(d, "ca.pem")
        _run("req", "-config", cnf, "-x509", "-new", "-key", key, "-subj", subject,
             "-set_serial", cert_serial, "-days", "3650", "-extensions", "v3_ca", "-out", cert)
        self.paths[f"{ca}_cert"] = cert
        self.paths[f"{ca}_key"] = key

    def _sign(self, ca, stem, key_type, subject, san, eku, not_before=None, not_after=None):
        """Key, CSR and certificate `stem`.{key,pem} in self.dir, issued by `ca`."""
        now = datetime.datetime.now(datetime.timezone.utc)
        # An hour back: a peer whose clock is a little behind still accepts it.
        not_before = not_before or now - datetime.timedelta(hours=1)
        not_after = not_after or now + datetime.timedelta(days=365)
        key = generate_key(os.path.join(self.dir, f"{stem}.key"), key_type)
        csr = os.path.join(self.dir, f"{stem}.csr")
        cert = os.path.join(self.dir, f"{stem}.pem")
        ext = os.path.join(self.dir, f"{stem}.ext")
        with open(ext, "w") as f:
            f.write(LEAF_EXTENSIONS.format(
                key_usage="digitalSignature, keyEncipherment" if key_type == "rsa"
                else "digitalSignature",
                eku=eku, san=", ".join(san),
                extra=SERVER_EXTRA if eku == "serverAuth" else ""))
        cnf = os.path.join(self._ca_dir(ca), "ca.cnf")
        _run("req", "-config", cnf, "-new", "-key", key, "-subj", subject, "-out", csr)
        _run("ca", "-config", cnf, "-batch", "-notext", "-preserveDN", "-in", csr, "-out", cert,
             "-startdate", _asn1_time(not_before), "-enddate", _asn1_time(not_after),
             "-extfile", ext, "-extensions", "leaf")
        os.remove(csr)
        os.remove(ext)
        return cert, key

    # --- issuing ---------------------------------------------------------------------------

    def issue(self, stem, key_type, subject, san, eku="serverAuth", not_before=None,
              not_after=None, ca="ca"):
        """Any leaf: a new `key_type` ("rsa" or "ecdsa") key and a certificate for `subject`
        ("/O=.../CN=...") and `san` (["DNS:...", "IP:...", "URI:..."]) with a new serial, as
        `stem`.{pem,key}; also recorded in paths as `stem`_cert and `stem`_key."""
        cert, key = self._sign(ca, stem, key_type, subject, san, eku, not_before, not_after)
        self.paths[f"{stem}_cert"], self.paths[f"{stem}_key"] = cert, key
        return cert, key

    def issue_server(self, name, stem=None, not_before=None, not_after=None):
        """A server certificate for the names of SERVERS[name] with a new key and serial, as
        `stem` (default `name`); for rotation tests, e.g. issue_server("app_rsa", "app_rsa_2")."""
        return self.issue(stem or name, *SERVERS[name], not_before=not_before,
                          not_after=not_after)

    def issue_client(self, name):
        ca, subject, san = CLIENTS[name]
        return self.issue(name, "ecdsa", subject, san, "clientAuth", ca=ca)

    def revoke(self, cert):
        """Revokes `cert` (issued by the test CA) and rewrites the CRL."""
        cnf = os.path.join(self._ca_dir("ca"), "ca.cnf")
        _run("ca", "-config", cnf, "-revoke", cert, "-crl_reason", "keyCompromise")
        crl = os.path.join(self.dir, "ca.crl")
        _run("ca", "-config", cnf, "-gencrl", "-out", crl)
        self.paths["crl"] = crl
        return crl


def create_ca(directory):
    """Only the test root CA, in `directory` (created if needed): a Pki to issue() from."""
    os.makedirs(directory, exist_ok=True)
    pki = Pki(directory)
    pki._make_ca("ca")
    return pki


def create(directory):
    """Makes the whole test PKI in `directory` (created if needed); returns a Pki."""
    pki = create_ca(directory)
    pki._make_ca("wrong_ca")
    now = datetime.datetime.now(datetime.timezone.utc)
    for name in SERVERS:
        if name == "expired":
            pki.issue_server(name, not_before=now - datetime.timedelta(days=30),
                             not_after=now - datetime.timedelta(days=1))
        else:
            pki.issue_server(name)
    for name in CLIENTS:
        pki.issue_client(name)
    pki.revoke(pki.carol_cert)
    encrypted = os.path.join(pki.dir, "app_rsa.encrypted.key")
    old = os.umask(0o077)
    try:
        _run("pkey", "-in", pki.app_rsa_key, "-aes256", "-passout",
             f"pass:{ENCRYPTED_KEY_PASSPHRASE}", "-out", encrypted)
    finally:
        os.umask(old)
    pki.paths["encrypted_key"] = encrypted
    pki.paths["encrypted_key_passphrase"] = ENCRYPTED_KEY_PASSPHRASE
    return pki


def main(argv):
    usage = textwrap.dedent("""\
        usage: pki.py DIR                    make the test PKI in DIR, print its paths as JSON
               pki.py DIR --reissue NAME STEM  (after the above) a new certificate and key for
                                               server NAME's names as DIR/STEM.{pem,key}""")
    if len(argv) == 2:
        print(json.dumps(create(argv[1]).paths, indent=1, sort_keys=True))
        return 0
    if len(argv) == 5 and argv[2] == "--reissue" and argv[3] in SERVERS:
        cert, key = Pki(argv[1]).issue_server(argv[3], argv[4])
        print(json.dumps({"cert": cert, "key": key}, indent=1))
        return 0
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except PkiError as e:
        print(f"pki.py: {e}", file=sys.stderr)
        sys.exit(1)
