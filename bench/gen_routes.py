#!/usr/bin/python3
"""Writes a sluice.yaml with N routes (default 10,000) for the start-up and reload benchmarks.

A third of the routes match an exact path, a third a prefix, a third a regex; they point at a few
clusters in turn. The first route, /probe, answers directly with the body given by --tag, so a
benchmark can tell which configuration is serving (bench/reload_bench.py changes the tag and
times SIGHUP until the new body comes back).

    bench/gen_routes.py --routes 10000 --port 18080 --admin-port 19901 --tag v1 > /tmp/r.yaml
"""
import argparse
import sys


def generate(routes, port, admin_port, tag, clusters):
    out = []
    w = out.append
    w("admin:\n  address: 127.0.0.1:%d\n" % admin_port)
    w("listeners:\n  - name: main\n    address: 127.0.0.1:%d\n" % port)
    w("    virtual_hosts:\n      - name: all\n        domains: [\"*\"]\n        routes:\n")
    w("          - name: probe\n            match: { path: /probe }\n"
      "            direct_response: { status: 200, body: \"%s\" }\n" % tag)
    for i in range(routes - 1):
        kind = i % 3
        if kind == 0:
            match = "path: /exact/%d/item" % i
        elif kind == 1:
            match = "prefix: /prefix/%d/" % i
        else:
            # Distinct patterns (each is compiled), small programs (about 20 RE2 instructions).
            match = "regex: \"^/regex/%d/[a-z]+$\"" % i
        w("          - name: r%d\n            match: { %s }\n            cluster: c%d\n"
          % (i, match, i % clusters))
    w("clusters:\n")
    for c in range(clusters):
        w("  - name: c%d\n    endpoints: [ 127.0.0.1:%d ]\n" % (c, 19000 + c))
    return "".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--routes", type=int, default=10000)
    p.add_argument("--clusters", type=int, default=4)
    p.add_argument("--port", type=int, default=18080)
    p.add_argument("--admin-port", type=int, default=19901)
    p.add_argument("--tag", default="v1", help="body of the /probe route")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    a = p.parse_args()
    text = generate(a.routes, a.port, a.admin_port, a.tag, a.clusters)
    if a.output:
        with open(a.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
