"""Runs a Python handler for many events: `python3 -u bootstrap.py CODE_DIR file.function`.

One command per line on stdin: {"requestId", "event", "context"}; one outcome per line on fd 3:
{"requestId", "kind": "returned" | "threw" | "oom", ...}. Events arrive one at a time.
"""
import importlib
import json
import os
import resource
import sys
import traceback

code_dir, handler_spec = sys.argv[1], sys.argv[2]
file_name, _, function_name = handler_spec.rpartition(".")
report_stream = os.fdopen(3, "w")


END_MARK = "\u0000AFP_END:"


def report(request_id, outcome):
    # Marks the end of this event's output on both streams, so the agent orders it before the end.
    sys.stdout.write(f"{END_MARK}{request_id}\n")
    sys.stdout.flush()
    sys.stderr.write(f"{END_MARK}{request_id}\n")
    sys.stderr.flush()
    outcome["requestId"] = request_id
    outcome["maxRssKb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        line = json.dumps(outcome)
    except (TypeError, ValueError) as error:
        line = json.dumps({"requestId": request_id, "kind": "threw", **describe(error), "maxRssKb": outcome["maxRssKb"]})
    report_stream.write(line + "\n")
    report_stream.flush()


def describe(error):
    return {"message": f"{type(error).__name__}: {error}", "stack": traceback.format_exc()}


memory_limit_mb = int(os.environ.pop("AFP_MEMORY_LIMIT_MB", "0") or 0)
handler = None
load_error = None
try:
    sys.path.insert(0, code_dir)
    handler = getattr(importlib.import_module(file_name), function_name)
except Exception as error:  # noqa: BLE001 - any import failure is the user's error
    load_error = describe(error)

if memory_limit_mb > 0:
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (memory_limit_mb * 1024 * 1024, hard))

for line in sys.stdin:
    if not line.strip():
        continue
    command = json.loads(line)
    request_id = command["requestId"]
    if load_error is not None:
        report(request_id, {"kind": "threw", **load_error})
        continue
    try:
        result = handler(command["event"], command["context"])
        sys.stdout.flush()
        sys.stderr.flush()
        report(request_id, {"kind": "returned", "result": result})
    except MemoryError as error:
        report(request_id, {"kind": "oom", **describe(error)})
    except Exception as error:  # noqa: BLE001
        report(request_id, {"kind": "threw", **describe(error)})
