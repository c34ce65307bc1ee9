// `npm run bench`: starts the platform (wrangler dev, real containers, --log-level warn) on a free
// port and prints one JSON object of figures. Throughput is compared with GET /healthz measured in
// the same run, because these machines are shared and noisy.
//
// Environment: BENCH_DURATION_S (load duration per route, default 8), BENCH_EVENTS (completion
// test size, default 1000), BENCH_RUNS (runs of the pipeline part, medians reported, default 3),
// BENCH_PEERS=0 (no Workflows peer in it), BENCH_WARM_SAMPLES (default 40), BENCH_COLD_SAMPLES (default 5),
// BENCH_WEBHOOK_SAMPLES (webhook deliveries timed, default 20), BENCH_LOG_LINES (lines the log
// volume handler prints, default 1000000), BENCH_LOG_RUNS (its /dev/null and platform pairs,
// medians reported, default 3), BENCH_TIMER_SECONDS (how long the every-second timer
// trigger runs for its lateness figures, default 30), BENCH_STATISTICS_EVENTS (index rows seeded for
// the statistics figure, default 100000), BENCH_STATISTICS_SAMPLES (reads timed per route, default
// 60), BENCH_BULK_EVENTS / BENCH_BULK_RUNS (queued events per bulk termination, default 1000, and
// runs, default 3), BENCH_ONLY=pipeline (scripts/bench-pipeline.ts: accept load, 1,000 events at
// maxConcurrency 10 with per-event costs and at 50, Cloudflare Workflows), list (every list filter
// over BENCH_LIST_EVENTS seeded rows, default 100000, in BENCH_LIST_ROUNDS rounds of
// BENCH_LIST_SAMPLES reads each, defaults 3 and 150, medians reported), logVolume, triggers,
// statistics, bulk, unloaded (/healthz and invoke accept at 1 connection, 10 req/s; that part alone, with its own
// /healthz baseline) or coldStart (cold start per kind of function alone: Node.js, Python, a bash
// Custom Runtime; BENCH_COLD_SAMPLES new functions each).
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { ADMIN_HEADERS, ApiClient, followLogs, TEST_CREDENTIALS, uniqueName } from "../test/helpers/api-client";
import { customRuntimeZip } from "../test/helpers/custom-runtime";
import { startPlatform } from "../test/helpers/platform";
import { pipelineFigures } from "./bench-pipeline";

const ROOT = resolve(import.meta.dirname, "..");
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 8);
const WARM_SAMPLES = Number(process.env.BENCH_WARM_SAMPLES ?? 40);
const COLD_SAMPLES = Number(process.env.BENCH_COLD_SAMPLES ?? 5);
const NAMESPACE = "bench";

const LIST_FIXTURE_SIZE = Number(process.env.BENCH_LIST_EVENTS ?? 100_000);
const TERMINATE_SAMPLES = Number(process.env.BENCH_TERMINATE_SAMPLES ?? 8);
const LIST_SAMPLES = Number(process.env.BENCH_LIST_SAMPLES ?? 150);
/** Rounds of LIST_SAMPLES reads of every filter (and of /healthz): the figures are their medians. */
const LIST_ROUNDS = Math.max(1, Number(process.env.BENCH_LIST_ROUNDS ?? 3));
/**
 * Least time between the starts of two list reads: under 17 a second, below the per-caller read
 * limit of 20 (worker/ratelimit/read-limit.ts), whose sliding window counts the second before too.
 */
const LIST_READ_INTERVAL_MS = 60;
const WEBHOOK_SAMPLES = Number(process.env.BENCH_WEBHOOK_SAMPLES ?? 20);
const LOG_LINES = Number(process.env.BENCH_LOG_LINES ?? 1_000_000);
/** Pairs of log volume runs (to /dev/null, then to the platform): the print times' medians make the ratio. */
const LOG_RUNS = Math.max(1, Number(process.env.BENCH_LOG_RUNS ?? 3));
const TIMER_SECONDS = Number(process.env.BENCH_TIMER_SECONDS ?? 30);
/** `logVolume`, `triggers` or `statistics`: only that part (its own baseline, the /dev/null run, is measured in it). */
const ONLY = process.env.BENCH_ONLY;
/** The bench function's webhook secret (a throwaway, local receiver only). */
const WEBHOOK_SECRET = "bench-webhook-secret-0123456789";

const SIGTERM_HANDLER = `exports.main_handler = async (event) => {
  let stop = false;
  if (event.listen) process.once("SIGTERM", () => { console.log("sigterm-at " + Date.now()); stop = true; });
  const until = Date.now() + 120000;
  while (!stop && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
  return { stopped: stop };
};`;

const TICKER_HANDLER = `exports.main_handler = async (event) => {
  for (let n = 0; n < event.count; n++) {
    console.log("t=" + Date.now());
    await new Promise((resolve) => setTimeout(resolve, event.intervalMs));
  }
  return {};
};`;

/**
 * Prints event.lines lines of about 100 characters with console.log as fast as it can, every
 * thousandth carrying the time it was printed: to stdout (the platform's capture) or, with
 * event.sink "null", to /dev/null; answers how long the printing took. Both runs use the global
 * console.log, only its stream differs: for "null" a synchronous /dev/null stream (what Node makes
 * of a stdout redirected to a file) is put under the global console (`console._stdout`). A
 * separate `new Console(...)` would not be the same handler: the global console's methods also
 * report to the inspector, about 20% of this loop's CPU on Node 22, so such a baseline was faster
 * than `node handler.js > /dev/null` and the ratio counted that against the platform.
 */
const LOG_FLOOD_HANDLER = `const fs = require("fs");
const { Writable } = require("stream");
exports.main_handler = async (event) => {
  const stdout = console._stdout;
  let fd;
  if (event.sink === "null") {
    fd = fs.openSync("/dev/null", "w");
    console._stdout = new Writable({ write(chunk, encoding, done) { fs.writeSync(fd, chunk); done(); } });
  }
  const pad = "x".repeat(80);
  const started = Date.now();
  const cpu = process.cpuUsage();
  try {
    for (let i = 0; i < event.lines; i++) {
      console.log(i % 1000 === 0 ? "line " + i + " t=" + Date.now() + " " + pad : "line " + i + " " + pad);
    }
  } finally {
    console._stdout = stdout;
    if (fd !== undefined) fs.closeSync(fd);
  }
  const used = process.cpuUsage(cpu);
  return { printMs: Date.now() - started, userMs: Math.round(used.user / 1000), systemMs: Math.round(used.system / 1000) };
};`;

