#!/usr/bin/env python3
"""tests/runner.py - run test programs that speak TAP and add them up.

Each argument is a suite spec SUITE=COMMAND (COMMAND split on spaces) or
--meson BUILD_DIR SUITE to take every test meson registered in that suite.
Each test's "ok"/"not ok" lines count one each; a test that exits non-zero
without reporting a failure counts as one more failure (crash, timeout,
sanitizer report). A skip is a failure: an "ok ... # SKIP" line counts as
failed (the check did not run), and so does a test skipped whole ("1..0 #
SKIP why") or one that reported no result at all. A plan that disagrees
with the number of results is one more failure. Prints a summary per test
and ends with the line "N passed, N failed". Exit status 1 if anything
failed.
"""
import json
import os
import re
import subprocess
import sys
import time

TAP_LINE = re.compile(r"^(not ok|ok)\b\s*(\d+)?\s*-?\s*(.*)$")
# TAP's directive: "# SKIP" (any case, "skipped" too) after the description
SKIP = re.compile(r"#\s*skip", re.I)
PLAN = re.compile(r"^1\.\.(\d+)\s*(#.*)?$")


def run_one(name, cmd, env, timeout, log):
    t0 = time.time()
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, text=True, errors="replace")
        out, rc = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        out += f"\n# TIMEOUT after {timeout} s\n"
        rc = -1
    log.write(f"===== {name}: {' '.join(cmd)}\n{out}\n")
    passed = failed = 0
    failures = []
    plan = None
    for line in out.splitlines():
        m = PLAN.match(line.strip())
        if m and plan is None:
            plan = (int(m.group(1)), m.group(2) or "")
            continue
        m = TAP_LINE.match(line.strip())
        if not m:
            continue
        if m.group(1) == "ok" and SKIP.search(m.group(3)):
            failed += 1
            failures.append(f"not ok - skipped, counted as a failure: {line.strip()}")
        elif m.group(1) == "ok":
            passed += 1
        else:
            failed += 1
            failures.append(line.strip())
    if plan is not None and plan[0] == 0 and SKIP.search(plan[1]):
        failed += 1
        failures.append(f"not ok - {name} skipped whole, counted as a failure: 1..0 {plan[1]}")
    elif plan is not None and plan[0] != passed + failed:
        failures.append(f"not ok - {name}: plan 1..{plan[0]} but {passed + failed} results")
        failed += 1
    if passed + failed == 0:
        failed += 1
        failures.append(f"not ok - {name} reported no result")
    if rc != 0 and failed == 0:
        failed += 1
        failures.append(f"not ok - {name} exited with status {rc}")
    dt = time.time() - t0
    status = "PASS" if failed == 0 else "FAIL"
    print(f"{status} {name}: {passed} passed, {failed} failed ({dt:.1f} s)", flush=True)
    for f in failures:
        print(f"    {f}")
    if failed:
        tail = "\n".join(out.splitlines()[-30:])
        print("    --- last output ---\n" + "\n".join("    " + l for l in tail.splitlines()))
    return passed, failed


def meson_tests(build, suite):
    raw = subprocess.run(["meson", "introspect", build, "--tests"], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    for t in json.loads(raw):
        if suite in t.get("suite", []) or f"postern:{suite}" in t.get("suite", []):
            env = dict(os.environ)
            env.update(t.get("env") or {})
            yield t["name"], t["cmd"], env, t.get("timeout") or 120


def main(argv):
    total_p = total_f = 0
    logpath = os.environ.get("PG_TEST_LOG", "tests-log.txt")
    with open(logpath, "w") as log:
        i = 0
        while i < len(argv):
            if argv[i] == "--meson":
                build, suite = argv[i + 1], argv[i + 2]
                i += 3
                for name, cmd, env, timeout in meson_tests(build, suite):
                    p, f = run_one(f"{suite}/{name}", cmd, env, timeout, log)
                    total_p += p
                    total_f += f
            else:
                name, _, cmd = argv[i].partition("=")
                i += 1
                p, f = run_one(name, cmd.split(), dict(os.environ), 900, log)
                total_p += p
                total_f += f
    print(f"(full output in {logpath})")
    print(f"{total_p} passed, {total_f} failed")
    return 1 if total_f else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
