// Code packages, cached by SHA-256 for the life of the container: verified against the hash, then
// extracted by extract.py under size, entry-count and time limits into a folder owned by root
// (files 0644, folders 0755), which handler processes can read but not change.
import { spawn } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SHA256_PATTERN } from "./validation.mjs";

/** Most bytes a package may unpack to, counted while writing (headers are not trusted). */
export const MAX_UNPACKED_BYTES = 256 * 1024 * 1024;
/** Most entries (files and folders) in a package. */
export const MAX_PACKAGE_ENTRIES = 10_000;
/** How long an extraction may take before it is killed and the package refused. */
export const EXTRACTION_TIMEOUT_MS = 60_000;
/** Longest refusal text kept from the extractor. */
const MAX_REFUSAL_CHARS = 1_000;

const EXTRACTOR = join(new URL(".", import.meta.url).pathname, "extract.py");

/** Caches code packages under one root folder. */
export class CodeStore {
  constructor(root) {
    this.root = root;
  }

  /** The folder of a package; only ever called with a validated hash. */
  directory(sha256) {
    if (!SHA256_PATTERN.test(sha256)) throw Object.assign(new Error("invalid code hash"), { status: 400 });
    return join(this.root, sha256);
  }

  has(sha256) {
    return existsSync(this.directory(sha256));
  }

  /** Verifies and extracts one package; answers the HTTP status and body for PUT /code/:sha256. */
  async store(sha256, zip) {
    const target = this.directory(sha256);
    const actual = createHash("sha256").update(zip).digest("hex");
    if (actual !== sha256) return { status: 400, body: { error: "sha256 mismatch", actual } };
    if (existsSync(target)) return { status: 200, body: { cached: true } };
    mkdirSync(this.root, { recursive: true, mode: 0o755 });
    const staging = join(this.root, `.staging-${randomUUID()}`);
    const zipPath = `${staging}.zip`;
    writeFileSync(zipPath, zip, { mode: 0o600 });
    try {
      const refusal = await extractPackage(zipPath, staging);
      if (refusal) return { status: 400, body: { error: refusal } };
      try {
        renameSync(staging, target);
      } catch (error) {
        // The same package was stored by a concurrent request meanwhile.
        if (existsSync(target)) return { status: 200, body: { cached: true } };
        throw error;
      }
      return { status: 201, body: { cached: false } };
    } finally {
      rmSync(zipPath, { force: true });
      rmSync(staging, { recursive: true, force: true });
    }
  }
}

/** Runs the extractor with its limits; resolves undefined on success, or why it refused. */
function extractPackage(zipPath, destination) {
  return new Promise((resolve) => {
    const child = spawn(
      "python3",
      [EXTRACTOR, zipPath, destination, String(MAX_UNPACKED_BYTES), String(MAX_PACKAGE_ENTRIES)],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      if (stderr.length < MAX_REFUSAL_CHARS) stderr = (stderr + chunk).slice(0, MAX_REFUSAL_CHARS);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, EXTRACTION_TIMEOUT_MS);
    child.on("error", (error) => {
      clearTimeout(timer);
      resolve(`code package could not be extracted: ${error.message}`);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (timedOut) resolve(`code package extraction took longer than ${EXTRACTION_TIMEOUT_MS} ms`);
      else if (code === 0) resolve(undefined);
      else resolve(stderr.trim() || `code package is not a valid zip (extractor exit ${code})`);
    });
  });
}
