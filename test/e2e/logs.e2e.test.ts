import { beforeAll, describe, expect, inject, it } from "vitest";
import { ADMIN_HEADERS, ApiClient, followLogs, type LogStreamEvent } from "../helpers/api-client";
import { pollUntil } from "../helpers/wait";
import { NODE_HANDLER, NODE_TICKER, PYTHON_AWKWARD_OUTPUT } from "./fixtures";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";

type LogLine = { seq: number; stream: string; line: string };

function userLines(events: LogStreamEvent[]): string[] {
  return events
    .map((event) => event.data as LogLine)
    .filter((record) => record.stream === "stdout")
    .map((record) => record.line.replace(/ t=\d+$/, ""));
}

function createTicker(): Promise<string> {
  return api.createUniqueFunction(NAMESPACE, "ticker", {
    runtime: "Nodejs22",
    files: { "index.js": NODE_TICKER },
    timeout: 120,
  });
}

describe("live log follow (Server-Sent Events)", () => {
  let ticker: string;
  beforeAll(async () => {
    ticker = await createTicker();
    await api.waitForEvent(await api.invoke(NAMESPACE, ticker, { count: 1, intervalMs: 1 }));
  });

  it("delivers every line of a 10-second handler in order, from the first, and ends with the status", async () => {
    const requestId = await api.invoke(NAMESPACE, ticker, { count: 100, intervalMs: 100 });
    const { logs, end } = await followLogs(api, requestId);
    expect(userLines(logs)).toEqual(Array.from({ length: 100 }, (_, n) => `line ${n}`));
    const seqs = logs.map((event) => event.id ?? 0);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(end?.data).toMatchObject({ requestId, status: "FINISHED", statusCode: 200 });
    const platform = logs.map((event) => (event.data as LogLine).line).filter((line) => line.startsWith("[PLATFORM]"));
    expect(platform[0]).toMatch(/^\[PLATFORM\] START RequestId: .* \((cold|warm) start\)$/);
    expect(platform.at(-1)).toMatch(
      /^\[PLATFORM\] END RequestId: .* Status: FINISHED StatusCode: 200 Duration: \d+ ms/,
    );
  });

  it("resumes after a disconnect from Last-Event-ID with no gap and no duplicate", async () => {
    const requestId = await api.invoke(NAMESPACE, ticker, { count: 40, intervalMs: 50 });
    const first = await followLogs(api, requestId, { stopAfter: 12 });
    const lastId = first.logs.at(-1)?.id;
    expect(lastId).toBeDefined();
    const rest = await followLogs(api, requestId, { lastEventId: lastId });
    const all = [...first.logs, ...rest.logs];
    const ids = all.map((event) => event.id ?? 0);
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => (ids[0] ?? 0) + i));
    expect(userLines(all)).toEqual(Array.from({ length: 40 }, (_, n) => `line ${n}`));
    expect(rest.end?.data).toMatchObject({ status: "FINISHED" });
  });

  it("loses and duplicates nothing when the relay is cut mid-run and resumed from the last seq", async () => {
    const requestId = await api.invoke(NAMESPACE, ticker, { count: 60, intervalMs: 50 });
    const running = await api.waitForEvent(requestId, (event) => event.phase === "running");
    // Cut the relay mid-run: once some lines have been relayed and many are still to come.
    await pollUntil(
      () => api.logs(requestId),
      (records) => records.filter((record) => record.stream === "stdout").length >= 10,
    );
    const restart = await fetch(
      `${inject("baseUrl")}/_diagnostics/instances/${encodeURIComponent(running.instanceId ?? "")}/interrupt-relay`,
      { method: "POST", headers: ADMIN_HEADERS },
    );
    expect(await restart.json()).toEqual({ interrupted: true });
    const done = await api.waitForEvent(requestId, undefined, 60_000);
    expect(done.errorMessage).toBeNull();
    expect(done.status).toBe("FINISHED");
    const records = (await api.logs(requestId)).filter((record) => record.stream === "stdout");
    expect(records.map((record) => record.line.replace(/ t=\d+$/, ""))).toEqual(
      Array.from({ length: 60 }, (_, n) => `line ${n}`),
    );
  });

  it("answers a follower of an ended event with the whole log and the end at once", async () => {
    const done = await api.waitForEvent(await api.invoke(NAMESPACE, ticker, { count: 3, intervalMs: 1 }));
    const { logs, end } = await followLogs(api, done.requestId);
    expect(userLines(logs)).toEqual(["line 0", "line 1", "line 2"]);
    expect(end?.data).toMatchObject({ status: "FINISHED" });
  });
});