const TRIVIAL_HANDLER = `exports.main_handler = async (event) => ({ handlerStartedAt: Date.now(), n: event.n ?? null });`;

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round((sorted[index] ?? Number.NaN) * 10) / 10;
}

/** The median (the 50th percentile, as percentile() takes it). */
function median(values: number[]): number {
  return percentile(values, 50);
}

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  non2xx: number;
  errors: number;
}

/** Runs the autocannon CLI (Node 22 from node_modules) and returns its JSON summary. */
function autocannon(args: string[]): Promise<AutocannonResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(
      process.execPath,
      [join(ROOT, "node_modules", "autocannon", "autocannon.js"), "--json", ...args],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited ${code}`));
      resolvePromise(JSON.parse(out) as AutocannonResult);
    });
  });
}

/** TRIVIAL_HANDLER in Python. */
const TRIVIAL_PYTHON_HANDLER = `import time


def main_handler(event, context):
    return {"handlerStartedAt": int(time.time() * 1000), "n": event.get("n")}
`;

/** TRIVIAL_HANDLER as a bash Custom Runtime (SCF's runtime API over /dev/tcp; the image has no curl). */
const TRIVIAL_BASH_BOOTSTRAP = `#!/bin/bash
http() {
  local body="\${3-}" line
  exec 5<>"/dev/tcp/$SCF_RUNTIME_API/$SCF_RUNTIME_API_PORT"
  printf '%s %s HTTP/1.0\\r\\nContent-Length: %d\\r\\n\\r\\n%s' "$1" "$2" "$(LC_ALL=C; echo \${#body})" "$body" >&5
  BODY=$(cat <&5); exec 5<&-
}
http POST /runtime/init/ready " "
while true; do
  http GET /runtime/invocation/next
  http POST /runtime/invocation/response "{\\"handlerStartedAt\\":$(date +%s%3N)}"
done
`;

/**
 * Cold start per kind of function: BENCH_COLD_SAMPLES new functions each (RequestId returned →
 * handler started, through dispatchLatency; for the image function, SCF's Flask sample, the handler's
 * start is the capture time of its first printed line: imageDispatchLatency).
 */
async function coldStartPerKind(api: ApiClient): Promise<Record<string, unknown>> {
  const kinds: Record<string, () => Promise<string>> = {
    nodejs: () => createTrivial(api),
    python: () => createTrivial(api, { runtime: "Python3.11", files: { "index.py": TRIVIAL_PYTHON_HANDLER } }),
    customRuntime: async () => {
      const name = uniqueName("bench-custom");
      const zipFile = Buffer.from(customRuntimeZip({ script: TRIVIAL_BASH_BOOTSTRAP })).toString("base64");
      const created = await api.createFunction(NAMESPACE, {
        name,
        runtime: "CustomRuntime",
        code: { zipFile },
        timeout: 60,
        maxConcurrency: 10,
        qpsLimit: 100_000,
      });
      if (created.status !== 201) throw new Error(`create ${name} answered ${created.status}`);
      return name;
    },
    image: async () => {
      const name = uniqueName("bench-image");
      const created = await api.createFunction(NAMESPACE, {
        name,
        image: { uri: BENCH_IMAGE },
        timeout: 60,
        maxConcurrency: 10,
        qpsLimit: 100_000,
      });
      if (created.status !== 201) throw new Error(`create ${name} answered ${created.status}`);
      return name;
    },
  };
  const figures: Record<string, unknown> = {};
  for (const [kind, create] of Object.entries(kinds)) {
    const latency = kind === "image" ? imageDispatchLatency : dispatchLatency;
    const cold: number[] = [];
    try {
      for (let i = 0; i < COLD_SAMPLES; i++) cold.push(await latency(api, await create(), i));
      figures[kind] = { p50: percentile(cold, 50), max: Math.max(...cold), samples: cold.length };
    } catch (error) {
      // One kind failing keeps the others' figures (and says why this one has none).
      figures[kind] = { error: String(error), samplesBeforeIt: cold };
    }
  }
  return figures;
}

/** The registered image the cold-start bench runs (containers/images/flask-sample, every namespace). */
const BENCH_IMAGE = "flask-sample";

/**
 * dispatchLatency for the Flask sample image, whose answer is "END": RequestId returned → the
 * capture time (`ts`) of the server's first line for the event ("event-invoke <id> started: ...").
 */
async function imageDispatchLatency(api: ApiClient, name: string, n: number): Promise<number> {
  const requestId = await api.invoke(NAMESPACE, name, { sleep: 0, n });
  const returnedAt = Date.now();
  const done = await api.waitForEvent(requestId, undefined, 120_000);
  if (done.status !== "FINISHED") throw new Error(`event ${requestId} ended ${done.status}`);
  const { status, body } = await api.json<{ records: { ts: number; line: string }[] }>(
    `/v1/events/${requestId}/logs?after=0`,
  );
  const first = body.records?.find((record) => record.line.startsWith(`event-invoke ${requestId} started`));
  if (status !== 200 || !first) throw new Error(`event ${requestId}: no started line in its log (${status})`);
  return first.ts - returnedAt;
}

function createTrivial(api: ApiClient, options: Record<string, unknown> = {}): Promise<string> {
  return api.createUniqueFunction(NAMESPACE, "bench", {
    runtime: "Nodejs22",
    files: { "index.js": TRIVIAL_HANDLER },
    timeout: 60,
    maxConcurrency: 10,
    qpsLimit: 100_000,
    ...options,
  });
}

/**
 * Event end (its `endedAt`) → a local receiver has the webhook and answers 200, for
 * WEBHOOK_SAMPLES events of a function whose onSuccess destination is that receiver.
 */
async function webhookDeliveryLatency(api: ApiClient): Promise<{ p50: number; p99: number; samples: number }> {
  const latencies: number[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const receivedAt = Date.now();
      response.writeHead(200).end("ok");
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { endedAt?: number | string };
        const endedAt = typeof body.endedAt === "number" ? body.endedAt : Date.parse(String(body.endedAt));
        if (Number.isFinite(endedAt)) latencies.push(receivedAt - endedAt);
      } catch {
        // not a delivery: ignored
      }
    });
  });
  await new Promise<void>((resolvePromise) => server.listen(0, "127.0.0.1", resolvePromise));
  try {
    const { port } = server.address() as AddressInfo;
    const name = await createTrivial(api, {
      destinations: { onSuccess: { webhook: { url: `http://127.0.0.1:${port}/hook`, secret: WEBHOOK_SECRET } } },
    });
    await api.waitForEvent(await api.invoke(NAMESPACE, name, { n: 0 }));
    const warmUntil = Date.now() + 30_000;
    while (latencies.length < 1 && Date.now() < warmUntil) await new Promise((r) => setTimeout(r, 50));
    latencies.length = 0;
    for (let n = 0; n < WEBHOOK_SAMPLES; n++) {
      await api.waitForEvent(await api.invoke(NAMESPACE, name, { n }));
      const until = Date.now() + 30_000;
      while (latencies.length <= n && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    }
    return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), samples: latencies.length };
  } finally {
    server.close();
  }
}

