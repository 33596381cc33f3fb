#!/usr/bin/env python3
"""Independent check of issue 11's defects 1, 3 and 4, from the public surfaces only: the `engine` CLI (built with
`dotnet build -c Release`) and the Python package over libengine.so (built by bindings/python/build.sh).
It knows nothing of the engine's internals beyond the documented file layout of an index directory.

  /usr/bin/python3 tests/independent/check_defects.py      # exit 0 when every check passes

Defect 1: an index directory whose write-ahead log is missing or empty must refuse to open (CLI and API) instead of
          silently losing later writes; --accept-log-loss opens it, and writes made after that survive a reopen.
Defect 3: a corrupt posting file gives the same error whatever the thread count (CLI exit code and message kind, and
          the Python error code 4 "corrupt").
Defect 4: `engine mine` on an empty corpus file exits with a clear error (exit code 2, no stack trace), not a crash.
"""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
CLI = os.path.join(ROOT, "engine", "Engine.Cli", "bin", "Release", "net10.0", "Engine.Cli.dll")
failures = []


def engine(*args):
    p = subprocess.run(["dotnet", CLI, *args], capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout + p.stderr


def check(ok, what, detail=""):
    print(("PASS " if ok else "FAIL ") + what + ("" if ok else "\n     " + detail[-2000:]))
    if not ok:
        failures.append(what)


def clear_log(index_dir, mode):
    """Deletes (mode 'delete') or truncates to 0 bytes (mode 'empty') every file of the index's log directory."""
    wal = os.path.join(index_dir, "wal")
    for base, _, files in os.walk(wal):
        for f in files:
            path = os.path.join(base, f)
            if mode == "delete":
                os.remove(path)
            else:
                open(path, "wb").close()


def main():
    import numpy as np
    import minedex as eng

    tmp = tempfile.mkdtemp(prefix="engine-independent-")
    try:
        data, built = os.path.join(tmp, "data"), os.path.join(tmp, "idx")
        rc, out = engine("data", "synth", "--n", "3000", "--d", "16", "--nq", "50", "--clusters", "20", "--seed", "7", "--out", data)
        check(rc == 0, "setup: engine data synth", out)
        rc, out = engine("build", "--data", data, "--index", "SPANN(size=32)", "--dir", built)
        check(rc == 0, "setup: engine build SPANN", out)
        if failures:
            return

        # Defect 1, CLI: a missing or empty log is refused, naming the log; --accept-log-loss opens it.
        label = {"delete": "deleted", "empty": "emptied to 0 bytes"}
        for mode in ("delete", "empty"):
            d = os.path.join(tmp, "d1-" + mode)
            shutil.copytree(built, d)
            clear_log(d, mode)
            rc, out = engine("search", "--dir", d, "--data", data, "--threads", "1")
            check(rc != 0 and "log" in out.lower() and "--accept-log-loss" in out and "Unhandled" not in out,
                  f"defect 1 (CLI, log {label[mode]}): engine search refuses with a clear error (exit {rc})", out)
            rc, out = engine("search", "--dir", d, "--data", data, "--threads", "1", "--accept-log-loss")
            check(rc == 0, f"defect 1 (CLI, log {label[mode]}): --accept-log-loss opens the index", out)

        # Defect 1, API: the same refusal through the library; an accepted loss keeps later acknowledged writes.
        d = os.path.join(tmp, "d1-api")
        shutil.copytree(built, d)
        clear_log(d, "delete")
        try:
            eng.load(d).close()
            check(False, "defect 1 (API): loading an index without its log raises")
        except eng.EngineError as e:
            check(e.code == 4 and "log" in str(e).lower(), "defect 1 (API): loading an index without its log raises a corrupt-index error", str(e))
        rc, out = engine("search", "--dir", d, "--data", data, "--threads", "1", "--accept-log-loss")
        check(rc == 0, "defect 1 (API): the loss accepted once through the CLI", out)
        rng = np.random.default_rng(1)
        extra = rng.standard_normal((200, 16)).astype(np.float32)
        with eng.load(d) as index:
            before = index.ntotal
            index.add(extra, np.arange(1_000_000, 1_000_200, dtype=np.int64))
        with eng.load(d) as index:
            check(index.ntotal == before + 200, f"defect 1 (API): 200 acknowledged adds survive a reopen ({index.ntotal} vs {before} + 200)")
            got = index.reconstruct(1_000_123)
            check(np.array_equal(got, extra[123]), "defect 1 (API): a re-opened vector is the one added")

        # Defect 3: corrupt postings; the error does not depend on the thread count.
        d = os.path.join(tmp, "d3")
        shutil.copytree(built, d)
        postings = sorted(f for f in os.listdir(d) if f.startswith("postings-"))[0]
        path = os.path.join(d, postings)
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            for off in range(0, size, 4096):  # damage every page's first bytes (each block starts at a page)
                f.seek(off)
                b = bytearray(f.read(64))
                f.seek(off)
                f.write(bytes(x ^ 0xFF for x in b))
        results = {}
        for threads in ("1", "2", "4"):
            rc, out = engine("search", "--dir", d, "--data", data, "--threads", threads)
            results[threads] = (rc, "corrupt" in out.lower(), "AggregateException" in out or "Unhandled" in out)
        check(len(set(results.values())) == 1 and results["1"][0] != 0 and results["1"][1] and not results["1"][2],
              f"defect 3 (CLI): the same corrupt-file error at 1, 2 and 4 threads {results}")
        codes = {}
        q = rng.standard_normal((64, 16)).astype(np.float32)
        for threads in (1, 4):
            try:
                with eng.load(d) as index:
                    index.search(q, 10, threads=threads, probes=64)
                codes[threads] = 0
            except eng.EngineError as e:
                codes[threads] = e.code
        check(codes.get(1) == 4 and codes.get(4) == 4, f"defect 3 (API): error code 4 (corrupt) at 1 and 4 threads, got {codes}")

        # Defect 4: engine mine on an empty corpus.
        empty = os.path.join(tmp, "empty.fvecs")
        open(empty, "wb").close()
        positives = os.path.join(data, "gt.ivecs")
        rc, out = engine("mine", "--corpus", empty, "--anchors", "corpus", "--positives", positives, "--out", os.path.join(tmp, "m.jsonl"))
        check(rc == 2 and "empty" in out.lower() and "DivideByZero" not in out and "   at " not in out,
              f"defect 4 (CLI): engine mine on an empty corpus is a clear error, exit 2 (got {rc})", out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
    print(f"{len(failures)} check(s) failed" if failures else "all checks passed")
    sys.exit(1 if failures else 0)
