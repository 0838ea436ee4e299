"""bench/compare --check-headers: what each proxy adds to a request on its way upstream and to
the response, so the "same work" claim of bench/README.md can be checked rather than trusted.

An in-process echo backend answers every request with the request head it received; each proxy
is started with the basic configuration in front of it and sent one GET (Host, User-Agent,
Accept only). The forwarding headers and request ids it added are printed, one row per proxy.
"""

import http.client
import http.server
import threading

from .peers import Cluster, Route
from .report import LABELS

WATCH = ("host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id",
         "forwarded", "via", "x-real-ip", "client-ip")


class _Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - the name http.server calls
        body = "".join(f"{k}: {v}\n" for k, v in self.headers.items()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def check(proxies, skipped):
    """Returns a Markdown table: one row per proxy, one column per watched header (upstream
    request), plus the x-request-id of the response."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rows = ["| proxy | " + " | ".join(f"upstream `{h}`" for h in WATCH) +
            " | response `x-request-id` |", "|---|" + "---|" * (len(WATCH) + 1)]
    try:
        for name, p in proxies.items():
            if name in skipped:
                rows.append(f"| {LABELS.get(name, name)} | skipped: {skipped[name]} |")
                continue
            try:
                p.start("headers", [Route("prefix", "/", "echo")],
                        [Cluster("echo", server.server_address[1])], "/")
            except (RuntimeError, OSError) as e:
                rows.append(f"| {LABELS.get(name, name)} | did not start: "
                            f"{str(e).splitlines()[0]} |")
                continue
            try:
                c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
                c.request("GET", "/check", headers={"Host": "bench.local", "User-Agent": "check",
                                                    "Accept": "*/*"})
                r = c.getresponse()
                seen = {}
                for line in r.read().decode("utf-8", "replace").splitlines():
                    k, _, v = line.partition(": ")
                    seen.setdefault(k.lower(), []).append(v)
                rid = r.getheader("x-request-id") or "—"
                c.close()
            finally:
                p.stop()
            cells = [", ".join(seen[h]) if h in seen else "—" for h in WATCH]
            rows.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + f" | {rid} |")
    finally:
        server.shutdown()
    return "\n".join(rows)
