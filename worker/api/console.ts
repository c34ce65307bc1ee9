import { Hono } from "hono";
import { PlatformError } from "../shared/errors";

/** Path of the web console (its page; its files are under CONSOLE_PATH/). */
export const CONSOLE_PATH = "/console";
/** The console's page in the ASSETS static assets (wrangler.toml [assets]: public/). */
const CONSOLE_PAGE_ASSET = "/console/index.html";
/** A console file's name: lower-case words, one or more folders deep, with a known extension. */
const CONSOLE_FILE = /^\/console\/(?:[a-z0-9-]+\/)*[a-z0-9-]+\.(js|css|svg)$/;
/** The content type of each extension the console serves. */
const CONTENT_TYPES: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  html: "text/html; charset=utf-8",
};

/**
 * The console's policy: scripts, styles, images and requests from this origin only, no inline
 * script or style, nothing framed, no form sent elsewhere. Credentials typed into the console
 * never leave the platform's origin.
 */
export const CONSOLE_CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
  "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** The bindings the console reads: the static assets holding its files, when bound. */
type ConsoleEnv = { Bindings: Env & { ASSETS?: Fetcher } };

/** Reads one file of the console from the static assets, or answers why it cannot. */
async function consoleAsset(env: ConsoleEnv["Bindings"], url: string, asset: string): Promise<Response> {
  if (!env.ASSETS) throw new PlatformError("UNAVAILABLE", "the console is not deployed (no ASSETS static assets)");
  const answer = await env.ASSETS.fetch(new URL(asset, url));
  if (answer.status === 404) throw new PlatformError("NOT_FOUND", `no console file ${asset}`);
  if (!answer.ok) throw new PlatformError("UNAVAILABLE", `the console's file ${asset} answered ${answer.status}`);
  const extension = asset.slice(asset.lastIndexOf(".") + 1);
  const headers = new Headers({
    "content-type": CONTENT_TYPES[extension] ?? "application/octet-stream",
    // Revalidated on every load (the ETag makes it cheap): a new deploy is seen at once.
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  });
  const etag = answer.headers.get("etag");
  if (etag) headers.set("etag", etag);
  if (extension === "html") {
    headers.set("content-security-policy", CONSOLE_CONTENT_SECURITY_POLICY);
    headers.set("x-frame-options", "DENY");
  }
  return new Response(answer.body, { status: 200, headers });
}

/**
 * The web console, without credentials (the page asks for them and sends them with each API call):
 * its page at /console and its files (plain HTML, CSS and JavaScript modules, no build step) from
 * the Worker's static assets. Nothing it loads comes from another origin.
 */
export const consoleRoutes = new Hono<ConsoleEnv>()
  .get(CONSOLE_PATH, (c) => consoleAsset(c.env, c.req.url, CONSOLE_PAGE_ASSET))
  .get(`${CONSOLE_PATH}/`, (c) => c.redirect(CONSOLE_PATH, 301))
  .get(`${CONSOLE_PATH}/*`, (c) => {
    if (!CONSOLE_FILE.test(c.req.path)) throw new PlatformError("NOT_FOUND", `no console file ${c.req.path}`);
    return consoleAsset(c.env, c.req.url, c.req.path);
  });