/** RequestId returned → handler started, for one invocation. */
async function dispatchLatency(api: ApiClient, name: string, n: number): Promise<number> {
  const requestId = await api.invoke(NAMESPACE, name, { n });
  const returnedAt = Date.now();
  const done = await api.waitForEvent(requestId, undefined, 120_000);
  if (done.status !== "FINISHED") throw new Error(`event ${requestId} ended ${done.status}`);
  return (done.result as { handlerStartedAt: number }).handlerStartedAt - returnedAt;
}

async function waitAllEnded(api: ApiClient, ids: string[], timeoutMs: number): Promise<Map<string, string>> {
  const statuses = new Map<string, string>();
  const deadline = Date.now() + timeoutMs;
  let pending = [...ids];
  while (pending.length > 0 && Date.now() < deadline) {
    const still: string[] = [];
    for (let i = 0; i < pending.length; i += 25) {
      const slice = pending.slice(i, i + 25);
      const views = await Promise.all(slice.map((id) => api.event(id).catch(() => undefined)));
      views.forEach((view, index) => {
        const id = slice[index] as string;
        if (view && view.status !== "RUNNING") statuses.set(id, view.status);
        else still.push(id);
      });
    }
    pending = still;
    if (pending.length > 0) await new Promise((r) => setTimeout(r, 500));
  }
  for (const id of pending) statuses.set(id, "LOST");
  return statuses;
}

/**
 * One handler printing LOG_LINES lines: its print time to /dev/null and to the platform (the
 * ratio is the platform's cost to the handler), lines stored per second (handler start to the
 * event's end, every line stored by then), print-to-client latency of the timed lines for a live
 * follower, and the R2 bytes of the event's log segments per million lines.
 */
async function logVolume(api: ApiClient, baseUrl: string): Promise<Record<string, unknown>> {
  const name = await api.createUniqueFunction(NAMESPACE, "bench-flood", {
    runtime: "Nodejs22",
    files: { "index.js": LOG_FLOOD_HANDLER },
    timeout: 900,
  });
  await api.waitForEvent(await api.invoke(NAMESPACE, name, { lines: 10, sink: "null" }));
  const run = async (sink: "null" | "stdout") =>
    api.waitForEvent(await api.invoke(NAMESPACE, name, { lines: LOG_LINES, sink }), undefined, 900_000);
  // The first pair's platform run is followed live (the latency figures); the others are not.
  const toNull = await run("null");
  const requestId = await api.invoke(NAMESPACE, name, { lines: LOG_LINES, sink: "stdout" });
  const latencies: number[] = [];
  let received = 0;
  let lastEventId = 0;
  let reconnects = 0;
  // A follower that falls too far behind is closed with `overflow`: it reconnects from the last id,
  // as a client should, until the end.
  for (;;) {
    const { end } = await followLogs(api, requestId, {
      keep: false,
      lastEventId,
      onEvent: (event) => {
        if (event.id !== undefined) lastEventId = event.id;
        if (event.event !== "log") return;
        const line = (event.data as { line?: string }).line ?? "";
        if (!line.startsWith("line ")) return;
        received += 1;
        const timed = / t=(\d+) /.exec(line);
        if (timed) latencies.push(event.receivedAt - Number(timed[1]));
      },
    });
    if (end) break;
    reconnects += 1;
  }
  const toStdout = await api.waitForEvent(requestId, undefined, 900_000);
  const pairs = [{ toNull, toStdout }];
  while (pairs.length < LOG_RUNS) pairs.push({ toNull: await run("null"), toStdout: await run("stdout") });
  const stats = (await (
    await fetch(`${baseUrl}/_diagnostics/events/${requestId}/log-stats`, { headers: ADMIN_HEADERS })
  ).json()) as { segments: number; segmentLines: number; segmentChars: number; segmentBytes: number };
  const printMs = (event: { result: unknown; status: string; errorMessage: string | null }) => {
    const ms = (event.result as { printMs?: number } | null)?.printMs;
    if (ms === undefined)
      throw new Error(`the log volume handler did not finish: ${event.status} ${event.errorMessage}`);
    return ms;
  };
  const cpuMs = (event: { result: unknown }) => {
    const { userMs, systemMs } = (event.result ?? {}) as { userMs?: number; systemMs?: number };
    return { user: userMs ?? null, system: systemMs ?? null };
  };
  const devNullMs = pairs.map((pair) => printMs(pair.toNull));
  const platformMs = pairs.map((pair) => printMs(pair.toStdout));
  const storeSeconds = (Date.parse(String(toStdout.endedAt)) - Date.parse(String(toStdout.startedAt))) / 1000;
  return {
    lines: LOG_LINES,
    linesReceivedByFollower: received,
    followerReconnects: reconnects,
    runs: LOG_RUNS,
    // Each pair's print times, in run order, and their medians (the ratio is of the medians).
    handlerPrintMs: {
      devNull: devNullMs,
      platform: platformMs,
      devNullMedian: median(devNullMs),
      platformMedian: median(platformMs),
    },
    // The handler's own CPU time in the loop (process.cpuUsage) in the first pair: what it spent in
    // user space and in the kernel; the print time minus both is time it waited (a full ring or
    // pipe, or no core free).
    handlerCpuMs: { devNull: cpuMs(toNull), platform: cpuMs(toStdout) },
    handlerSlowdownRatio: Math.round((median(platformMs) / Math.max(1, median(devNullMs))) * 100) / 100,
    linesStoredPerSecond: Math.round(LOG_LINES / storeSeconds),
    printToClientMs: {
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      samples: latencies.length,
    },
    r2: {
      segments: stats.segments,
      bytesPerMillionLines: Math.round((stats.segmentBytes / Math.max(1, stats.segmentLines)) * 1_000_000),
      compressionRatio: Math.round((stats.segmentChars / Math.max(1, stats.segmentBytes)) * 10) / 10,
    },
  };
}

