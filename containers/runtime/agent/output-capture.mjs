// Reads a handler process's pipes line by line, within bounds: stdout and stderr (log lines, an
// over-long line cut; real pipes, read in batches: see outputPipe and captureLines) and the report
// channel on fd 3 (one JSON report a line, an over-long line discarded unbuffered). See PROTOCOL.md for what the bootstraps write on them.
import { execFile, execFileSync } from "node:child_process";
import { closeSync, constants, openSync, rmSync } from "node:fs";
import { Socket } from "node:net";
import { join } from "node:path";
import { IMAGE_MODE } from "./image-config.mjs";
import { MAX_LINE_CHARS, MAX_REPORT_LINE_CHARS, OUTPUT_PIPE_BYTES } from "./limits.mjs";

/**
 * Once a read of the handler's output brings less than this, the next read waits
 * OUTPUT_BATCH_DELAY_MS (on a real pipe, see outputPipe): the pipe gathers the lines meanwhile and
 * the agent reads them in one go, instead of waking (and waking the handler) for every few lines.
 * A read at least this large is followed by the next at once: a handler printing faster than that
 * is never held back by the delay.
 */
const OUTPUT_BATCH_FULL_CHARS = 16 * 1024;
/** How long a small read of the handler's output waits before the next (see above). */
const OUTPUT_BATCH_DELAY_MS = 1;

let pipeCounter = 0;

/**
 * A real pipe (a FIFO made in `dir`, an agent-only folder, and unlinked at once) for a handler's
 * stdout or stderr: `{ readFd, writeFd }`, or undefined when none can be made (then the spawn's own
 * stdio socket is used). A pipe, unlike the Unix socket pair of a spawn's "pipe" stdio, holds 64 KiB
 * of small writes (a socket's buffer is spent by the per-write overhead of a few hundred short
 * lines), so the handler can print on while the agent gathers its lines (see captureLines).
 */
export function outputPipe(dir) {
  pipeCounter += 1;
  const path = join(dir, `output-${process.pid}-${pipeCounter}.fifo`);
  let readFd;
  try {
    execFileSync("mkfifo", ["-m", "600", path], { stdio: "ignore" });
    readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    return { readFd, writeFd: openSync(path, constants.O_WRONLY) };
  } catch {
    if (readFd !== undefined) closeSync(readFd);
    return undefined;
  } finally {
    rmSync(path, { force: true });
  }
}

/**
 * Enlarges output pipes (outputPipes' read ends) from the kernel's 64 KiB to OUTPUT_PIPE_BYTES, in
 * the background: Node has no fcntl, the runtime image's python3 sets F_SETPIPE_SZ through
 * /proc/<agent>/fd/<fd> (a FIFO only: a number reused meanwhile for another file is left alone).
 * A handler printing a burst then rarely waits for the agent to read, and each of the agent's
 * reads brings more. Not in an image container: its python3, if any, is the image's, and the agent
 * runs nothing of an image as root. Best effort: a pipe that cannot be enlarged keeps 64 KiB.
 */
export function enlargePipes(pipes) {
  if (IMAGE_MODE) return;
  const paths = pipes.filter((pipe) => pipe !== undefined).map((pipe) => `/proc/${process.pid}/fd/${pipe.readFd}`);
  if (paths.length === 0) return;
  const child = execFile(
    "python3",
    ["-c", PIPE_RESIZER, String(OUTPUT_PIPE_BYTES), ...paths],
    {
      timeout: 10_000,
      stdio: "ignore",
    },
    () => {},
  );
  child.on("error", () => {});
}

/** The python3 program of enlargePipes: `<bytes> <path>...`. */
const PIPE_RESIZER = `
import fcntl, os, stat, sys
F_SETPIPE_SZ = 1031
for path in sys.argv[2:]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        continue
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, F_SETPIPE_SZ, int(sys.argv[1]))
    except OSError:
        pass
    finally:
        os.close(fd)
`;

/** Calls onLine with each line of text (lines ending with a newline), without its newline. */
export function forEachLine(text, onLine) {
  let start = 0;
  for (let newline = text.indexOf("\n"); newline >= 0; newline = text.indexOf("\n", start)) {
    onLine(text.slice(start, newline));
    start = newline + 1;
  }
}

/** The agent's end of an outputPipe, as a readable that stops reading between two reads. */
export function pipeReadable(pipe) {
  return new Socket({ fd: pipe.readFd, readable: true, writable: false, readableHighWaterMark: 1 });
}

