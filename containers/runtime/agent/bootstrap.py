"""Runs one Python handler: `python3 bootstrap.py CODE_DIR file.function`.

The event arrives as JSON on stdin; the outcome goes to fd 3 as one JSON line.
"""
import importlib
import json
import os
import resource
import sys
import time
import traceback

code_dir, handler_spec = sys.argv[1], sys.argv[2]
file_name, _, function_name = handler_spec.rpartition(".")
report_stream = os.fdopen(3, "w")


def report(outcome):
    outcome["maxRssKb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report_stream.write(json.dumps(outcome) + "\n")
    report_stream.flush()


def describe(error):
    return {"message": f"{type(error).__name__}: {error}", "stack": traceback.format_exc()}


memory_limit_mb = int(os.environ.pop("AFP_MEMORY_LIMIT_MB", "0") or 0)
context = json.loads(os.environ.pop("AFP_CONTEXT", "{}"))
started = time.time()

try:
    sys.path.insert(0, code_dir)
    module = importlib.import_module(file_name)
    handler = getattr(module, function_name)
except Exception as error:  # noqa: BLE001 - any import failure is the user's error
    report({"kind": "threw", **describe(error)})
    sys.exit(1)

event = json.loads(sys.stdin.read() or "{}")
if memory_limit_mb > 0:
    limit = memory_limit_mb * 1024 * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))

try:
    result = handler(event, context)
    report({"kind": "returned", "result": result})
    report_stream.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
except MemoryError as error:
    report({"kind": "oom", **describe(error)})
    sys.exit(1)
except Exception as error:  # noqa: BLE001
    report({"kind": "threw", **describe(error)})
    sys.exit(1)