/** A GET answered 200, waiting out the per-caller read limit (429 + Retry-After) when it bites. */
async function readWithinLimit<T>(api: ApiClient, path: string): Promise<T> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const response = await api.request(path);
    if (response.status === 200) return (await response.json()) as T;
    if (response.status !== 429) throw new Error(`${path} answered ${response.status}`);
    await new Promise((r) => setTimeout(r, 1000 * Number(response.headers.get("retry-after") ?? 1)));
  }
  throw new Error(`${path}: still rate limited after 20 attempts`);
}

/**
 * Timer firing accuracy: a timer trigger on `* * * * * * *` (every second) runs for TIMER_SECONDS
 * against a warm function; each event's lateness is its invokedAt (when the trigger's object
 * invoked it) minus the tick it was scheduled for (its payload's Time).
 */
async function timerAccuracy(api: ApiClient): Promise<Record<string, unknown>> {
  const fn = await createTrivial(api, { maxConcurrency: 4 });
  await dispatchLatency(api, fn, -1);
  const base = `/v1/namespaces/${NAMESPACE}/functions/${fn}/triggers`;
  const created = await api.json(base, {
    method: "POST",
    body: JSON.stringify({ name: "bench-every-second", type: "timer", triggerDesc: "* * * * * * *" }),
  });
  if (created.status !== 201) throw new Error(`timer trigger answered ${created.status}`);
  await new Promise((r) => setTimeout(r, TIMER_SECONDS * 1000));
  await api.json(`${base}/timer/bench-every-second`, { method: "PATCH", body: JSON.stringify({ enabled: false }) });
  await new Promise((r) => setTimeout(r, 1500));
  const listed = await api.json<{ total: number; events: { requestId: string }[] }>(
    `/v1/namespaces/${NAMESPACE}/functions/${fn}/events?invokeTypes=TRIGGER_TIMER&limit=100`,
  );
  const lateness: number[] = [];
  const ticks = new Map<string, number>();
  for (const { requestId } of listed.body.events) {
    const view = await readWithinLimit<{ invokedAt: string }>(api, `/v1/events/${requestId}`);
    const payload = await readWithinLimit<{ Time: string }>(api, `/v1/events/${requestId}/payload`);
    ticks.set(payload.Time, (ticks.get(payload.Time) ?? 0) + 1);
    lateness.push(Date.parse(view.invokedAt) - Date.parse(payload.Time));
  }
  return {
    cron: "* * * * * * *",
    seconds: TIMER_SECONDS,
    events: listed.body.total,
    distinctTicks: ticks.size,
    ticksFiredTwice: [...ticks.values()].filter((count) => count > 1).length,
    latenessMs: { p50: percentile(lateness, 50), p99: percentile(lateness, 99), max: Math.max(...lateness) },
  };
}

/**
 * HTTP-trigger accept latency: a function URL (AuthType NONE) answering 202 with a RequestId, at
 * one connection and a fixed low rate, beside /healthz measured the same way in the same part.
 */
async function httpTriggerAccept(api: ApiClient, baseUrl: string): Promise<Record<string, unknown>> {
  const fn = await createTrivial(api, { maxConcurrency: 2 });
  await dispatchLatency(api, fn, -1);
  const created = await api.json<{ url: string }>(`/v1/namespaces/${NAMESPACE}/functions/${fn}/triggers`, {
    method: "POST",
    body: JSON.stringify({ name: "bench-url", type: "http", triggerDesc: JSON.stringify({ AuthType: "NONE" }) }),
  });
  if (created.status !== 201) throw new Error(`http trigger answered ${created.status}`);
  const rate = "10";
  const seconds = String(Math.max(15, DURATION_S));
  const health = await autocannon(["-c", "1", "-R", rate, "-d", seconds, `${baseUrl}/healthz`]);
  const url = await autocannon([
    "-c",
    "1",
    "-R",
    rate,
    "-d",
    seconds,
    "-m",
    "POST",
    "-H",
    "content-type=application/json",
    "-b",
    '{"n":3}',
    `${created.body.url}/orders?x=1`,
  ]);
  return {
    requestsPerSecond: Number(rate),
    healthz: { p50: health.latency.p50, p99: health.latency.p99 },
    functionUrlAccept: { p50: url.latency.p50, p99: url.latency.p99, non2xx: url.non2xx },
    p50Ratio: Math.round((url.latency.p50 / Math.max(1, health.latency.p50)) * 100) / 100,
  };
}

/** Index rows seeded for the statistics figure (one function, over the index's 3 days). */
const STATISTICS_FIXTURE_SIZE = Number(process.env.BENCH_STATISTICS_EVENTS ?? 100_000);
/** Timed reads of the statistics endpoint (and of the list endpoint, and of /healthz, beside it). */
const STATISTICS_SAMPLES = Number(process.env.BENCH_STATISTICS_SAMPLES ?? 60);
/** Rows per seeding request: a D1 batch per request, well under the route's 32 MiB body bound. */
const SEED_BATCH_ROWS = 2000;