/**
 * Calls onLine for every line of an output stream (without its newline), onChunk for every chunk
 * read (before its lines). The stream is read in pull mode, one read at a time: with `batched`
 * (a pipeReadable) a small read waits OUTPUT_BATCH_DELAY_MS before the next. `holdWhile(resume)`
 * is asked after each read: when it answers true, nothing more is read until it calls resume (the
 * spool is congested). A line longer than MAX_LINE_CHARS is handed over at that length and the rest
 * of it, up to its newline, is dropped (Execution.log marks it). Invalid UTF-8 becomes U+FFFD.
 * With `onLines(text, count)`, the whole lines of a read that holds no over-long line are handed
 * over in one call instead (`text`: the `count` lines, each ending with its newline): a handler
 * printing a burst costs the agent one call a read, not one a line (see Execution.logLines).
 * Returns a function that gives the unterminated rest read so far and forgets it (the last line of
 * an exited process).
 */
export function captureLines(readable, onLine, onChunk, { batched = false, holdWhile, onLines } = {}) {
  readable.setEncoding("utf8");
  let pending = "";
  let overflow = false;
  /** A read is scheduled (or held): 'readable' events do not start another. */
  let scheduled = false;
  const handle = (chunk) => {
    // Linear in the chunk: lines are sliced out by position, the remainder is kept once.
    const text = pending + chunk;
    if (onLines !== undefined && !overflow && handleWholeLines(text)) return;
    let start = 0;
    let newline = text.indexOf("\n", start);
    while (newline >= 0) {
      if (overflow)
        overflow = false; // the end of an over-long line: dropped (its kept part is marked)
      else onLine(text.slice(start, newline));
      start = newline + 1;
      newline = text.indexOf("\n", start);
    }
    let rest = text.slice(start);
    if (overflow) {
      rest = "";
    } else if (rest.length > MAX_LINE_CHARS) {
      onLine(rest);
      overflow = true;
      rest = "";
    }
    pending = rest;
  };
  /**
   * Hands the whole lines of text to onLines at once and keeps the rest, when no line of it is
   * longer than MAX_LINE_CHARS (else false: the caller cuts them line by line).
   */
  const handleWholeLines = (text) => {
    let count = 0;
    let lineStart = 0;
    for (let newline = text.indexOf("\n"); newline >= 0; newline = text.indexOf("\n", lineStart)) {
      if (newline - lineStart > MAX_LINE_CHARS) return false;
      count += 1;
      lineStart = newline + 1;
    }
    if (text.length - lineStart > MAX_LINE_CHARS) return false;
    if (count > 0) onLines(text.slice(0, lineStart), count);
    pending = text.slice(lineStart);
    return true;
  };
  const readOnce = () => {
    scheduled = false;
    const chunk = readable.read();
    if (chunk === null) return; // the next 'readable' event reads on
    onChunk(chunk);
    handle(chunk);
    scheduled = true;
    if (holdWhile?.(readOnce)) return;
    if (batched && chunk.length < OUTPUT_BATCH_FULL_CHARS) setTimeout(readOnce, OUTPUT_BATCH_DELAY_MS);
    else setImmediate(readOnce);
  };
  readable.on("readable", () => {
    if (!scheduled) readOnce();
  });
  return () => {
    const rest = pending;
    pending = "";
    return rest;
  };
}

/**
 * Reads the report channel (fd 3): calls onReport with every line that is a JSON object. A line
 * longer than MAX_REPORT_LINE_CHARS is not buffered: it is discarded as it arrives and
 * onOversized is called once it ends.
 */
export function captureReports(readable, onReport, onOversized) {
  readable.setEncoding("utf8");
  let pending = "";
  let discarding = false;
  readable.on("data", (chunk) => {
    let start = 0;
    let newline = chunk.indexOf("\n");
    while (newline >= 0) {
      if (discarding) {
        discarding = false;
        onOversized();
      } else {
        const report = reportOf(pending + chunk.slice(start, newline));
        if (report) onReport(report);
      }
      pending = "";
      start = newline + 1;
      newline = chunk.indexOf("\n", start);
    }
    if (discarding) return;
    pending += chunk.slice(start);
    if (pending.length > MAX_REPORT_LINE_CHARS) {
      pending = "";
      discarding = true;
    }
  });
}

/** A report line as an object, or undefined when it is not a JSON object (not a report line). */
function reportOf(line) {
  let report;
  try {
    report = JSON.parse(line);
  } catch {
    return undefined;
  }
  return typeof report === "object" && report !== null ? report : undefined;
}
