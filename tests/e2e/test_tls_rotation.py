"""Certificate rotation without a signal (issue 10, "Rotation without dropping anything"): the
built sluice terminates TLS in front of the Jetty example; its certificate lives in a directory
laid out like a Kubernetes Secret volume (cert.pem -> ..data/cert.pem, ..data -> ..ts1), and is
replaced by the same atomic symlink swap the kubelet does, while wrk runs over TLS. No SIGHUP is
sent anywhere in this file: sluice notices the change itself (inotify).

Also the TLS metrics (promtool accepts them), the expiry gauge and the /certs admin endpoint.
"""

import os
import re
import shutil
import socket
import signal
import ssl
import subprocess
import sys
import textwrap
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pki as test_pki  # noqa: E402

ROTATED_RE = re.compile(r"TLS material reloaded after a file change")
REFUSED_RE = re.compile(r"TLS files changed but the new material is refused")
FAILURE_REASONS = ("timeout", "protocol_version", "no_shared_cipher", "no_application_protocol",
                   "no_client_certificate", "unknown_ca", "bad_certificate", "closed", "other")


def openssl(*args, input_bytes=b""):
    return subprocess.run([harness.require_program("openssl", "openssl"), *args],
                          input=input_bytes, capture_output=True, timeout=60)


def normalized(serial):
    return serial.upper().lstrip("0") or "0"


def not_after_of(cert):
    """The certificate's notAfter in Unix seconds, as openssl reads it."""
    r = openssl("x509", "-in", cert, "-noout", "-enddate")
    assert r.returncode == 0, r.stderr
    return int(ssl.cert_time_to_seconds(r.stdout.decode().strip().split("=", 1)[1]))


class SecretVolume:
    """A directory shaped like a Kubernetes Secret volume, updated the way the kubelet does it:
    a new timestamped directory, a fresh `..data_tmp` symlink to it renamed over `..data` (one
    atomic rename), then the old directory removed."""

    def __init__(self, path):
        self.path = path
        self.generation = 0
        os.makedirs(path)

    def publish(self, files):
        """files: {name in the volume: source path or bytes}."""
        self.generation += 1
        stamp = f"..ts{self.generation}"
        target = os.path.join(self.path, stamp)
        os.makedirs(target)
        for name, source in files.items():
            if isinstance(source, bytes):
                with open(os.path.join(target, name), "wb") as f:
                    f.write(source)
            else:
                shutil.copyfile(source, os.path.join(target, name))
        previous = os.readlink(os.path.join(self.path, "..data")) if self.generation > 1 else None
        tmp = os.path.join(self.path, "..data_tmp")
        os.symlink(stamp, tmp)
        os.rename(tmp, os.path.join(self.path, "..data"))
        for name in files:
            link = os.path.join(self.path, name)
            if not os.path.islink(link):
                os.symlink(os.path.join("..data", name), link)
        if previous:
            shutil.rmtree(os.path.join(self.path, previous))

    def file(self, name):
        return os.path.join(self.path, name)


