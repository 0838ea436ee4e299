"""testssl.sh (Debian's `testssl.sh` package) against a Sluice TLS listener with the test PKI:
no weak protocol or cipher offered, no vulnerability, server cipher order, no finding rated
LOW or worse. Runs offline (no DNS, no OCSP or CRL fetch) and takes 90-130 s (its ctest
TIMEOUT is raised in tests/CMakeLists.txt)."""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import tls_peers  # noqa: E402
from tls_peers import listener, tls_block  # noqa: E402

BAD_SEVERITIES = {"LOW", "MEDIUM", "HIGH", "CRITICAL"}
# Finding ids of the -U (vulnerabilities) section; each must be rated OK.
VULNERABILITIES = ["heartbleed", "CCS", "ticketbleed", "ROBOT", "secure_renego",
                   "secure_client_renego", "CRIME_TLS", "POODLE_SSL", "fallback_SCSV", "SWEET32",
                   "FREAK", "DROWN", "LOGJAM", "BEAST", "LUCKY13", "RC4"]


class TestSsl(harness.E2ETestCase):
    def test_testssl_finds_nothing(self):
        testssl = harness.require_program("testssl", "testssl.sh")
        openssl = harness.require_program("openssl", "openssl")
        p = tls_peers.make_pki(os.path.join(self.tmp, "pki"))
        # Both key types: the RSA certificate is the default, the ECDSA one answers to
        # "localhost", the name testssl sends; either way every suite of the policy shows.
        sluice = self.start_sluice(tls_peers.config([listener("https", tls=tls_block(
            [(p.app_rsa_cert, p.app_rsa_key), (p.localhost_cert, p.localhost_key)]))]))
        out_json = os.path.join(self.tmp, "testssl.json")
        argv = [testssl, "--quiet", "--color", "0", "--warnings", "off", "--openssl", openssl,
                "-n", "none", "--ip", "127.0.0.1", "--connect-timeout", "5",
                "--openssl-timeout", "5", "--add-ca", p.ca_cert, "--jsonfile", out_json,
                "-p", "-s", "-f", "-U", "-S", "-P", f"localhost:{sluice.port}"]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=600,
                             stdin=subprocess.DEVNULL, cwd=self.tmp)
        # testssl exits 0 even with findings: the verdict is in the JSON.
        self.assertTrue(os.path.exists(out_json),
                        f"testssl wrote no JSON (exit {run.returncode}):\n{run.stdout[-3000:]}\n"
                        f"{run.stderr[-3000:]}")
        with open(out_json) as f:
            findings = json.load(f)
        by_id = {}
        for item in findings:
            by_id.setdefault(item["id"], []).append(item)
        report = "\n".join(f"{x['id']}: {x['severity']}: {x['finding']}" for x in findings)
        self.assertFalse(any(x["id"] == "scanProblem" and x["severity"] in ("FATAL", "WARN")
                             for x in findings), report)
        self.assertGreater(len(findings), 50, report)  # a real scan, not an early abort

        # engine_problem is the local OpenSSL build (no GOST engine), not Sluice.
        bad = [x for x in findings
               if x["severity"] in BAD_SEVERITIES and x["id"] != "engine_problem"]
        self.assertEqual(bad, [], report)

        def one(finding_id):
            items = by_id.get(finding_id)
            self.assertTrue(items, f"no finding {finding_id!r} in the report:\n{report}")
            return items[0]

        for proto in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
            self.assertEqual(one(proto)["finding"], "not offered", f"{proto}\n{report}")
        self.assertIn("offered", one("TLS1_2")["finding"], report)
        self.assertNotIn("not offered", one("TLS1_2")["finding"], report)
        self.assertIn("offered", one("TLS1_3")["finding"], report)
        self.assertNotIn("not offered", one("TLS1_3")["finding"], report)
        for vuln in VULNERABILITIES:
            self.assertEqual(one(vuln)["severity"], "OK", f"{vuln}\n{report}")
        self.assertEqual(one("cipher_order")["severity"], "OK", report)
        self.assertIn("server", one("cipher_order")["finding"], report)
        # The certificate chain was trusted (the test CA) and the name matched.
        self.assertEqual(one("cert_trust")["severity"], "OK", report)
        self.assertEqual(one("cert_chain_of_trust")["severity"], "OK", report)


if __name__ == "__main__":
    unittest.main()