/**
 * The statistics endpoint (counts per status and hour over 3 days) over STATISTICS_FIXTURE_SIZE
 * index rows of one function, seeded through /_diagnostics/seed-index, beside /healthz and the
 * list endpoint (newest 20) on the same data, all timed sequentially from the same client.
 */
async function statisticsLatency(api: ApiClient, baseUrl: string): Promise<Record<string, unknown>> {
  const fn = await createTrivial(api, { maxConcurrency: 1 });
  const statuses = ["RUNNING", "FINISHED", "FAILED", "ABORTED"];
  const now = Date.now();
  // Spread over the statistics window: its 72 hours start at the top of the hour 71 hours before
  // the current one (the current hour included), so every row is counted (unless an hour turns
  // while the rows are seeded: the count check below says so).
  const hour = 3_600_000;
  const window = now - (Math.floor(now / hour) * hour - 71 * hour);
  const seedStarted = Date.now();
  for (let i = 0; i < STATISTICS_FIXTURE_SIZE; i += SEED_BATCH_ROWS) {
    const rows = Array.from({ length: Math.min(SEED_BATCH_ROWS, STATISTICS_FIXTURE_SIZE - i) }, (_, k) => {
      const n = i + k;
      const status = statuses[n % 4] as string;
      const startTime = now - ((n * 7919) % window);
      return {
        requestId: `20000000-0000-4000-8000-${n.toString().padStart(12, "0")}`,
        namespace: NAMESPACE,
        functionName: fn,
        qualifier: "$LATEST",
        invokeType: "OTHERS",
        status,
        statusCode: status === "RUNNING" ? null : status === "FINISHED" ? 200 : 430,
        phase: status.toLowerCase(),
        startTime,
        endTime: status === "RUNNING" ? null : startTime + (n % 600) * 1000,
        durationMs: status === "RUNNING" ? null : (n % 600) * 1000,
        version: 2,
      };
    });
    const seeded = await fetch(`${baseUrl}/_diagnostics/seed-index`, {
      method: "POST",
      headers: ADMIN_HEADERS,
      body: JSON.stringify({ rows }),
    });
    if (!seeded.ok) throw new Error(`seeding answered ${seeded.status}`);
  }
  const seedMs = Date.now() - seedStarted;
  const base = `/v1/namespaces/${NAMESPACE}/functions/${fn}`;
  const check = await api.json<{ totals: Record<string, number>; buckets: unknown[] }>(`${base}/statistics`);
  if (check.status !== 200) throw new Error(`statistics answered ${check.status}`);
  const counted = Object.values(check.body.totals).reduce((sum, count) => sum + count, 0);
  if (counted !== STATISTICS_FIXTURE_SIZE)
    throw new Error(`statistics counted ${counted} events of ${STATISTICS_FIXTURE_SIZE} seeded`);
  // Interleaved rounds, so a noisy moment of the shared machine touches all three alike.
  const rounds = 5;
  const per = Math.ceil(STATISTICS_SAMPLES / rounds);
  const stats: number[] = [];
  const list: number[] = [];
  const health: number[] = [];
  for (let round = 0; round < rounds; round++) {
    health.push(...(await timedSamples(per, () => fetch(`${baseUrl}/healthz`))));
    stats.push(...(await timedSamples(per, () => api.request(`${base}/statistics`))));
    list.push(...(await timedSamples(per, () => api.request(`${base}/events?limit=20`))));
  }
  const summary = (values: number[]) => ({ p50: percentile(values, 50), p99: percentile(values, 99) });
  const healthz = summary(health);
  const statistics = summary(stats);
  return {
    indexedEvents: STATISTICS_FIXTURE_SIZE,
    buckets: check.body.buckets.length,
    seedMs,
    samplesEach: per * rounds,
    healthz,
    statistics,
    listNewest20: summary(list),
    statisticsP50OverHealthzP50: Math.round((statistics.p50 / Math.max(0.1, healthz.p50)) * 10) / 10,
  };
}

/** `samples` sequential latencies (ms) of `get`, paced under the per-caller read limit (20/s). */
async function timedSamples(samples: number, get: () => Promise<Response>): Promise<number[]> {
  const latencies: number[] = [];
  while (latencies.length < samples) {
    const t0 = performance.now();
    const response = await get();
    await response.text();
    const elapsed = performance.now() - t0;
    if (response.status === 429) {
      // The read limit (20/s per caller) bit: wait it out and take this sample again.
      await new Promise((r) => setTimeout(r, 1000 * Number(response.headers.get("retry-after") ?? 1)));
      continue;
    }
    if (response.status !== 200) throw new Error(`read answered ${response.status}`);
    latencies.push(elapsed);
    await new Promise((r) => setTimeout(r, 60));
  }
  return latencies;
}

/** Queued events one bulk termination run ends (BENCH_BULK_EVENTS). */
const BULK_EVENTS = Number(process.env.BENCH_BULK_EVENTS ?? 1000);
/** Bulk termination runs timed (BENCH_BULK_RUNS); the figure is their median. */
const BULK_RUNS = Number(process.env.BENCH_BULK_RUNS ?? 3);
/** Invocations in flight at once while queueing a run's events. */
const BULK_INVOKE_CONCURRENCY = 20;

/**
 * A bulk termination of BULK_EVENTS queued events (a paused function's): from the POST to the job
 * FINISHED, and to every event read back ABORTED; the median of BULK_RUNS runs, beside /healthz.
 */
