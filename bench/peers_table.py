#!/usr/bin/env python3
"""Summarises bench/peers.sh results: medians (min-max) per system and W,
ruf/peer ratios, and the targets of docs/BENCHMARKS.md, as Markdown."""
import statistics
import sys


def parse(path):
    rows = []
    for line in open(path):
        kv = {}
        words = line.split()
        if not words:
            continue
        kv["_kind"] = words[0]
        for w in words:
            if "=" in w:
                k, v = w.split("=", 1)
                kv[k] = v
        rows.append(kv)
    return rows


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def med(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, None, None
    return statistics.median(vals), min(vals), max(vals)


def fmt(m, lo, hi, prec=0):
    if m is None:
        return "-"
    f = "%%.%df" % prec
    return (f % m) + " (" + (f % lo) + "-" + (f % hi) + ")"


rows = parse(sys.argv[1])
print("```")
print(open(sys.argv[2]).read().rstrip())
print("```\n")
runs = [r for r in rows if "system" in r and r.get("round", "").isdigit()]
ws = sorted({int(r["w"]) for r in runs})
systems = ["ruf", "mosquitto", "nats-jetstream"]
print("| W | system | ingest/s median (min-max) | desk/s | submit->ack p50/p99 ms | submit->desk p50/p99 ms | rufd CPU us/report | rounds |")
print("|---|--------|---------------------------|--------|------------------------|-------------------------|--------------------|--------|")
medians = {}
for w in ws:
    for s in systems:
        rs = [r for r in runs if r["system"] == s and int(r["w"]) == w]
        if not rs:
            continue
        ing = med([num(r.get("ingest_per_s")) for r in rs])
        dsk = med([num(r.get("desk_per_s")) for r in rs])
        medians[(s, w)] = ing[0]
        p = lambda k: med([num(r.get(k)) for r in rs])[0]
        cpu = p("rufd_cpu_us_per_report")
        print("| %d | %s | %s | %s | %.2f / %.2f | %.2f / %.2f | %s | %d |" % (
            w, s, fmt(*ing), fmt(*dsk), p("receipt_p50_ms") or 0, p("receipt_p99_ms") or 0,
            p("desk_p50_ms") or 0, p("desk_p99_ms") or 0,
            "%.0f" % cpu if cpu else "-", len(rs)))
print()
for w in ws:
    for peer in systems[1:]:
        a, b = medians.get(("ruf", w)), medians.get((peer, w))
        if a and b:
            print("- W=%d: ruf/%s ingest ratio = %.2f" % (w, peer, a / b))
print()
ruf = [r for r in runs if r["system"] == "ruf"]
if ruf:
    def m(k):
        return med([num(r.get(k)) for r in ruf])[0] or 0
    items = sum(num(r.get("commit_items")) or 0 for r in ruf)
    commits = sum(num(r.get("commits")) or 0 for r in ruf)
    print("- ruf group commit: %.1f items per commit on average over all runs (max batch %s); "
          "wire bytes per report (device side, steady) %.0f, handshake %.0f, desk side %.0f per report; "
          "load generator CPU %.0f us per report (median)"
          % (items / commits if commits else 0, max(int(num(r.get("batch_max")) or 0) for r in ruf),
             m("wire_bytes_per_report"), m("handshake_bytes"), m("desk_bytes_per_report"),
             m("client_cpu_us_per_report")))
for r in rows:
    if r["_kind"] == "verify":
        print("- verify: " + " ".join("%s=%s" % (k, v) for k, v in r.items() if k != "_kind"))
    if r["_kind"] == "fsync":
        print("- fsync: " + " ".join("%s=%s" % (k, v) for k, v in r.items() if k != "_kind"))
    if r["_kind"] == "seal" and "count" in r:
        print("- pre-sealing: " + " ".join("%s=%s" % (k, v) for k, v in r.items() if k != "_kind"))
    if r.get("round") == "fixed1k":
        print("- ruf at fixed 1000/s, W=20: ingest %s/s, submit->ack p50/p99 %s/%s ms, "
              "submit->desk p50/p99 %s/%s ms (max %s)" % (
                  r.get("ingest_per_s"), r.get("receipt_p50_ms"), r.get("receipt_p99_ms"),
                  r.get("desk_p50_ms"), r.get("desk_p99_ms"), r.get("desk_max_ms")))
    if r["_kind"] == "idle":
        print("- idle: " + " ".join("%s=%s" % (k, v) for k, v in r.items() if k != "_kind"))
    if r["_kind"] == "cold":
        print("- cold: " + " ".join("%s=%s" % (k, v) for k, v in r.items() if k != "_kind"))
    if r["_kind"] == "seal" and "phase" in r:
        print("- bench_seal: " + " ".join("%s=%s" % (k, v) for k, v in r.items() if k != "_kind"))

# Targets (docs/BENCHMARKS.md), each with its measured value.
print("\n| target | measured | met |\n|---|---|---|")


def tgt(name, value, ok):
    print("| %s | %s | %s |" % (name, value, "yes" if ok else "NO"))


for w, peer in ((20, "mosquitto"), (256, "nats-jetstream")):
    a, b = medians.get(("ruf", w)), medians.get((peer, w))
    if a and b:
        tgt("ingest >= 1.0x %s at W=%d" % (peer, w), "%.2fx (%.0f vs %.0f/s)" % (a / b, a, b),
            a / b >= 1.0)
ver = [r for r in rows if r["_kind"] == "verify" and "ed25519_1k_per_s_all" in r]
best = max([v for (s, w), v in medians.items() if s == "ruf" and v] or [0])
if ver and best:
    cap = num(ver[0]["ed25519_1k_per_s_all"])
    tgt("ingest >= 0.8x Ed25519 verify capacity (all %s cores: rufd verifies on the libuv pool)"
        % ver[0]["cores"], "%.3fx (%.0f vs %.0f/s)" % (best / cap, best, cap), best / cap >= 0.8)
for r in rows:
    if r.get("round") == "fixed1k":
        p99 = num(r.get("desk_p99_ms"))
        tgt("submit->desk p99 <= 5 ms at 1k/s", "%.2f ms (achieved %s/s)" % (p99, r.get("ingest_per_s")),
            p99 <= 5 and (num(r.get("ingest_per_s")) or 0) >= 950)
idle = [r for r in rows if r["_kind"] == "idle" and "kib_per_conn" in r]
if idle:
    r = max(idle, key=lambda r: int(r["n"]))
    k = num(r["kib_per_conn"])
    tgt("<= 4 KiB RSS per idle connection at 10k", "%.1f KiB at %s connections" % (k, r.get("connections")),
        k <= 4 and int(r["n"]) >= 10000)
cold = [r for r in rows if r["_kind"] == "cold"]
if cold and ruf:
    mq = num(cold[0]["wire_bytes"])
    rb = m("handshake_bytes") + m("wire_bytes_per_report")
    tgt("cold wire bytes <= 0.33x MQTT/TLS 1.3 (1 KiB)", "%.2fx (%.0f vs %.0f bytes)" % (rb / mq, rb, mq),
        rb / mq <= 0.33)
sp = {r["phase"]: r for r in rows if r["_kind"] == "seal" and "phase" in r}
if "ruf_envelope_seal" in sp and "raw_xchacha20poly1305_(aead)" in sp:
    a = num(sp["ruf_envelope_seal"]["mib_per_s"])
    b = num(sp["raw_xchacha20poly1305_(aead)"]["mib_per_s"])
    rss = num(sp["ruf_envelope_seal"]["peak_rss_mib"])
    tgt("sealing >= 0.7x raw cipher in <= 16 MiB RSS", "%.2fx (%.0f vs %.0f MiB/s), %.1f MiB" % (a / b, a, b, rss),
        a / b >= 0.7 and rss <= 16)