describe("log safety and bounds", () => {
  let name: string;
  beforeAll(async () => {
    name = await api.createUniqueFunction(NAMESPACE, "awkward", {
      runtime: "Python3.11",
      files: { "index.py": PYTHON_AWKWARD_OUTPUT },
      timeout: 120,
      // The flood below passes this function's log limit (8 MiB; 1 GiB by default).
      logLimitMb: 8,
    });
  });

  it("stores and serves ANSI escapes, invalid UTF-8, NUL bytes and a 10 MB line safely", async () => {
    const done = await api.waitForEvent(await api.invoke(NAMESPACE, name, { kind: "awkward" }), undefined, 60_000);
    expect(done.status).toBe("FINISHED");
    const lines = (await api.logs(done.requestId)).filter((r) => r.stream === "stdout").map((r) => r.line);
    expect(lines[0]).toBe("\u001b[31mred alert\u001b[0m");
    expect(lines[1]).toBe("bad bytes \uFFFD\uFFFD here");
    expect(lines[2]).toBe("nul\uFFFDinside");
    expect(lines[3]?.startsWith("x".repeat(1000))).toBe(true);
    expect(lines[3]?.endsWith("…[line truncated]")).toBe(true);
    expect(lines[3]?.length).toBeLessThan(70_000);
    expect(lines[4]).toBe("after the long line");
  });

  it("bounds a 50 MB flood by the function's log limit, with a marker, while other events keep running", async () => {
    const other = await api.createUniqueFunction(NAMESPACE, "bystander", {
      runtime: "Nodejs22",
      files: { "index.js": NODE_HANDLER },
    });
    await api.waitForEvent(await api.invoke(NAMESPACE, other, {}));
    const flood = await api.invoke(NAMESPACE, name, { kind: "flood" });
    await api.waitForEvent(flood, (event) => event.phase !== "queued" && event.phase !== "starting");
    const during: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const done = await api.waitForEvent(await api.invoke(NAMESPACE, other, { n: i }));
      expect(done.status).toBe("FINISHED");
      during.push(Date.now() - t0);
    }
    const done = await api.waitForEvent(flood, undefined, 120_000);
    expect(done.status).toBe("FINISHED");
    // Bystander events complete in well under a second each while the flood is captured.
    expect(Math.max(...during)).toBeLessThan(3_000);
    let after = 0;
    let stored = 0;
    const platform: string[] = [];
    for (;;) {
      // Paging 50 MB reads faster than the per-caller read limit: logPage waits out each 429.
      const page = await api.logPage(flood, after);
      if (page.records.length === 0) break;
      for (const record of page.records) {
        if (record.stream === "platform") platform.push(record.line);
        else stored += record.line.length + 1;
      }
      after = page.lastSeq;
    }
    expect(stored).toBeLessThanOrEqual(8 * 1024 * 1024);
    expect(stored).toBeGreaterThan(7 * 1024 * 1024);
    expect(platform.some((line) => /further lines are not kept|later lines are not stored/.test(line))).toBe(true);
    expect(platform.some((line) => /lines \(\d+ bytes\) over the log limit were dropped/.test(line))).toBe(true);
  });
});

describe("function logs across events", () => {
  it("returns each event's log with its status, filtered to errors", async () => {
    const name = await api.createUniqueFunction(NAMESPACE, "mixed", {
      runtime: "Nodejs22",
      files: { "index.js": NODE_HANDLER },
    });
    const ok = await api.waitForEvent(await api.invoke(NAMESPACE, name, { n: 1 }));
    const bad = await api.waitForEvent(await api.invoke(NAMESPACE, name, { throw: "disk full" }));
    // The function's logs are listed from the index, which follows each event's end.
    await pollUntil(
      () =>
        api.json<{ total: number }>(`/v1/namespaces/${NAMESPACE}/functions/${name}/events?statuses=FINISHED,FAILED`),
      (answer) => answer.body.total === 2,
    );
    const all = await api.json<{ total: number; logs: { requestId: string; status: string; log: string }[] }>(
      `/v1/namespaces/${NAMESPACE}/functions/${name}/logs`,
    );
    expect(all.status).toBe(200);
    expect(all.body.total).toBe(2);
    expect(all.body.logs.map((entry) => entry.requestId).sort()).toEqual([ok.requestId, bad.requestId].sort());
    const errors = await api.json<{ total: number; logs: { requestId: string; status: string; log: string }[] }>(
      `/v1/namespaces/${NAMESPACE}/functions/${name}/logs?status=error`,
    );
    expect(errors.body.logs.map((entry) => entry.requestId)).toEqual([bad.requestId]);
    expect(errors.body.logs[0]?.log).toContain(`start ${bad.requestId}`);
    expect(errors.body.logs[0]?.log).toContain("disk full");
  });
});