async function bulkTerminate(api: ApiClient, baseUrl: string): Promise<Record<string, unknown>> {
  const health = await timedSamples(20, () => fetch(`${baseUrl}/healthz`));
  const runs: { jobMs: number; allAbortedMs: number; counts: unknown; queueMs: number }[] = [];
  for (let run = 0; run < BULK_RUNS; run++) {
    const fn = await createTrivial(api, { maxConcurrency: 1 });
    const base = `/v1/namespaces/${NAMESPACE}/functions/${fn}`;
    const paused = await api.request(`${base}/dispatch/pause`, { method: "POST" });
    if (paused.status !== 200) throw new Error(`pause answered ${paused.status}`);
    const queueStarted = Date.now();
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: BULK_INVOKE_CONCURRENCY }, async () => {
        while (next < BULK_EVENTS) {
          next += 1;
          ids.push(await api.invoke(NAMESPACE, fn, {}));
        }
      }),
    );
    const queueMs = Date.now() - queueStarted;
    const bulk = `/v1/namespaces/${NAMESPACE}/bulk-terminations`;
    // Every event in the index (its row may trail its acceptance by a moment) before the clock starts.
    for (let counted = 0; counted < BULK_EVENTS; ) {
      const dry = await api.json<{ count: number }>(bulk, {
        method: "POST",
        body: JSON.stringify({ functionName: fn, dryRun: true }),
      });
      counted = dry.body.count;
      if (counted < BULK_EVENTS) await new Promise((r) => setTimeout(r, 200));
    }
    log(`bulk run ${run + 1}/${BULK_RUNS}: ${BULK_EVENTS} events queued in ${queueMs} ms; terminating`);
    const t0 = Date.now();
    const started = await api.json<{ jobId: string }>(bulk, {
      method: "POST",
      body: JSON.stringify({ functionName: fn }),
    });
    if (started.status !== 202) throw new Error(`bulk termination answered ${started.status}`);
    let job: { status: string; counts: unknown } = { status: "RUNNING", counts: null };
    while (job.status === "RUNNING") {
      await new Promise((r) => setTimeout(r, 100));
      job = (await api.json<typeof job>(`${bulk}/${started.body.jobId}`)).body;
    }
    const jobMs = Date.now() - t0;
    if (job.status !== "FINISHED") throw new Error(`bulk termination ended ${job.status}`);
    const statuses = await waitAllEnded(api, ids, 120_000);
    const allAbortedMs = Date.now() - t0;
    const aborted = [...statuses.values()].filter((status) => status === "ABORTED").length;
    if (aborted !== BULK_EVENTS) throw new Error(`${aborted} of ${BULK_EVENTS} events ABORTED`);
    runs.push({ jobMs, allAbortedMs, counts: job.counts, queueMs });
  }
  return {
    events: BULK_EVENTS,
    runs: runs.length,
    postToJobFinishedMs: median(runs.map((r) => r.jobMs)),
    postToAllReadAbortedMs: median(runs.map((r) => r.allAbortedMs)),
    eventsPerSecond: Math.round((BULK_EVENTS * 1000) / Math.max(1, median(runs.map((r) => r.jobMs)))),
    each: runs,
    healthz: { p50: percentile(health, 50), p99: percentile(health, 99) },
  };
}

/**
 * List latency over LIST_FIXTURE_SIZE seeded index rows (4 functions, 4 statuses, 3 days of start
 * times, every tenth row tagged): p50/p99 of LIST_SAMPLES reads of every filter the list has, and
 * of /healthz from the same client, in LIST_ROUNDS rounds; each figure is the median of its rounds'.
 */
async function listLatency(api: ApiClient, baseUrl: string): Promise<Record<string, unknown>> {
  const functions = ["etl", "transcode", "infer", "resize"];
  const fixtureStatuses = ["RUNNING", "FINISHED", "FAILED", "ABORTED"];
  const seedNow = Date.now();
  for (let i = 0; i < LIST_FIXTURE_SIZE; i += 2000) {
    const rows = Array.from({ length: Math.min(2000, LIST_FIXTURE_SIZE - i) }, (_, k) => {
      const n = i + k;
      const status = fixtureStatuses[n % 4] as string;
      const startTime = seedNow - ((n * 7919) % (3 * 86_400_000));
      const durationMs = status === "RUNNING" ? null : (n % 600) * 1000;
      return {
        requestId: `10000000-0000-4000-8000-${n.toString().padStart(12, "0")}`,
        namespace: "bench-list",
        functionName: functions[Math.floor(n / 4) % functions.length],
        qualifier: n % 5 === 0 ? "1" : "$LATEST",
        invokeType: n % 3 === 0 ? "TRIGGER_TIMER" : "OTHERS",
        status,
        statusCode: status === "RUNNING" ? null : status === "FAILED" ? 430 : 200,
        phase: status.toLowerCase(),
        startTime,
        endTime: durationMs === null ? null : startTime + durationMs,
        durationMs,
        version: 2,
        tags: n % 10 === 0 ? { team: n % 20 === 0 ? "video" : "ml" } : null,
      };
    });
    const seeded = await fetch(`${baseUrl}/_diagnostics/seed-index`, {
      method: "POST",
      headers: ADMIN_HEADERS,
      body: JSON.stringify({ rows }),
    });
    if (!seeded.ok) throw new Error(`seeding answered ${seeded.status}`);
  }
  const day = 86_400_000;
  const path = "/v1/namespaces/bench-list/functions/transcode/events";
  const startInterval = `startTimeFrom=${seedNow - 2 * day}&startTimeTo=${seedNow - day}&order=ASC&limit=100`;
  const firstPage = await api.json<{ nextCursor: string | null }>(`${path}?${startInterval}`);
  const listQueries: Record<string, string> = {
    newestFirst: "limit=20",
    statusList: "statuses=FAILED,ABORTED&limit=100",
    startInterval,
    startIntervalNextPage: `${startInterval}&cursor=${encodeURIComponent(firstPage.body.nextCursor ?? "")}`,
    endIntervalByEnd: `endTimeFrom=${seedNow - 2 * day}&endTimeTo=${seedNow - day}&orderBy=endTime&limit=100`,
    combinedDeepPage: `statuses=FINISHED&invokeTypes=TRIGGER_TIMER&startTimeFrom=${seedNow - 2.5 * day}&offset=500&limit=100`,
    requestId: "requestId=10000000-0000-4000-8000-000000000005",
    qualifier: "qualifier=1&limit=100",
    invokeTypes: "invokeTypes=TRIGGER_TIMER&limit=100",
    statusCodes: "statusCodes=430&limit=100",
    durationRange: "minDurationMs=120000&maxDurationMs=240000&limit=100",
    tags: "tags=team%3Dvideo&limit=100",
  };
  type Round = { p50: number; p99: number };
  const rounds: Record<string, Round[]> = {};
  const totals: Record<string, number> = {};
  const healthRounds: Round[] = [];
  // Rounds over every filter in turn, so that a noisy minute of the shared machine lands on one
  // round of each filter rather than on all of one filter's samples.
  for (let round = 0; round < LIST_ROUNDS; round++) {
    for (const [label, query] of Object.entries(listQueries)) {
      const samples: number[] = [];
      await api.json(`${path}?${query}`);
      let nextStart = performance.now() + LIST_READ_INTERVAL_MS;
      for (let i = 0; i < LIST_SAMPLES; i++) {
        const t0 = performance.now();
        const response = await api.json<{ total: number }>(`${path}?${query}`);
        samples.push(performance.now() - t0);
        if (response.status !== 200) throw new Error(`list ${label} answered ${response.status}`);
        totals[label] = response.body.total;
        // Paced under the per-caller read limit.
        const wait = nextStart - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        nextStart = Math.max(performance.now(), nextStart) + LIST_READ_INTERVAL_MS;
      }
      rounds[label] = [...(rounds[label] ?? []), { p50: percentile(samples, 50), p99: percentile(samples, 99) }];
    }
    const healthSamples: number[] = [];
    for (let i = 0; i < LIST_SAMPLES; i++) {
      const t0 = performance.now();
      await fetch(`${baseUrl}/healthz`).then((r) => r.text());
      healthSamples.push(performance.now() - t0);
    }
    healthRounds.push({ p50: percentile(healthSamples, 50), p99: percentile(healthSamples, 99) });
  }
  const summary = (each: Round[]) => ({
    p50: median(each.map((r) => r.p50)),
    p99: median(each.map((r) => r.p99)),
    rounds: each,
  });
  const figures: Record<string, unknown> = {};
  for (const [label, each] of Object.entries(rounds)) figures[label] = { ...summary(each), total: totals[label] };
  const worstP99 = Math.max(...Object.values(rounds).map((each) => median(each.map((r) => r.p99))));
  return {
    indexedEvents: LIST_FIXTURE_SIZE,
    samplesPerRound: LIST_SAMPLES,
    rounds: LIST_ROUNDS,
    healthzSameClient: summary(healthRounds),
    /** The highest of the filters' median p99s: the figure the 25 ms target is read against. */
    worstFilterP99: worstP99,
    ...figures,
  };
}

