#!/usr/bin/env python3
"""Posts Odoo-shaped SMS send calls to a running sidecar and reports SMS accepted per
second into the outbox (bench/sms_accept.sh starts the sidecar with its worker off).

Each client thread keeps one HTTP/1.1 connection and posts batches of --batch numbers
(one text, unique uuids, as Odoo's cron sends them) for --duration seconds, to accounts
chosen at random among --accounts tokens (bench-0 .. bench-N-1)."""
import argparse
import http.client
import json
import os
import random
import threading
import time
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--accounts", type=int, default=100)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    a = ap.parse_args()
    target = urllib.parse.urlsplit(a.url)
    start = time.monotonic()
    measure_from = start + a.warmup
    stop = measure_from + a.duration
    lock = threading.Lock()
    totals = {"accepted": 0, "refused": 0, "calls": 0, "errors": 0, "latencies": []}

    def client():
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        rnd = random.Random(os.urandom(8))
        while True:
            now = time.monotonic()
            if now >= stop:
                break
            token = f"bench-{rnd.randrange(a.accounts)}"
            numbers = [
                {"uuid": os.urandom(16).hex(), "number": f"+3247{rnd.randrange(10**7):07d}"}
                for _ in range(a.batch)
            ]
            body = json.dumps({
                "jsonrpc": "2.0", "method": "call", "id": 1,
                "params": {"messages": [{"content": "Your order is ready", "numbers": numbers}],
                           "account_token": token, "dbuuid": "bench",
                           "webhook_url": "http://127.0.0.1:9/sms/status"},
            })
            t0 = time.monotonic()
            conn.request("POST", "/api/sms/3/send", body, {"Content-Type": "application/json"})
            answer = json.loads(conn.getresponse().read())
            t1 = time.monotonic()
            if t0 < measure_from:
                continue
            with lock:
                totals["calls"] += 1
                totals["latencies"].append(t1 - t0)
                if "error" in answer:
                    totals["errors"] += 1
                    continue
                ok = sum(1 for r in answer["result"] if r["state"] == "success")
                totals["accepted"] += ok
                totals["refused"] += len(answer["result"]) - ok

    threads = [threading.Thread(target=client) for _ in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat = sorted(totals["latencies"]) or [0.0]
    pct = lambda p: round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 1)
    print(json.dumps({
        "sms_per_sec": round(totals["accepted"] / a.duration, 1),
        "accepted": totals["accepted"], "refused": totals["refused"],
        "calls": totals["calls"], "errors": totals["errors"],
        "batch": a.batch, "clients": a.clients,
        "call_ms": {"p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99)},
    }))


if __name__ == "__main__":
    main()
