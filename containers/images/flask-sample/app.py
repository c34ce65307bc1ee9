# -*- coding: utf8 -*-
# SCF's image-function sample: a web server on 0.0.0.0:9000 whose POST /event-invoke prints a line
# and keeps working until a SIGTERM handler sets a flag, then returns "END".
#
# Optional event fields, for the platform's tests and bench (SCF's own sample has none of them):
#   "sleep": seconds   return "END" after that long (0: at once) unless SIGTERM comes first
#   "exit": code       the process exits with that code in the middle of the event
#   "status": code     answer with that HTTP status (a non-2xx answer fails the event)
import json
import os
import signal
import sys
import time

from flask import Flask, request

app = Flask(__name__)
sigterm_received = False

# How often the loop checks the flag, and how often it prints a line while it works.
POLL_SECONDS = 0.1
PRINT_EVERY_SECONDS = 1.0


def handle_sigterm(signum, frame):
    global sigterm_received
    print("received SIGTERM, finishing the current event", flush=True)
    sigterm_received = True


signal.signal(signal.SIGTERM, handle_sigterm)


@app.route("/event-invoke", methods=["POST"])
def invoke():
    request_id = request.headers.get("X-Scf-Request-Id", "")
    try:
        event = json.loads(request.get_data() or b"{}")
    except ValueError:
        event = {}
    if not isinstance(event, dict):
        event = {}
    print(f"event-invoke {request_id} started: {json.dumps(event)}", flush=True)
    print(f"stderr line of {request_id}", file=sys.stderr, flush=True)
    if "exit" in event:
        print(f"exiting with code {event['exit']}", flush=True)
        os._exit(int(event["exit"]))
    status = int(event.get("status", 200))
    limit = event.get("sleep")
    started = time.monotonic()
    printed = started
    while not sigterm_received:
        now = time.monotonic()
        if limit is not None and now - started >= float(limit):
            break
        if now - printed >= PRINT_EVERY_SECONDS:
            print(f"working on {request_id}: {now - started:.0f} s", flush=True)
            printed = now
        time.sleep(POLL_SECONDS)
    print(f"event-invoke {request_id} done after {time.monotonic() - started:.1f} s", flush=True)
    return "END", status


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=9000)