/**
 * Unloaded latency: one connection at a fixed low rate (10 requests/s), so each request meets an
 * idle platform (every accepted event also runs, on a warm container, between two requests):
 * `/healthz`, then invoke accept, p50 and p99 of each.
 */
async function unloadedLatency(api: ApiClient, baseUrl: string) {
  const fn = await createTrivial(api, { maxConcurrency: 2 });
  await dispatchLatency(api, fn, -1);
  const invokeUrl = `${baseUrl}/v1/namespaces/${NAMESPACE}/functions/${fn}/invocations`;
  const auth = `authorization=${api.authorization}`;
  const rate = "10";
  const unloadedSeconds = String(Math.max(15, DURATION_S));
  const healthOne = await autocannon(["-c", "1", "-R", rate, "-d", unloadedSeconds, `${baseUrl}/healthz`]);
  const acceptOne = await autocannon([
    "-c",
    "1",
    "-R",
    rate,
    "-d",
    unloadedSeconds,
    "-m",
    "POST",
    "-H",
    auth,
    "-H",
    "content-type=application/json",
    "-b",
    '{"n":1}',
    invokeUrl,
  ]);
  return {
    requestsPerSecond: Number(rate),
    healthz: { p50: healthOne.latency.p50, p99: healthOne.latency.p99 },
    invokeAccept: { p50: acceptOne.latency.p50, p99: acceptOne.latency.p99, non2xx: acceptOne.non2xx },
  };
}

