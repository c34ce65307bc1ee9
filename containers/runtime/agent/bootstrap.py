"""Runs a Python handler for many events: `python3 -u bootstrap.py CODE_DIR file.function`.

One event at a time, speaking the bootstrap protocol of PROTOCOL.md (events on stdin, reports on
fd 3, the end mark on stdout and stderr).
"""
import importlib
import json
import os
import resource
import sys
import threading
import traceback

code_dir, handler_spec = sys.argv[1], sys.argv[2]
file_name, _, function_name = handler_spec.rpartition(".")
report_stream = os.fdopen(3, "w")
# A handler's threads may report progress while the main thread reports: one whole line at a time.
report_lock = threading.Lock()


END_MARK = "\u0000AFP_END:"
# Report bounds, the same as containers/runtime/agent/limits.mjs (the agent applies them again).
MAX_ERROR_MESSAGE_BYTES = 4 * 1024
"""Longest error message, in UTF-8 bytes (marker included)."""
MAX_ERROR_STACK_BYTES = 32 * 1024
"""Longest error stack, in UTF-8 bytes (marker included)."""
MAX_RESULT_BYTES = 1024 * 1024
"""Largest result, in UTF-8 bytes of its JSON; a larger one fails the event."""
# Progress bounds, the same as limits.mjs and the container contract (the agent applies them again).
MIN_PROGRESS_PERCENT = 0
MAX_PROGRESS_PERCENT = 100
"""A finite percent outside 0..100 is clamped."""
MAX_PROGRESS_MESSAGE_CHARS = 256
"""Longest progress message, in characters (marker included); a longer one is cut."""
PROGRESS_TRUNCATED_MARKER = "\u2026[truncated]"
"""Ends a progress message that was cut."""


class Context(dict):
    """The handler's context: SCF's dict of fields, plus progress(percent, message)."""

    def __init__(self, fields, request_id):
        super().__init__(fields)
        self._request_id = request_id
        self._running = True

    def progress(self, percent, message=""):
        """Reports how far the event has got: percent (a number, clamped to 0..100) and an optional
        message (a string, cut to MAX_PROGRESS_MESSAGE_CHARS). Raises TypeError for a percent that is
        not a finite number or a message that is not a string; does nothing once the event ended."""
        if isinstance(percent, bool) or not isinstance(percent, (int, float)) or percent != percent \
                or percent in (float("inf"), float("-inf")):
            raise TypeError("context.progress(percent, message): percent must be a finite number (0 to 100)")
        if message is None:
            message = ""
        if not isinstance(message, str):
            raise TypeError("context.progress(percent, message): message must be a string")
        if not self._running:
            return
        text = message.replace("\r\n", " ").replace("\r", " ").replace("\n", " ").replace("\0", "\ufffd")
        if len(text) > MAX_PROGRESS_MESSAGE_CHARS:
            text = text[:MAX_PROGRESS_MESSAGE_CHARS - len(PROGRESS_TRUNCATED_MARKER)] + PROGRESS_TRUNCATED_MARKER
        value = float(min(MAX_PROGRESS_PERCENT, max(MIN_PROGRESS_PERCENT, percent)))
        record = {"requestId": self._request_id, "kind": "progress", "percent": value, "message": text}
        with report_lock:
            report_stream.write(json.dumps(record) + "\n")
            report_stream.flush()


def truncate_utf8(text, max_bytes):
    """Cuts text to at most max_bytes of UTF-8, ending with a visible marker when it was cut."""
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return text
    marker = f"\u2026[truncated: {len(data)} bytes, limit {max_bytes}]"
    keep = max(0, max_bytes - len(marker.encode("utf-8")))
    return data[:keep].decode("utf-8", "ignore") + marker


def report_line(request_id, outcome, max_rss_kb):
    """The bounded report line of an outcome (a result too large or not JSON becomes a failure)."""
    if outcome["kind"] == "returned":
        try:
            result_json = json.dumps(outcome["result"], allow_nan=False)
        except (TypeError, ValueError, RecursionError) as error:
            described = describe(error)
            described["message"] = "the handler's return value is not JSON: " + described["message"]
            return report_line(request_id, {"kind": "threw", **described}, max_rss_kb)
        size = len(result_json.encode("utf-8", "replace"))
        if size > MAX_RESULT_BYTES:
            message = (
                f"Result too large: the handler's return value is {size} bytes of JSON,"
                f" over the limit of {MAX_RESULT_BYTES} bytes"
            )
            return report_line(request_id, {"kind": "threw", "message": message, "stack": ""}, max_rss_kb)
        return (
            '{"requestId": ' + json.dumps(request_id) + ', "kind": "returned", "result": ' + result_json
            + ', "maxRssKb": ' + str(int(max_rss_kb)) + "}"
        )
    return json.dumps({
        "requestId": request_id,
        "kind": outcome["kind"],
        "message": truncate_utf8(str(outcome.get("message", "")), MAX_ERROR_MESSAGE_BYTES),
        "stack": truncate_utf8(str(outcome.get("stack", "")), MAX_ERROR_STACK_BYTES),
        "maxRssKb": max_rss_kb,
    })


def report(request_id, outcome):
    # Marks the end of this event's output on both streams, so the agent orders it before the end.
    line = report_line(request_id, outcome, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    sys.stdout.write(f"{END_MARK}{request_id}\n")
    sys.stdout.flush()
    sys.stderr.write(f"{END_MARK}{request_id}\n")
    sys.stderr.flush()
    with report_lock:
        report_stream.write(line + "\n")
        report_stream.flush()


def describe(error):
    """Message and stack of an exception; a __str__ that raises cannot break the report."""
    try:
        message = f"{type(error).__name__}: {error}"
    except Exception:  # noqa: BLE001
        message = f"{type(error).__name__}: (its text cannot be read)"
    return {"message": message, "stack": traceback.format_exc()}


memory_limit_mb = int(os.environ.pop("AFP_MEMORY_LIMIT_MB", "0") or 0)
handler = None
load_error = None
try:
    sys.path.insert(0, code_dir)
    handler = getattr(importlib.import_module(file_name), function_name)
except Exception as error:  # noqa: BLE001 - any import failure is the user's error
    load_error = describe(error)

if memory_limit_mb > 0:
    # Soft and hard alike: the handler (unprivileged) cannot raise it again.
    data_limit = memory_limit_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (data_limit, data_limit))

for line in sys.stdin:
    if not line.strip():
        continue
    command = json.loads(line)
    request_id = command["requestId"]
    report_stream.write(json.dumps({"requestId": request_id, "kind": "received"}) + "\n")
    report_stream.flush()
    if load_error is not None:
        report(request_id, {"kind": "threw", **load_error})
        continue
    context = Context(command["context"], request_id)
    try:
        result = handler(command["event"], context)
        context._running = False
        sys.stdout.flush()
        sys.stderr.flush()
        report(request_id, {"kind": "returned", "result": result})
    except MemoryError as error:
        context._running = False
        report(request_id, {"kind": "oom", **describe(error)})
    except Exception as error:  # noqa: BLE001
        context._running = False
        report(request_id, {"kind": "threw", **describe(error)})
