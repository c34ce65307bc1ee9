// The web console's page and files (worker/api/console.ts), served from the static assets with a
// strict policy and without credentials; nothing else of the assets folder is reachable through it.
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CONSOLE_CONTENT_SECURITY_POLICY } from "../../worker/api/console";

const ORIGIN = "https://platform.test";

describe.skipIf(!("ASSETS" in env))("GET /console", () => {
  it("serves the page with a policy allowing this origin's scripts only, no inline script", async () => {
    const response = await SELF.fetch(`${ORIGIN}/console`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/html");
    expect(response.headers.get("content-security-policy")).toBe(CONSOLE_CONTENT_SECURITY_POLICY);
    expect(CONSOLE_CONTENT_SECURITY_POLICY).toContain("script-src 'self';");
    expect(CONSOLE_CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-inline|unsafe-eval|https?:|\*/);
    expect(response.headers.get("x-frame-options")).toBe("DENY");
    const html = await response.text();
    expect(html).toContain('<script type="module" src="/console/app.js"></script>');
    // Every script of the page is a file of its own: no inline script the policy would refuse.
    expect(html.match(/<script[^>]*>/g)?.every((tag) => tag.includes(" src="))).toBe(true);
  });

  it("serves its modules and styles with their types, and redirects /console/ to the page", async () => {
    const script = await SELF.fetch(`${ORIGIN}/console/views/events.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(script.headers.get("x-content-type-options")).toBe("nosniff");
    const style = await SELF.fetch(`${ORIGIN}/console/console.css`);
    expect(style.headers.get("content-type")).toBe("text/css; charset=utf-8");
    const slash = await SELF.fetch(`${ORIGIN}/console/`, { redirect: "manual" });
    expect(slash.status).toBe(301);
    expect(slash.headers.get("location")).toBe("/console");
  });

  it("answers 404 for anything but a console file: traversal, other folders, other types, unknown files", async () => {
    for (const target of [
      "/console/../wrangler.toml",
      "/console/..%2fvendor%2fscalar%2fstandalone.js",
      "/console/index.html",
      "/console/nothing.js",
      "/console/App.js",
      "/vendor/scalar/standalone.js",
    ]) {
      const response = await SELF.fetch(`${ORIGIN}${target}`);
      expect(response.status, target).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("NOT_FOUND");
    }
  });
});
