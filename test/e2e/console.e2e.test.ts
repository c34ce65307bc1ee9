// The web console (/console) in a real browser against the running platform: Debian's chromium,
// driven by playwright-core. Signs in, creates a function from a zip, invokes it, follows the
// event's log live, terminates it gracefully, filters the event list and reloads the shared URL,
// and checks that a namespace-scoped key sees nothing of another namespace. Saves a screenshot of
// each main view to docs/screenshots/ and writes the page weight and time to first render to
// .state/console-metrics.json.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CODE_RUNTIME_NAMES } from "../../worker/contract/execution-spec";
import { ApiClient, TEST_CREDENTIALS } from "../helpers/api-client";
import { zipFiles } from "../helpers/zip";
import { NODE_LONG_JOB } from "./fixtures";

const baseUrl = inject("baseUrl");
const api = new ApiClient(baseUrl);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** Debian's chromium (scripts/ensure-chromium.sh installs it when missing). */
const CHROMIUM = "/usr/bin/chromium";
/** How long installing chromium may take, in ms. */
const INSTALL_TIMEOUT_MS = 600_000;
/** How long a view may take to show what the test waits for, in ms. */
const VIEW_TIMEOUT_MS = 30_000;
/** How long an event may take to start running and print its first lines, in ms. */
const RUN_TIMEOUT_MS = 90_000;
/** The viewport of every page: a laptop screen. */
const VIEWPORT = { width: 1280, height: 800 };
/** Loads of the sign-in page measured for the time to first render (the median is reported). */
const RENDER_SAMPLES = 5;
/** Largest screenshot kept in the repository, in bytes. */
const MAX_SCREENSHOT_BYTES = 200 * 1024;
const SCREENSHOTS = join(ROOT, "docs", "screenshots");

const suffix = Date.now().toString(36).slice(-6);
const NAMESPACE = `console-${suffix}`;
const SCOPED_NAMESPACE = `console-own-${suffix}`;
const FUNCTION = `console-job-${suffix}`;

/** A progress message full of markup: the views must show it as text, never as HTML. */
const PROGRESS_MESSAGE = `<img src=x onerror="window.__injected=1"> step <b>2</b> & <script>window.__injected=2</script>`;
/** Tags of the console's invocation (values allow no markup characters: the text still must stay text). */
const TAGS = { team: "video", stage: "a/b+c=d" };
const TAGS_TEXT = Object.entries(TAGS)
  .map(([key, value]) => `${key}=${value}`)
  .join(",");

let browser: Browser | undefined;
let context: BrowserContext;
let page: Page;
let requestId = "";
const foreign: string[] = [];
const problems: string[] = [];

