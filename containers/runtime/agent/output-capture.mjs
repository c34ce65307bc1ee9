// Reads a handler process's pipes line by line, within bounds: stdout and stderr (log lines, an
// over-long line cut) and the report channel on fd 3 (one JSON report a line, an over-long line
// discarded unbuffered). See PROTOCOL.md for what the bootstraps write on them.
import { MAX_LINE_CHARS, MAX_REPORT_LINE_CHARS } from "./limits.mjs";

/**
 * Calls onLine for every line of an output stream (without its newline), onChunk for every chunk
 * read. A line longer than MAX_LINE_CHARS is handed over at that length and the rest of it, up to
 * its newline, is dropped (Execution.log marks it). Invalid UTF-8 becomes U+FFFD. Returns a function
 * that gives the unterminated rest read so far and forgets it (the last line of an exited process).
 */
export function captureLines(readable, onLine, onChunk) {
  readable.setEncoding("utf8");
  let pending = "";
  let overflow = false;
  readable.on("data", (chunk) => {
    onChunk(chunk);
    // Linear in the chunk: lines are sliced out by position, the remainder is kept once.
    const text = pending + chunk;
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
