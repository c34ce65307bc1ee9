// The interactive API reference (/docs) in a real browser against the running platform: Debian's
// chromium, driven by playwright-core. The page must render the operations of /openapi.json with
// everything it loads coming from the platform itself (the machines running this suite are offline).
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Validator } from "@seriousme/openapi-schema-validator";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

const baseUrl = inject("baseUrl");

/** How long installing chromium may take (scripts/ensure-chromium.sh), in ms. */
const INSTALL_TIMEOUT_MS = 600_000;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Debian's chromium (scripts/ensure-chromium.sh installs it when missing). */
const CHROMIUM = "/usr/bin/chromium";
/** How long the page may take to load its script and render the document, in ms. */
const RENDER_TIMEOUT_MS = 60_000;

let browser: Browser | undefined;

beforeAll(async () => {
  // Installs Debian's chromium when it is missing (as root), as `npm start` does for docker.io.
  execFileSync("bash", [join(ROOT, "scripts", "ensure-chromium.sh")], {
    stdio: "inherit",
    timeout: INSTALL_TIMEOUT_MS,
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Running as root in a container: chromium's sandbox needs user namespaces it may not have.
    args: ["--no-sandbox"],
  });
}, INSTALL_TIMEOUT_MS + 60_000);

afterAll(async () => {
  await browser?.close();
});

// The validator reads its JSON Schemas from disk and compiles them to functions, which workerd does
// not allow: so the document of the running platform is validated here, in Node.
describe("GET /openapi.json", () => {
  it("validates as OpenAPI 3.1 and documents every REST path", async () => {
    const response = await fetch(`${baseUrl}/openapi.json`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(document.openapi).toBe("3.1.0");
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining(["/v1/namespaces/{namespace}/functions", "/v1/events/{requestId}", "/healthz"]),
    );
    const validator = new Validator();
    const result = await validator.validate(document);
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 1)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it("is refused by the validator when it breaks OpenAPI 3.1 (the check can fail)", async () => {
    const result = await new Validator().validate({ openapi: "3.1.0", info: { title: "no version" }, paths: {} });
    expect(result.valid).toBe(false);
  });
});

describe("GET /docs in a browser", () => {
  it("renders the operations of the OpenAPI document, loading nothing from outside the platform", async () => {
    const document = (await (await fetch(`${baseUrl}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { summary?: string }>>;
    };
    // The first group (Health) opens expanded with its operation; the others are listed by tag.
    const summary = document.paths["/healthz"]?.get?.summary;
    expect(summary).toBeTruthy();

    if (!browser) throw new Error("chromium did not start");
    const page = await browser.newPage();
    const origin = new URL(baseUrl).origin;
    const foreign: string[] = [];
    page.on("request", (request) => {
      const url = new URL(request.url());
      if (url.origin !== origin && url.protocol !== "data:" && url.protocol !== "blob:") foreign.push(request.url());
    });
    // What the page itself reports (script errors, refused loads): shown when it does not render.
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`);
    });
    const scriptStatus = page.waitForResponse((response) => response.url().endsWith("/docs/scalar.js"));
    const response = await page.goto(`${baseUrl}/docs`);
    expect(response?.status()).toBe(200);
    expect((await scriptStatus).status(), "the reference's script (/docs/scalar.js)").toBe(200);
    await expect
      .poll(
        async () =>
          page
            .getByText(summary as string)
            .first()
            .isVisible(),
        {
          timeout: RENDER_TIMEOUT_MS,
          message: `"${summary}" not shown; the page reported: ${JSON.stringify(problems)}`,
        },
      )
      .toBe(true);
    for (const tag of ["Functions", "Events", "Logs", "Tencent Cloud API 3.0"]) {
      expect(await page.getByText(tag, { exact: true }).first().isVisible(), `the ${tag} group`).toBe(true);
    }
    expect(foreign, "requests to other origins").toEqual([]);
    await page.close();
  });
});
