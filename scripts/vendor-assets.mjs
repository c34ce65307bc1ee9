#!/usr/bin/env node
// Copies the third-party browser files the Worker serves into public/vendor/ (gitignored), the
// Worker's static assets folder (wrangler.toml [assets]): Scalar's standalone bundle for /docs.
// Runs on `npm install` (postinstall), before `wrangler dev` (scripts/start.mjs) and before a deploy,
// so a fresh clone serves /docs after `npm install`. Idempotent; exits 1 when the bundle is missing.
import { copyFileSync, existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** What is copied: source in node_modules → destination under public/. */
const FILES = [["node_modules/@scalar/api-reference/dist/browser/standalone.js", "public/vendor/scalar/standalone.js"]];

for (const [from, to] of FILES) {
  const source = join(root, from);
  const target = join(root, to);
  if (!existsSync(source)) {
    process.stderr.write(`[vendor-assets] ${from} is missing: run \`npm install\` first\n`);
    process.exit(1);
  }
  if (
    existsSync(target) &&
    statSync(target).size === statSync(source).size &&
    statSync(target).mtimeMs >= statSync(source).mtimeMs
  ) {
    continue;
  }
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(source, target);
}