/** A fresh page in its own context (its own session storage), watched for foreign requests and errors. */
async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
  if (!browser) throw new Error("chromium did not start");
  const fresh = await browser.newContext({ viewport: VIEWPORT });
  const opened = await fresh.newPage();
  const origin = new URL(baseUrl).origin;
  opened.on("request", (request) => {
    const url = new URL(request.url());
    if (url.origin !== origin && url.protocol !== "data:" && url.protocol !== "blob:") foreign.push(request.url());
  });
  opened.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  opened.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()} (${message.location().url})`);
  });
  return { context: fresh, page: opened };
}

/**
 * An HTTP proxy to the platform whose cutStreams() destroys the connections of the log streams
 * passing through it (returns how many), as a network drop would.
 */
async function startCuttingProxy(
  target: string,
): Promise<{ url: string; cutStreams: () => number; lastEventIds: string[]; close: () => Promise<void> }> {
  const streams = new Set<Socket>();
  /** The Last-Event-ID header of each log stream request (empty when none was sent). */
  const lastEventIds: string[] = [];
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", target);
    const upstream = httpRequest(
      url,
      { method: request.method, headers: { ...request.headers, host: url.host } },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on("error", () => response.destroy());
    response.on("close", () => upstream.destroy());
    if (url.pathname.endsWith("/logs/stream")) {
      lastEventIds.push(String(request.headers["last-event-id"] ?? ""));
      streams.add(request.socket);
      request.socket.on("close", () => streams.delete(request.socket));
    }
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    lastEventIds,
    cutStreams: () => {
      const count = streams.size;
      for (const socket of streams) socket.destroy();
      streams.clear();
      return count;
    },
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

async function screenshot(target: Page, name: string): Promise<void> {
  const file = join(SCREENSHOTS, `console-${name}.png`);
  const bytes = await target.screenshot({ path: file, fullPage: false });
  expect(bytes.length, `${file} is over ${MAX_SCREENSHOT_BYTES} bytes`).toBeLessThan(MAX_SCREENSHOT_BYTES);
}

/** The page made no element of user text and ran none of its scripts. */
async function assertNoInjection(target: Page): Promise<void> {
  expect(await target.locator("#view img, #view b, #view script").count()).toBe(0);
  expect(await target.evaluate(() => (window as unknown as { __injected?: number }).__injected)).toBeUndefined();
}

async function signIn(target: Page, secretId: string, secretKey: string, namespace: string): Promise<void> {
  await target.getByLabel("SecretId").fill(secretId);
  await target.getByLabel("SecretKey").fill(secretKey);
  await target.locator("#sign-in-namespace").fill(namespace);
  await target.getByRole("button", { name: "Sign in" }).click();
}

beforeAll(async () => {
  execFileSync("bash", [join(ROOT, "scripts", "ensure-chromium.sh")], {
    stdio: "inherit",
    timeout: INSTALL_TIMEOUT_MS,
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  ({ context, page } = await newPage());
  mkdirSync(SCREENSHOTS, { recursive: true });
}, INSTALL_TIMEOUT_MS + 60_000);

afterAll(async () => {
  await context?.close();
  await browser?.close();
});

describe("the console page", () => {
  it("is served with a strict policy, loads only from the platform, and renders the sign-in form", async () => {
    const response = await fetch(`${baseUrl}/console`);
    expect(response.status).toBe(200);
    const policy = response.headers.get("content-security-policy") ?? "";
    expect(policy).toContain("script-src 'self';");
    expect(policy).not.toContain("unsafe-inline");
    expect(policy).toContain("frame-ancestors 'none'");
    expect((await fetch(`${baseUrl}/console/../wrangler.toml`)).status).toBe(404);
    expect((await fetch(`${baseUrl}/console/nothing-here.js`)).status).toBe(404);

    // Page weight and time to first render, measured on fresh loads (no cache between them): the
    // bytes on the wire of every response, and the time from navigation start to the moment the
    // sign-in form is shown (recorded in the page by an observer the test adds) and to the first
    // contentful paint.
    const shownAt: number[] = [];
    const paintedAt: number[] = [];
    let bytes = 0;
    const files: string[] = [];
    for (let i = 0; i < RENDER_SAMPLES; i++) {
      const probe = await newPage();
      await probe.page.addInitScript(() => {
        const state = window as unknown as { signInShownAt?: number };
        new MutationObserver(() => {
          const form = document.getElementById("sign-in");
          if (form && !form.hidden && state.signInShownAt === undefined) state.signInShownAt = performance.now();
        }).observe(document, { subtree: true, childList: true, attributes: true });
      });
      const cdp = await probe.context.newCDPSession(probe.page);
      await cdp.send("Network.enable");
      await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
      let transferred = 0;
      cdp.on("Network.loadingFinished", (event: { encodedDataLength: number }) => {
        transferred += event.encodedDataLength;
      });
      const loaded: string[] = [];
      probe.page.on("response", (answer) => loaded.push(new URL(answer.url()).pathname));
      await probe.page.goto(`${baseUrl}/console`);
      await probe.page.locator("#sign-in-form").waitFor({ state: "visible", timeout: VIEW_TIMEOUT_MS });
      await probe.page.waitForLoadState("networkidle");
      const timing = await probe.page.evaluate(() => ({
        shown: (window as unknown as { signInShownAt?: number }).signInShownAt ?? Number.NaN,
        painted: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? Number.NaN,
      }));
      shownAt.push(timing.shown);
      paintedAt.push(timing.painted);
      bytes = transferred;
      files.splice(0, files.length, ...loaded);
      await probe.context.close();
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
    const metrics = {
      pageBytesTransferred: bytes,
      files,
      signInFormShownMs: shownAt.map(Math.round),
      firstContentfulPaintMs: paintedAt.map(Math.round),
      medianSignInFormShownMs: median(shownAt),
      medianFirstContentfulPaintMs: median(paintedAt),
    };
    mkdirSync(join(ROOT, ".state"), { recursive: true });
    writeFileSync(join(ROOT, ".state", "console-metrics.json"), `${JSON.stringify(metrics, null, 2)}\n`);
    console.log(`console first view: ${JSON.stringify(metrics)}`);
    expect(shownAt.every((value) => value > 0)).toBe(true);
    expect(bytes).toBeGreaterThan(0);

    await page.goto(`${baseUrl}/console`);
    await expect.poll(() => page.locator("#sign-in-form").isVisible(), { timeout: VIEW_TIMEOUT_MS }).toBe(true);
    await screenshot(page, "sign-in");
  });

  it("offers exactly the platform's code runtimes (an image function is made with an image, not in the code editor)", async () => {
    const source = await (await fetch(`${baseUrl}/console/views/common.js`)).text();
    const listed = /export const RUNTIMES = (\[[^\]]*\]);/.exec(source)?.[1];
    // The array as biome formats it: one name a line, with a trailing comma (not JSON).
    expect(JSON.parse(listed?.replace(/,\s*\]$/, "]") ?? "null")).toEqual([...CODE_RUNTIME_NAMES]);
  });
});

describe("the console in a browser", () => {
  it("refuses wrong credentials with a message, then signs in", async () => {
    await signIn(page, TEST_CREDENTIALS.secretId, "wrong-key", NAMESPACE);
    await expect
      .poll(() => page.locator("#sign-in-error").textContent(), { timeout: VIEW_TIMEOUT_MS })
      .toContain("refused");
    await signIn(page, TEST_CREDENTIALS.secretId, TEST_CREDENTIALS.secretKey, NAMESPACE);
    await page.getByRole("heading", { name: /Functions/ }).waitFor({ timeout: VIEW_TIMEOUT_MS });
    expect(await page.evaluate(() => Object.keys(sessionStorage))).toEqual(["afp-console-session"]);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
  });

  it("creates a function from an uploaded zip with its configuration", async () => {
    await page.getByRole("link", { name: "Create function" }).click();
    await page.locator("#create-form").waitFor({ timeout: VIEW_TIMEOUT_MS });
    await page.getByLabel("Name", { exact: true }).fill(FUNCTION);
    await page.locator("#create-runtime").selectOption("Nodejs22");
    await page.getByLabel("Timeout (s)").fill("120");
    await page.getByLabel("Memory (MB)").fill("256");
    await page.getByLabel("Concurrency").fill("2");
    await page.locator("#create-env").fill("GREETING=hello");
    await page.getByLabel("Log limit (MiB)").fill("64");
    await page.getByLabel("Upload a zip").check();
    await page.locator("#create-zip").setInputFiles({
      name: "code.zip",
      mimeType: "application/zip",
      buffer: Buffer.from(zipFiles({ "index.js": NODE_LONG_JOB })),
    });
    await screenshot(page, "create");
    await page.getByRole("button", { name: "Create function" }).click();
    await page.getByText(`Function ${FUNCTION} created.`).waitFor({ timeout: VIEW_TIMEOUT_MS });
    const created = await api.json<Record<string, unknown>>(`/v1/namespaces/${NAMESPACE}/functions/${FUNCTION}`);
    expect(created.body).toMatchObject({
      runtime: "Nodejs22",
      timeout: 120,
      memorySize: 256,
      maxConcurrency: 2,
      asyncRunEnable: true,
      environment: { GREETING: "hello" },
      logLimitMb: 64,
    });
    expect(await page.getByText("Triggers, versions and aliases").isVisible()).toBe(true);
  });

  it("creates a function from the inline editor's handler, zipped in the browser, that runs", async () => {
    const inline = `console-inline-${suffix}`;
    await page.goto(`${baseUrl}/console?view=create&ns=${NAMESPACE}`);
    await page.locator("#create-form").waitFor({ timeout: VIEW_TIMEOUT_MS });
    await page.getByLabel("Name", { exact: true }).fill(inline);
    expect(await page.getByLabel("Inline editor").isChecked()).toBe(true);
    expect(await page.locator("#create-file-name").inputValue()).toBe("index.js");
    await page
      .locator("#create-source")
      .fill("exports.main_handler = async (event) => ({ doubled: event.n * 2, greeting: process.env.WHO });\n");
    await page.locator("#create-env").fill("WHO=console");
    await page.getByRole("button", { name: "Create function" }).click();
    await page.getByText(`Function ${inline} created.`).waitFor({ timeout: VIEW_TIMEOUT_MS });
    const done = await api.waitForEvent(await api.invoke(NAMESPACE, inline, { n: 21 }), undefined, RUN_TIMEOUT_MS);
    expect(done.status).toBe("FINISHED");
    expect(done.result).toEqual({ doubled: 42, greeting: "console" });
    await page.goto(`${baseUrl}/console?view=function&ns=${NAMESPACE}&fn=${FUNCTION}`);
    await page.locator("#invoke-form").waitFor({ timeout: VIEW_TIMEOUT_MS });
  });

  it("validates the payload, invokes, and links the new RequestId to its event", async () => {
    const payload = page.locator("#payload");
    await payload.fill("{not json");
    expect(await page.locator("#payload-check").textContent()).toContain("Not valid JSON");
    expect(await page.locator("#invoke-button").isDisabled()).toBe(true);
    await payload.fill(JSON.stringify({ big: "x".repeat(128 * 1024) }));
    expect(await page.locator("#payload-check").textContent()).toContain("Too large");
    await payload.fill(JSON.stringify({ listen: true, runMs: 60_000, tickMs: 300 }));
    expect(await page.locator("#payload-check").textContent()).toContain("of 131072 bytes");
    await screenshot(page, "function");
    await page.locator("#invoke-button").click();
    const link = page.locator("#invoked-request-id");
    await link.waitFor({ timeout: VIEW_TIMEOUT_MS });
    requestId = (await link.textContent()) ?? "";
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    await link.click();
    await page.getByRole("heading", { name: `Event ${requestId}` }).waitFor({ timeout: VIEW_TIMEOUT_MS });
  });

  it("shows the event running with its log streaming in live", async () => {
    const log = page.locator("#event-log");
    await expect.poll(() => log.locator(".line.stdout").count(), { timeout: RUN_TIMEOUT_MS }).toBeGreaterThan(3);
    expect(await log.locator(".line.stdout .text").first().textContent()).toBe("tick");
    const before = await log.locator(".line").count();
    await expect.poll(() => log.locator(".line").count(), { timeout: VIEW_TIMEOUT_MS }).toBeGreaterThan(before + 2);
    expect(await page.locator("#event-state .badge").textContent()).toBe("RUNNING");
    expect(await page.locator("#log-state").textContent()).toContain("live");
    // Searching keeps the matching lines only.
    await page.locator("#log-search").fill("no line says this");
    expect(await log.locator(".line:visible").count()).toBe(0);
    await page.locator("#log-search").fill("");
    await screenshot(page, "event");
  });

  it("resumes the log after a disconnect from the last line seen, losing and repeating none", async () => {
    // The same event's view through a proxy that can cut the log stream's connection, as a network
    // drop would (the browser's offline mode leaves an open stream alone).
    if (!browser) throw new Error("chromium did not start");
    const proxy = await startCuttingProxy(baseUrl);
    const viewer = await browser.newContext({ viewport: VIEWPORT });
    try {
      const proxied = await viewer.newPage();
      await proxied.goto(`${proxy.url}/console?view=event&id=${requestId}`);
      await signIn(proxied, TEST_CREDENTIALS.secretId, TEST_CREDENTIALS.secretKey, NAMESPACE);
      const log = proxied.locator("#event-log");
      await expect.poll(() => log.locator(".line").count(), { timeout: VIEW_TIMEOUT_MS }).toBeGreaterThan(3);
      expect(proxy.cutStreams()).toBeGreaterThan(0);
      await expect
        .poll(() => proxied.locator("#log-state").textContent(), { timeout: VIEW_TIMEOUT_MS })
        .toMatch(/^live \(resumed after line \d+\)$/);
      // The reconnection asked for the lines after the last one shown, by Last-Event-ID.
      const resumedAfter = Number(
        /after line (\d+)/.exec((await proxied.locator("#log-state").textContent()) ?? "")?.[1],
      );
      expect(proxy.lastEventIds).toEqual(["", String(resumedAfter)]);
      const seen = await log.locator(".line").count();
      await expect.poll(() => log.locator(".line").count(), { timeout: VIEW_TIMEOUT_MS }).toBeGreaterThan(seen + 2);
      const seqs = await log
        .locator(".line")
        .evaluateAll((items) => items.map((item) => Number((item as HTMLElement).dataset.seq)));
      expect(seqs).toEqual(seqs.map((_, index) => index + 1));
    } finally {
      await viewer.close();
      await proxy.close();
    }
  });

  it("terminates gracefully after confirmation: ABORTED with the SIGTERM verdict, live", async () => {
    await page.locator("#terminate-graceful").click();
    await page.locator("#confirm").getByRole("button", { name: "Send SIGTERM" }).click();
    await expect
      .poll(() => page.locator("#event-state .badge").textContent(), { timeout: RUN_TIMEOUT_MS })
      .toBe("ABORTED");
    const log = page.locator("#event-log");
    await expect
      .poll(() => log.locator(".line.platform .text").allTextContents(), { timeout: VIEW_TIMEOUT_MS })
      .toContain("[PLATFORM] Signal received successfully");
    expect(await log.locator(".line.stdout .text").allTextContents()).toContain("cleanup: checkpoint saved");
    await expect
      .poll(() => page.locator("#log-state").textContent(), { timeout: VIEW_TIMEOUT_MS })
      .toContain("complete");
    expect(await page.locator("#event-result").textContent()).toContain('"stopped": true');
    expect(await page.locator("#event-state").textContent()).toContain("200");
  });

  it("shows the ended event's timeline and termination outcome as its status has them", async () => {
    const status = await api.json<{
      timeline: { kind: string; detail: string | null }[];
      terminationMode: string | null;
      signalDeliveredAt: string | null;
      endedWithinGrace: boolean | null;
    }>(`/v1/events/${requestId}`);
    expect(status.body).toMatchObject({ terminationMode: "graceful", endedWithinGrace: true });
    expect(status.body.signalDeliveredAt).not.toBeNull();
    // A fresh load of the view: everything below comes from one GET of the ended event.
    await page.reload();
    const entries = page.locator("#event-timeline li");
    await expect.poll(() => entries.count(), { timeout: VIEW_TIMEOUT_MS }).toBe(status.body.timeline.length);
    const shown = await entries.evaluateAll((items) =>
      items.map((item) => ({
        kind: (item as HTMLElement).dataset.kind,
        detail: item.querySelector(".detail")?.textContent ?? "",
      })),
    );
    expect(shown).toEqual(status.body.timeline.map(({ kind, detail }) => ({ kind, detail: detail ?? "" })));
    expect(shown.map(({ kind }) => kind)).toEqual(
      expect.arrayContaining(["accepted", "running", "terminate-requested", "signal-delivered", "ended"]),
    );
    expect(shown[0]?.kind).toBe("accepted");
    expect(shown.at(-1)?.kind).toBe("ended");
    const termination = (await page.locator("#event-termination").textContent()) ?? "";
    expect(termination).toContain("graceful terminate");
    expect(termination).toContain("SIGTERM delivered");
    expect(termination).toContain("ended within the grace period");
    await page.locator("#event-timeline").scrollIntoViewIfNeeded();
    await screenshot(page, "event-timeline");
  });

  it("downloads the event's whole log as a text file", async () => {
    const [download] = await Promise.all([
      page.waitForEvent("download", { timeout: VIEW_TIMEOUT_MS }),
      page.locator("#log-download").click(),
    ]);
    expect(download.suggestedFilename()).toBe(`${requestId}.log`);
    const text = readFileSync(await download.path(), "utf8");
    const lines = text.trimEnd().split("\n");
    // `<ISO time> <stream> <line>`, from the START line to the END line.
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z platform \[PLATFORM\] START /);
    expect(lines.some((line) => / stdout tick$/.test(line))).toBe(true);
    expect(lines.at(-1)).toMatch(/ platform \[PLATFORM\] END .*Status: ABORTED/);
  });

  it("filters the event list into the URL and restores the filter from a reload of it", async () => {
    // A second event that finishes, so a status filter has something to leave out.
    const finished = await api.invoke(NAMESPACE, FUNCTION, { runMs: 0 });
    await api.waitForEvent(finished);
    await page.goto(`${baseUrl}/console?view=events&ns=${NAMESPACE}&fn=${FUNCTION}`);
    const rows = page.locator("#events-table tbody tr");
    await expect.poll(() => rows.count(), { timeout: VIEW_TIMEOUT_MS }).toBe(2);
    await page.locator("#event-filters").getByLabel("ABORTED").check();
    await page.locator("#filter-order").selectOption("ASC");
    await page.locator("#apply-filters").click();
    await expect.poll(() => new URL(page.url()).searchParams.get("statuses")).toBe("ABORTED");
    expect(new URL(page.url()).searchParams.get("order")).toBe("ASC");
    await expect.poll(() => rows.count(), { timeout: VIEW_TIMEOUT_MS }).toBe(1);
    expect(await rows.first().getAttribute("data-request-id")).toBe(requestId);

    // The shared link: a reload (a fresh load of the same URL) shows the same filter and rows.
    await page.reload();
    await expect.poll(() => rows.count(), { timeout: VIEW_TIMEOUT_MS }).toBe(1);
    expect(await page.locator("#event-filters").getByLabel("ABORTED").isChecked()).toBe(true);
    expect(await page.locator("#event-filters").getByLabel("FINISHED").isChecked()).toBe(false);
    expect(await page.locator("#filter-order").inputValue()).toBe("ASC");
    expect(await rows.first().getAttribute("data-request-id")).toBe(requestId);
    await expect
      .poll(() => page.locator("#statistics-chart rect.bar").count(), { timeout: VIEW_TIMEOUT_MS })
      .toBeGreaterThan(0);
    expect(await page.locator("#statistics-chart figcaption").textContent()).toContain("ABORTED 1");
    await screenshot(page, "events");

    await page.goto(`${baseUrl}/console?view=functions&ns=${NAMESPACE}`);
    await page.locator("#functions-table").waitFor({ timeout: VIEW_TIMEOUT_MS });
    expect(await page.locator("#functions-table").textContent()).toContain(FUNCTION);
    await screenshot(page, "functions");
  });

  it("searches the function list by name, into the URL", async () => {
    await page.goto(`${baseUrl}/console?view=functions&ns=${NAMESPACE}`);
    await page.locator("#functions-table").waitFor({ timeout: VIEW_TIMEOUT_MS });
    await page.getByLabel("Search by name").fill("JOB");
    await expect.poll(() => new URL(page.url()).searchParams.get("search"), { timeout: VIEW_TIMEOUT_MS }).toBe("JOB");
    await expect
      .poll(() => page.locator("#functions-table").textContent(), { timeout: VIEW_TIMEOUT_MS })
      .toContain(FUNCTION);
    await page.getByLabel("Search by name").fill("no-such-name");
    await page.getByText("No function's name contains “no-such-name”.").waitFor({ timeout: VIEW_TIMEOUT_MS });
  });

  it("pauses dispatch after confirmation, shows a new event queued as paused, and resumes it", async () => {
    const functionPath = `/v1/namespaces/${NAMESPACE}/functions/${FUNCTION}`;
    const dispatchPaused = async () => (await api.json<{ dispatchPaused: boolean }>(functionPath)).body.dispatchPaused;
    await page.goto(`${baseUrl}/console?view=function&ns=${NAMESPACE}&fn=${FUNCTION}`);
    const state = page.locator("#dispatch-state");
    const toggle = page.locator("#dispatch-toggle");
    await state.waitFor({ timeout: VIEW_TIMEOUT_MS });
    expect(await state.getAttribute("data-state")).toBe("running");
    expect(await toggle.textContent()).toBe("Pause dispatch");
    // Cancelling the confirmation changes nothing.
    await toggle.click();
    await page.locator("#confirm").getByRole("button", { name: "Cancel" }).click();
    expect(await dispatchPaused()).toBe(false);
    expect(await state.getAttribute("data-state")).toBe("running");

    await toggle.click();
    await page.locator("#confirm").getByRole("button", { name: "Pause dispatch" }).click();
    await expect.poll(() => state.getAttribute("data-state"), { timeout: VIEW_TIMEOUT_MS }).toBe("paused");
    expect(await toggle.textContent()).toBe("Resume dispatch");
    expect(await dispatchPaused()).toBe(true);
    // A fresh load shows what the API says.
    await page.reload();
    await expect.poll(() => state.getAttribute("data-state"), { timeout: VIEW_TIMEOUT_MS }).toBe("paused");
    await screenshot(page, "function-paused");

    // An event invoked meanwhile waits, its view saying why.
    const held = await api.invoke(NAMESPACE, FUNCTION, { runMs: 0 });
    await page.goto(`${baseUrl}/console?view=event&id=${held}`);
    const reason = page.locator("#event-queued-reason");
    await expect.poll(() => reason.getAttribute("data-reason"), { timeout: VIEW_TIMEOUT_MS }).toBe("paused");
    expect(await reason.textContent()).toContain("dispatch is paused");
    expect(await page.locator("#event-state .badge").textContent()).toBe("RUNNING");

    await page.goto(`${baseUrl}/console?view=function&ns=${NAMESPACE}&fn=${FUNCTION}`);
    await expect.poll(() => toggle.textContent(), { timeout: VIEW_TIMEOUT_MS }).toBe("Resume dispatch");
    await toggle.click();
    await page.locator("#confirm").getByRole("button", { name: "Resume dispatch" }).click();
    await expect.poll(() => state.getAttribute("data-state"), { timeout: VIEW_TIMEOUT_MS }).toBe("running");
    expect(await toggle.textContent()).toBe("Pause dispatch");
    expect(await dispatchPaused()).toBe(false);
    // The held event then runs.
    expect((await api.waitForEvent(held, undefined, RUN_TIMEOUT_MS)).status).toBe("FINISHED");
  });

  it("shows tags and progress in the event and the list, filters by tag, and renders their text as text", async () => {
    const reporter = `console-progress-${suffix}`;
    const created = await api.createFunction(NAMESPACE, {
      name: reporter,
      runtime: "Nodejs22",
      files: {
        "index.js": `exports.main_handler = async (event, context) => {
  context.progress(60, ${JSON.stringify(PROGRESS_MESSAGE)});
  await new Promise((resolve) => setTimeout(resolve, 1500));
  return { reported: true };
};\n`,
      },
      timeout: 30,
    });
    expect(created.status).toBe(201);
    // The tagged event is invoked from the console's invoke form; an untagged one beside it.
    await page.goto(`${baseUrl}/console?view=function&ns=${NAMESPACE}&fn=${reporter}`);
    await page.locator("#invoke-form").waitFor({ timeout: VIEW_TIMEOUT_MS });
    await page.locator("#invoke-tags").fill(TAGS_TEXT);
    await page.locator("#invoke-button").click();
    const link = page.locator("#invoked-request-id");
    await link.waitFor({ timeout: VIEW_TIMEOUT_MS });
    const tagged = (await link.textContent()) ?? "";
    const untagged = await api.invoke(NAMESPACE, reporter, {});
    const ended = await api.waitForEvent(tagged, undefined, RUN_TIMEOUT_MS);
    await api.waitForEvent(untagged, undefined, RUN_TIMEOUT_MS);
    expect(ended).toMatchObject({
      status: "FINISHED",
      tags: TAGS,
      progress: { percent: 60, message: PROGRESS_MESSAGE },
    });

    await page.goto(`${baseUrl}/console?view=event&id=${tagged}`);
    await page.locator("#event-progress").waitFor({ timeout: VIEW_TIMEOUT_MS });
    expect(await page.locator("#event-progress-percent").textContent()).toBe("60%");
    expect(await page.locator("#event-progress-message").textContent()).toBe(PROGRESS_MESSAGE);
    expect(await page.locator("#event-progress progress").getAttribute("value")).toBe("60");
    expect(await page.locator("#event-state .tag").allTextContents()).toEqual(
      Object.entries(TAGS).map(([key, value]) => `${key}=${value}`),
    );
    await assertNoInjection(page);

    // The list: a tags and a progress column; the tag filter from the form, into the URL.
    await page.goto(`${baseUrl}/console?view=events&ns=${NAMESPACE}&fn=${reporter}`);
    const rows = page.locator("#events-table tbody tr");
    await expect.poll(() => rows.count(), { timeout: VIEW_TIMEOUT_MS }).toBe(2);
    expect(await page.locator("#events-table thead th").allTextContents()).toEqual(
      expect.arrayContaining(["Tags", "Progress"]),
    );
    const taggedRow = page.locator(`#events-table tbody tr[data-request-id="${tagged}"]`);
    expect(await taggedRow.locator(".tag").allTextContents()).toContain("team=video");
    expect(await taggedRow.locator(".progress-cell").textContent()).toContain(PROGRESS_MESSAGE);
    await page.locator("#filter-tags").fill("team=video");
    await page.locator("#apply-filters").click();
    await expect.poll(() => new URL(page.url()).searchParams.get("tags")).toBe("team=video");
    await expect.poll(() => rows.count(), { timeout: VIEW_TIMEOUT_MS }).toBe(1);
    expect(await rows.first().getAttribute("data-request-id")).toBe(tagged);
    // A tag of the row is a link to the events carrying it.
    await taggedRow.locator(".tag", { hasText: "stage=" }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get("tags")).toBe(`stage=${TAGS.stage}`);
    await expect.poll(() => rows.count(), { timeout: VIEW_TIMEOUT_MS }).toBe(1);
    expect(await page.locator("#filter-tags").inputValue()).toBe(`stage=${TAGS.stage}`);
    await page.locator("#events-table").scrollIntoViewIfNeeded();
    await screenshot(page, "events-tags");
    // The StatusCode filter: 200 keeps both, 430 none.
    await page.goto(`${baseUrl}/console?view=events&ns=${NAMESPACE}&fn=${reporter}&statusCodes=430`);
    await page.getByText("No events match").waitFor({ timeout: VIEW_TIMEOUT_MS });
    expect(await page.locator("#filter-status-codes").inputValue()).toBe("430");
    await page.goto(`${baseUrl}/console?view=events&ns=${NAMESPACE}&fn=${reporter}&statusCodes=200`);
    await expect.poll(() => rows.count(), { timeout: VIEW_TIMEOUT_MS }).toBe(2);
    await assertNoInjection(page);
  });

  it("edits the configuration, and shows the refusal to delete while an event runs", async () => {
    await page.goto(`${baseUrl}/console?view=function&ns=${NAMESPACE}&fn=${FUNCTION}`);
    await page.locator("#edit-form").waitFor({ timeout: VIEW_TIMEOUT_MS });
    expect(await page.locator("#edit-async").isDisabled()).toBe(true);
    await page.locator("#edit-form").getByLabel("Timeout (s)").fill("150");
    await page.getByRole("button", { name: "Save configuration" }).click();
    await page.getByText("Configuration saved.").waitFor({ timeout: VIEW_TIMEOUT_MS });
    expect(
      (await api.json<{ timeout: number }>(`/v1/namespaces/${NAMESPACE}/functions/${FUNCTION}`)).body.timeout,
    ).toBe(150);

    const running = await api.invoke(NAMESPACE, FUNCTION, { runMs: 60_000 });
    // The refusal reads the event index: wait for the event's row there.
    await expect
      .poll(
        async () =>
          (
            await api.json<{ total: number }>(
              `/v1/namespaces/${NAMESPACE}/functions/${FUNCTION}/events?statuses=RUNNING&requestId=${running}`,
            )
          ).body.total,
        { timeout: RUN_TIMEOUT_MS },
      )
      .toBe(1);
    await page.locator("#delete-function").click();
    await page.locator("#confirm").getByRole("button", { name: "Delete" }).click();
    await expect
      .poll(() => page.locator(".notice.error").first().textContent(), { timeout: VIEW_TIMEOUT_MS })
      .toContain("Refused");
    const stillThere = await api.json(`/v1/namespaces/${NAMESPACE}/functions/${FUNCTION}`);
    expect(stillThere.status).toBe(200);
    await api.request(`/v1/events/${running}/terminate`, { method: "POST", body: "{}" });
    await api.waitForEvent(running);
  });

  it("shows a namespace-scoped key nothing of another namespace", async () => {
    const key = await api.json<{ secretId: string; secretKey: string }>("/v1/admin/credentials", {
      method: "POST",
      body: JSON.stringify({ namespaces: [SCOPED_NAMESPACE], description: "console e2e" }),
    });
    expect(key.status).toBe(201);
    const scoped = await newPage();
    try {
      await scoped.page.goto(`${baseUrl}/console`);
      // Signing in straight into the other namespace is refused in words.
      await signIn(scoped.page, key.body.secretId, key.body.secretKey, NAMESPACE);
      await expect
        .poll(() => scoped.page.locator("#sign-in-error").textContent(), { timeout: VIEW_TIMEOUT_MS })
        .toContain("not visible");
      await signIn(scoped.page, key.body.secretId, key.body.secretKey, SCOPED_NAMESPACE);
      await scoped.page.getByText("No functions in this namespace yet.").waitFor({ timeout: VIEW_TIMEOUT_MS });
      // A shared link into the other namespace: a clean notice, none of its functions or events.
      for (const url of [
        `/console?view=functions&ns=${NAMESPACE}`,
        `/console?view=events&ns=${NAMESPACE}&fn=${FUNCTION}`,
        `/console?view=event&id=${requestId}`,
      ]) {
        await scoped.page.goto(`${baseUrl}${url}`);
        await scoped.page.locator(".notice.error").first().waitFor({ timeout: VIEW_TIMEOUT_MS });
        const text = (await scoped.page.locator("#view").textContent()) ?? "";
        expect(text, url).toMatch(/not visible with these credentials|No such event is visible/);
        expect(await scoped.page.locator("#functions-table, #events-table, #event-log").count(), url).toBe(0);
      }
    } finally {
      await scoped.context.close();
    }
  });

  it("loaded nothing from outside the platform and reported no script error", () => {
    expect(foreign, "requests to other origins").toEqual([]);
    // The refused sign-in, the scoped key's refusals and the refused delete (409) are answers the
    // views show, not script errors;
    // the browser logs each failed request as a console error, which is all that may appear.
    expect(problems.filter((problem) => !/status of (401|404|409)/.test(problem))).toEqual([]);
  });
});
