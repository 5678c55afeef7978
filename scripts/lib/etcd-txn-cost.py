#!/usr/bin/python3
"""What one etcd Txn costs etcd's members in CPU, through the JSON gateway
(what oauth2-admin and the module use, over libcurl) and through gRPC
(python3-etcd3), one Txn at a time: scripts/etcd-txn-cost runs it.

usage: etcd-txn-cost.py <client url> <pid,pid,...> <txns> <puts,puts,...>
"""
import base64
import http.client
import json
import os
import sys
import time
import urllib.parse

import etcd3

url, pids, txns, sizes = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
pids = [int(p) for p in pids.split(",")]
sizes = [int(n) for n in sizes.split(",")]
u = urllib.parse.urlsplit(url)
TICK = os.sysconf("SC_CLK_TCK")
VALUE = "x" * 150  # about a token record's size


def cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def b64(s):
    return base64.b64encode(s.encode()).decode()


def gateway(conn, tag, i, n):
    body = {"compare": [], "success": [
        {"request_put": {"key": b64(f"/txn-cost/{tag}/{i}/{j}"), "value": b64(VALUE)}}
        for j in range(n)]}
    conn.request("POST", "/v3/kv/txn", json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    answer = r.read()
    if r.status != 200 or b"revision" not in answer:
        sys.exit(f"gateway Txn failed: {r.status} {answer[:200]!r}")


def grpc(client, tag, i, n):
    ok, _ = client.transaction(compare=[], failure=[], success=[
        client.transactions.put(f"/txn-cost/{tag}/{i}/{j}", VALUE) for j in range(n)])
    if not ok:
        sys.exit("gRPC Txn failed")


conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
client = etcd3.client(host=u.hostname, port=u.port, timeout=10)
print("| transport | puts per Txn | ms per Txn | etcd CPU ms per Txn, each member | all members |")
print("| --- | --- | --- | --- | --- |")
for n in sizes:
    for name, send, handle in (("JSON gateway", gateway, conn), ("gRPC", grpc, client)):
        send(handle, "warm", 0, n)
        before = [cpu_s(p) for p in pids]
        t0 = time.monotonic()
        for i in range(txns):
            send(handle, f"{name[0]}{n}", i, n)
        elapsed = time.monotonic() - t0
        used = [(cpu_s(p) - b) * 1000 / txns for p, b in zip(pids, before)]
        print(f"| {name} | {n} | {elapsed * 1000 / txns:.2f} | "
              f"{' / '.join(f'{x:.2f}' for x in used)} | {sum(used):.2f} |")