class TestTlsRotation(harness.E2ETestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        harness.require_program("wrk", "wrk")
        harness.require_program("promtool", "prometheus")
        cls.jetty = cls.start_class_jetty(name="j1")
        cls.pki = test_pki.create_ca(os.path.join(cls.class_tmp(), "pki"))
        cls.pki.issue_server("localhost", "server_1")
        cls.pki.issue_server("localhost", "server_2")
        cls.pki.issue_server("localhost", "server_3")
        cls.pki.issue_client("alice")
        cls.pki.issue_client("bob")
        cls.pki.issue_client("carol")

    def start(self):
        self.volume = SecretVolume(os.path.join(self.tmp, "secret"))
        self.volume.publish({"cert.pem": self.pki.server_1_cert, "key.pem": self.pki.server_1_key})
        text = harness.config(
            {"jetty": [self.jetty.endpoint], "secure": [f"127.0.0.1:{harness.closed_port()}"]},
            [("all", "/", "jetty")], listeners={"https": 0, "plain": 0},
            extra_listener_keys={"https": textwrap.dedent(f"""\
                tls:
                  certificates:
                    - cert: {self.volume.file("cert.pem")}
                      key: {self.volume.file("key.pem")}
                """)},
            # Never connected to (no route, no health check): here for its client certificate.
            extra_cluster_keys={"secure": textwrap.dedent(f"""\
                tls:
                  ca: {self.pki.ca_cert}
                  cert: {self.pki.alice_cert}
                  key: {self.pki.alice_key}
                """)})
        self.sluice = self.start_sluice(text)
        self.port = self.sluice.listeners["https"]
        return self.sluice

    # -- what clients and the admin server see --

    def served_serial(self):
        """The serial of the certificate a new `openssl s_client` connection is served."""
        r = openssl("s_client", "-connect", f"127.0.0.1:{self.port}", "-servername", "localhost")
        self.assertIn(b"BEGIN CERTIFICATE", r.stdout, r.stderr.decode(errors="replace"))
        x = openssl("x509", "-noout", "-serial", input_bytes=r.stdout)
        self.assertEqual(x.returncode, 0, x.stderr)
        return normalized(x.stdout.decode().strip().split("=", 1)[1])

    def wait_served(self, serial):
        """Waits until new connections get `serial`: the new material reaches each worker by a
        post after the log line, so the first connection may still meet the old one."""
        self.sluice._poll(lambda: True if self.served_serial() == serial else None,
                          f"a connection served serial {serial}", 15.0, 0.05)
        # From then on, every new connection (any worker) gets it.
        for _ in range(6):
            self.assertEqual(self.served_serial(), serial)

    def certs(self):
        return self.sluice.admin_json("/certs")["certificates"]

    def listener_cert(self):
        found = [c for c in self.certs() if c.get("listener") == "https"]
        self.assertEqual(len(found), 1, found)
        return found[0]

    def failures(self, m):
        return {reason: m.value("sluice_tls_handshake_failures_total", listener="https",
                                reason=reason) for reason in FAILURE_REASONS}

    # -- tests --

    def test_metrics_and_certs_of_tls_listeners_and_clusters(self):
        sluice = self.start()
        m = sluice.scrape()
        # Only the TLS listener has handshake series, each closed label set whole, at 0.
        self.assertEqual(m.value("sluice_tls_handshakes_total", listener="https"), 0)
        self.assertEqual(m.value("sluice_tls_resumed_handshakes_total", listener="https"), 0)
        self.assertEqual(self.failures(m), {r: 0 for r in FAILURE_REASONS})
        self.assertEqual(len(m.find("sluice_tls_handshake_failures_total")), len(FAILURE_REASONS))
        for version in ("TLSv1.2", "TLSv1.3"):
            self.assertEqual(m.value("sluice_tls_handshakes_by_version_total", listener="https",
                                     version=version), 0)
        self.assertEqual(len(m.find("sluice_tls_handshakes_by_cipher_total")), 9)
        for family in ("sluice_tls_handshakes_total", "sluice_tls_handshakes_by_version_total"):
            self.assertEqual(m.find(family, listener="plain"), [], family)
        self.assertEqual(m.value("sluice_tls_reload_failures_total"), 0)
        # The expiry gauge: the listener's certificate and the cluster's client certificate.
        self.assertEqual(m.value("sluice_tls_certificate_expiry_timestamp_seconds", listener="https",
                                 certificate=self.volume.file("cert.pem")),
                         not_after_of(self.pki.server_1_cert))
        self.assertEqual(m.value("sluice_tls_certificate_expiry_timestamp_seconds", cluster="secure",
                                 certificate=self.pki.alice_cert),
                         not_after_of(self.pki.alice_cert))
        self.assertEqual(len(m.find("sluice_tls_certificate_expiry_timestamp_seconds")), 2)

        # Handshakes are counted by version and cipher (TLS 1.3 by default, 1.2 when asked).
        for extra in ((), ("-tls1_2",)):
            r = openssl("s_client", "-connect", f"127.0.0.1:{self.port}", *extra)
            self.assertIn(b"BEGIN CERTIFICATE", r.stdout, r.stderr)
        m = harness.settled_scrape(
            sluice, lambda m: m.value("sluice_tls_handshakes_total", listener="https") >= 2)
        self.assertEqual(m.value("sluice_tls_handshakes_total", listener="https"), 2)
        for version in ("TLSv1.2", "TLSv1.3"):
            self.assertEqual(m.value("sluice_tls_handshakes_by_version_total", listener="https",
                                     version=version), 1)
        self.assertEqual(sum(v for _, v in m.find("sluice_tls_handshakes_by_cipher_total")), 2)
        self.assert_promtool_accepts(sluice.scrape_text())

        # /certs: where each certificate is used and what it is.
        certs = self.certs()
        self.assertEqual(len(certs), 2, certs)
        listener = self.listener_cert()
        self.assertEqual(listener["certificate"], self.volume.file("cert.pem"))
        self.assertEqual(listener["key"], self.volume.file("key.pem"))
        self.assertEqual(listener["names"], ["localhost"])
        self.assertEqual(listener["subject"], "CN=localhost")
        self.assertEqual(listener["issuer"], "CN=Sluice Test Root CA,O=Sluice tests")
        self.assertEqual(normalized(listener["serial"]), test_pki.serial_of(self.pki.server_1_cert))
        self.assertEqual(listener["not_after_unix"], not_after_of(self.pki.server_1_cert))
        self.assertRegex(listener["not_after"], r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z$")
        self.assertRegex(listener["not_before"], r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z$")
        self.assertLess(listener["not_before_unix"], listener["not_after_unix"])
        self.assertIn(listener["days_left"], (363, 364, 365))  # issued for 365 days, just now
        self.assertEqual(listener["key_type"], "EC prime256v1")
        cluster = [c for c in certs if c.get("cluster") == "secure"]
        self.assertEqual(len(cluster), 1, certs)
        self.assertEqual(cluster[0]["certificate"], self.pki.alice_cert)
        self.assertEqual(cluster[0]["subject"], "CN=alice,O=corp")
        self.assertNotIn("cluster", listener)
        self.assertNotIn("listener", cluster[0])

    def test_rotation_by_symlink_swap_under_wrk_then_bad_files_are_refused(self):
        sluice = self.start()
        serial_1 = test_pki.serial_of(self.pki.server_1_cert)
        serial_2 = test_pki.serial_of(self.pki.server_2_cert)
        self.assertNotEqual(serial_1, serial_2)
        self.assertEqual(self.served_serial(), serial_1)
        self.assertEqual(normalized(self.listener_cert()["serial"]), serial_1)

        # (a) wrk over TLS, a new connection (full handshake) per request, so handshakes run
        # before, during and after the swap. Its duration only has to outlast the checks below;
        # it is stopped with SIGINT (it then prints its numbers) once they are done.
        wrk = subprocess.Popen(
            [harness.require_program("wrk", "wrk"), "-t2", "-c8", "-d120s", "--timeout", "30s",
             "-H", "Connection: close", f"https://127.0.0.1:{self.port}/"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.addCleanup(lambda: wrk.poll() is None and wrk.kill())
        output = {}
        reader = threading.Thread(target=lambda: output.update(zip(("out", "err"),
                                                                   wrk.communicate())))
        reader.start()

        def handshakes():
            return sluice.scrape().value("sluice_tls_handshakes_total", listener="https")

        # Swap once wrk is handshaking.
        sluice._poll(lambda: True if handshakes() >= 20 else None, "wrk's first handshakes",
                     30.0, 0.02)
        # wrk checks the address first with a plain TCP connect and close: no ClientHello,
        # which sluice counts as a handshake that failed with `closed`. Nothing else yet.
        before = self.failures(sluice.scrape())
        self.assertLessEqual(before["closed"], 1, before)
        self.assertEqual({r: v for r, v in before.items() if r != "closed"},
                         {r: 0 for r in FAILURE_REASONS if r != "closed"})
        self.volume.publish({"cert.pem": self.pki.server_2_cert, "key.pem": self.pki.server_2_key})
        sluice.wait_for_log(ROTATED_RE)
        self.wait_served(serial_2)
        # wrk goes on handshaking with the new certificate.
        after = handshakes() + 100
        sluice._poll(lambda: True if handshakes() >= after else None,
                     "100 more handshakes after the rotation", 60.0, 0.02)
        # Judged while wrk still runs: when it stops it abandons the connections it has in
        # flight, some in the middle of a handshake, which sluice rightly counts as `closed`.
        m = sluice.scrape()
        self.assertIsNone(wrk.poll(), "wrk ended before the checks; give it a longer -d")
        self.assertEqual(self.failures(m), before)
        for code_class in ("1xx", "3xx", "4xx", "5xx"):
            self.assertEqual(sum(v for _, v in m.find("sluice_route_requests_total",
                                                      listener="https", code_class=code_class)),
                             0, code_class)
        self.assertGreater(m.value("sluice_route_requests_total", listener="https", vhost="app",
                                   route="all", code_class="2xx"), 0)
        wrk.send_signal(signal.SIGINT)
        reader.join(60)
        self.assertFalse(reader.is_alive(), "wrk did not stop on SIGINT")
        out = output["out"].decode(errors="replace")
        self.assertEqual(wrk.returncode, 0, out + output["err"].decode(errors="replace"))
        self.assertNotIn("Socket errors", out, out)
        self.assertNotIn("Non-2xx", out, out)
        done = re.search(r"(\d+) requests in", out)
        self.assertTrue(done and int(done.group(1)) > 0, out)
        # What wrk's stop left behind settles: its requests are counted and every connection it
        # abandoned is closed, so a handshake it cut is counted (`closed`) before the snapshot
        # (under AddressSanitizer one was counted only after it). Nothing below may add a
        # handshake failure.
        n_done = int(done.group(1))
        m = harness.settled_scrape(
            sluice, lambda m: harness.route_requests_total(m) >= n_done and
            m.value("sluice_listener_downstream_connections_active", listener="https") == 0,
            timeout=30.0)
        failures_after_wrk = self.failures(m)
        # The log names the new serial.
        self.assertIn(f"serial {serial_2}".upper(), sluice.stderr().upper())
        # (c) /certs and the expiry gauge follow.
        self.assertEqual(normalized(self.listener_cert()["serial"]), serial_2)
        self.assertEqual(m.value("sluice_tls_certificate_expiry_timestamp_seconds",
                                 listener="https", certificate=self.volume.file("cert.pem")),
                         not_after_of(self.pki.server_2_cert))
        self.assertEqual(m.value("sluice_tls_reload_failures_total"), 0)

        # (b) A certificate that is not PEM: refused, counted, the old one keeps being served.
        with open(self.pki.server_2_key, "rb") as f:
            key_2 = f.read()
        self.volume.publish({"cert.pem": b"this is not a certificate\n", "key.pem": key_2})
        refused = sluice.wait_for_log(REFUSED_RE)
        self.assertIn(self.volume.file("cert.pem"), refused[-1].string)
        self.assertEqual(sluice.scrape().value("sluice_tls_reload_failures_total"), 1)
        self.assertEqual(self.served_serial(), serial_2)
        self.assertEqual(normalized(self.listener_cert()["serial"]), serial_2)
        # A key that does not match its certificate: refused too.
        with open(self.pki.server_3_cert, "rb") as f:
            cert_3 = f.read()
        self.volume.publish({"cert.pem": cert_3, "key.pem": key_2})
        refused = sluice.wait_for_log(REFUSED_RE, count=2)
        self.assertIn("does not match", refused[-1].string)
        self.assertEqual(sluice.scrape().value("sluice_tls_reload_failures_total"), 2)
        self.assertEqual(self.served_serial(), serial_2)
        self.assertEqual(normalized(self.listener_cert()["serial"]), serial_2)
        # Fixing the files is picked up without a signal as well.
        self.volume.publish({"cert.pem": self.pki.server_3_cert, "key.pem": self.pki.server_3_key})
        sluice.wait_for_log(ROTATED_RE, count=2)
        self.wait_served(test_pki.serial_of(self.pki.server_3_cert))
        self.assertEqual(normalized(self.listener_cert()["serial"]),
                         test_pki.serial_of(self.pki.server_3_cert))
        m = sluice.scrape()
        self.assertEqual(m.value("sluice_tls_reload_failures_total"), 2)
        self.assertEqual(self.failures(m), failures_after_wrk)
        # (d) promtool accepts the scrape with a TLS listener after all of this.
        self.assert_promtool_accepts(sluice.scrape_text())

    def test_a_replaced_crl_applies_to_new_handshakes_without_a_signal(self):
        """mTLS with a CRL that is replaced by a rename (the certbot/`mv` way, not a symlink
        swap): a client revoked in the new CRL is refused at its next handshake."""
        crl = os.path.join(self.tmp, "clients.crl")
        shutil.copyfile(self.pki.revoke(self.pki.bob_cert), crl)
        text = harness.config(
            {"jetty": [self.jetty.endpoint]}, [("all", "/", "jetty")], listeners={"mtls": 0},
            extra_listener_keys=textwrap.dedent(f"""\
                tls:
                  certificates: [ {{ cert: {self.pki.server_1_cert}, key: {self.pki.server_1_key} }} ]
                  client_certificate: {{ mode: required, ca: {self.pki.ca_cert}, crl: {crl} }}
                """))
        sluice = self.start_sluice(text)
        port = sluice.listeners["mtls"]

        def status_as(client):
            """The status line a client with `client`'s certificate gets, or the TLS error."""
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(self.pki.ca_cert)
            ctx.load_cert_chain(getattr(self.pki, f"{client}_cert"),
                                getattr(self.pki, f"{client}_key"))
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                        ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    return tls.recv(64).split(b"\r\n", 1)[0].decode()
            except (ssl.SSLError, ConnectionError) as e:
                return f"refused: {e}"

        def bad_certificates(at_least):
            """The count once it reached `at_least`: the worker counts a refused handshake just
            after the alert the client reads, so the client may learn of it first."""
            def value(m):
                return m.value("sluice_tls_handshake_failures_total", listener="mtls",
                               reason="bad_certificate")
            return value(harness.settled_scrape(sluice, lambda m: value(m) >= at_least))

        self.assertEqual(status_as("carol"), "HTTP/1.1 200 OK")
        self.assertIn("refused", status_as("bob"))
        self.assertEqual(bad_certificates(1), 1)
        # A new CRL that revokes carol too, written next to the old one and renamed over it.
        harness.write_atomically(crl, open(self.pki.revoke(self.pki.carol_cert)).read())
        sluice.wait_for_log(ROTATED_RE)
        sluice._poll(lambda: True if "refused" in status_as("carol") else None,
                     "carol refused after the new CRL", 15.0, 0.05)
        # Every worker has it: carol is refused on each new connection, alice still served.
        for _ in range(4):
            self.assertIn("refused", status_as("carol"))
            self.assertEqual(status_as("alice"), "HTTP/1.1 200 OK")
        self.assertGreaterEqual(bad_certificates(6), 6)
        self.assertEqual(sluice.scrape().value("sluice_tls_reload_failures_total"), 0)


if __name__ == "__main__":
    import unittest
    unittest.main()