async function main(): Promise<void> {
  log("starting the platform");
  const platform = await startPlatform({
    // Plain-http webhooks to the local receiver of webhookDeliveryLatency (loopback only).
    vars: {
      DIAGNOSTICS_ENABLED: "true",
      ALLOW_HTTP_WEBHOOKS: "true",
      // Room for the pipeline part's maxConcurrency 50 run beside the bench's other warm functions.
      NAMESPACE_MAX_CONTAINERS: "60",
      PLATFORM_MAX_CONTAINERS: "120",
    },
    env: { DEV_SECRET_ID: TEST_CREDENTIALS.secretId, DEV_SECRET_KEY: TEST_CREDENTIALS.secretKey },
  });
  const api = new ApiClient(platform.baseUrl);
  const figures: Record<string, unknown> = { machine: { cores: (await import("node:os")).cpus().length } };
  try {
    if (ONLY === "logVolume") {
      log(
        `log volume only: ${LOG_LINES} lines printed as fast as possible by one handler, to /dev/null then to stdout`,
      );
      figures.logVolume = await logVolume(api, platform.baseUrl);
      process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
      return;
    }
    if (ONLY === "statistics") {
      log(`statistics only: the endpoint over ${STATISTICS_FIXTURE_SIZE} index rows beside /healthz and the list`);
      figures.statisticsLatencyMs = await statisticsLatency(api, platform.baseUrl);
      process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
      return;
    }
    if (ONLY === "bulk") {
      log(`bulk only: ${BULK_RUNS} bulk terminations of ${BULK_EVENTS} queued events each, beside /healthz`);
      figures.bulkTerminate = await bulkTerminate(api, platform.baseUrl);
      process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
      return;
    }
    if (ONLY === "pipeline") {
      log("pipeline only: accept load, 1,000 events at maxConcurrency 10 and 50, Workflows, BENCH_RUNS times");
      figures.pipeline = await pipelineFigures({ api, baseUrl: platform.baseUrl, autocannon, log });
      process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
      return;
    }
    if (ONLY === "list") {
      log(`list only: every filter over ${LIST_FIXTURE_SIZE} seeded index rows`);
      figures.listLatencyMs = await listLatency(api, platform.baseUrl);
      process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
      return;
    }
    if (ONLY === "coldStart") {
      log(`cold start only: ${COLD_SAMPLES} new functions of each kind (Node.js, Python, Custom Runtime, image)`);
      figures.coldStartMs = await coldStartPerKind(api);
      process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
      return;
    }
    if (ONLY === "unloaded") {
      log("unloaded only: /healthz and invoke accept latency at 1 connection, 10 req/s");
      figures.unloadedLatencyMs = await unloadedLatency(api, platform.baseUrl);
      process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
      return;
    }
    if (ONLY === "triggers") {
      log("triggers only: function URL accept latency beside /healthz, then timer firing accuracy");
      figures.httpTriggerAcceptMs = await httpTriggerAccept(api, platform.baseUrl);
      figures.timerTrigger = await timerAccuracy(api);
      process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
      return;
    }
    log("unloaded latency at 1 connection, 10 req/s: /healthz and invoke");
    figures.unloadedLatencyMs = await unloadedLatency(api, platform.baseUrl);

    log("function URL (http trigger) accept latency beside /healthz, 1 connection");
    figures.httpTriggerAcceptMs = await httpTriggerAccept(api, platform.baseUrl);
    log(`timer trigger firing accuracy: every second for ${TIMER_SECONDS} s`);
    figures.timerTrigger = await timerAccuracy(api);

    log(`seeding ${LIST_FIXTURE_SIZE} index rows for list latency`);
    figures.listLatencyMs = await listLatency(api, platform.baseUrl);

    log(`statistics endpoint over ${STATISTICS_FIXTURE_SIZE} index rows of one function`);
    figures.statisticsLatencyMs = await statisticsLatency(api, platform.baseUrl);

    log("draining the events of the latency run");
    await new Promise((r) => setTimeout(r, 2_000));

    log(`warm dispatch latency (${WARM_SAMPLES} sequential events)`);
    const warmFn = await createTrivial(api, { maxConcurrency: 1 });
    await dispatchLatency(api, warmFn, -1);
    const warm: number[] = [];
    for (let i = 0; i < WARM_SAMPLES; i++) warm.push(await dispatchLatency(api, warmFn, i));
    figures.warmDispatchMs = { p50: percentile(warm, 50), p99: percentile(warm, 99), samples: warm.length };

    log(`cold start (${COLD_SAMPLES} new functions of each kind)`);
    figures.coldStartMs = await coldStartPerKind(api);

    log(`terminate latency (${TERMINATE_SAMPLES} forced, ${TERMINATE_SAMPLES} graceful)`);
    const jobName = await api.createUniqueFunction(NAMESPACE, "bench-term", {
      runtime: "Nodejs22",
      files: { "index.js": SIGTERM_HANDLER },
      timeout: 300,
      maxConcurrency: 2,
    });
    const forced: number[] = [];
    const graceful: number[] = [];
    for (let i = 0; i < TERMINATE_SAMPLES; i++) {
      const requestId = await api.invoke(NAMESPACE, jobName, { listen: false });
      const running = await api.waitForEvent(requestId, (event) => event.phase === "running");
      const t0 = Date.now();
      const response = await api.json<{ status: string }>(`/v1/events/${requestId}/terminate`, { method: "POST" });
      const instance = await fetch(
        `${platform.baseUrl}/_diagnostics/instances/${encodeURIComponent(running.instanceId ?? "")}`,
        { headers: ADMIN_HEADERS },
      );
      const gone = !((await instance.json()) as { containerRunning: boolean }).containerRunning;
      if (response.body.status !== "ABORTED" || !gone) throw new Error("forced terminate did not end the event");
      forced.push(Date.now() - t0);
    }
    for (let i = 0; i < TERMINATE_SAMPLES; i++) {
      const requestId = await api.invoke(NAMESPACE, jobName, { listen: true });
      await api.waitForEvent(requestId, (event) => event.phase === "running");
      await new Promise((r) => setTimeout(r, 100));
      const t0 = Date.now();
      await api.json(`/v1/events/${requestId}/terminate`, { method: "POST", body: JSON.stringify({ graceful: true }) });
      await api.waitForEvent(requestId);
      const line = (await api.logs(requestId)).find((record) => record.line.startsWith("sigterm-at "));
      if (!line) throw new Error("the handler did not log SIGTERM");
      graceful.push(Number(line.line.slice("sigterm-at ".length)) - t0);
    }
    figures.terminateLatencyMs = {
      forcedToAbortedAndContainerGone: {
        p50: percentile(forced, 50),
        max: Math.max(...forced),
        samples: forced.length,
      },
      gracefulToSigtermInHandler: {
        p50: percentile(graceful, 50),
        max: Math.max(...graceful),
        samples: graceful.length,
      },
    };

    log("live log latency: print in the handler → line received by an SSE client");
    const tickerName = await api.createUniqueFunction(NAMESPACE, "bench-tick", {
      runtime: "Nodejs22",
      files: { "index.js": TICKER_HANDLER },
      timeout: 120,
    });
    await api.waitForEvent(await api.invoke(NAMESPACE, tickerName, { count: 1, intervalMs: 1 }));
    const printToClient: number[] = [];
    for (let round = 0; round < 2; round++) {
      const requestId = await api.invoke(NAMESPACE, tickerName, { count: 100, intervalMs: 100 });
      await followLogs(api, requestId, {
        onEvent: (event) => {
          const line = (event.data as { line?: string; stream?: string }).line ?? "";
          if (event.event === "log" && line.startsWith("t="))
            printToClient.push(event.receivedAt - Number(line.slice(2)));
        },
      });
    }
    figures.liveLogLatencyMs = {
      p50: percentile(printToClient, 50),
      p99: percentile(printToClient, 99),
      lines: printToClient.length,
    };

    log(`log volume: ${LOG_LINES} lines printed as fast as possible by one handler, to /dev/null then to stdout`);
    figures.logVolume = await logVolume(api, platform.baseUrl);

    log(`webhook delivery latency: event end → receiver acknowledged (${WEBHOOK_SAMPLES} events)`);
    figures.webhookDeliveryLatencyMs = await webhookDeliveryLatency(api);

    log("pipeline: accept load, 1,000 events at maxConcurrency 10 and 50, Workflows, BENCH_RUNS times");
    figures.pipeline = await pipelineFigures({ api, baseUrl: platform.baseUrl, autocannon, log });
  } finally {
    await platform.stop();
  }
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
}

main().catch((error: unknown) => {
  log(String(error instanceof Error ? error.stack : error));
  process.exit(1);
});
