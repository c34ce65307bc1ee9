// Code packages, cached by SHA-256 in the container: verified against the hash, then extracted by
// extract.py under size, entry-count and time limits into a folder owned by root (files 0644,
// folders 0755), which handler processes can read but not change. The cache keeps at most
// MAX_CACHED_PACKAGES packages (the most recently used, never one a running execution uses), and a
// package is accepted only while the disk has room for it (507 otherwise).
import { spawn } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statfsSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { httpError } from "./http.mjs";
import { SHA256_PATTERN } from "./validation.mjs";

/**
 * Most bytes a package may unpack to, counted while writing (headers are not trusted): 1 GiB, the
 * Worker's bound for packages from an R2 object (functions/code-from-object.ts
 * MAX_OBJECT_ZIP_UNCOMPRESSED_BYTES). The Worker names each package's own bound in the
 * UNPACK_LIMIT_HEADER of PUT /code (256 MiB for an inline package); the agent applies the lower one.
 */
export const MAX_UNPACKED_BYTES = 1024 * 1024 * 1024;
/** Request header of PUT /code naming the package's unpack limit in bytes (worker/instances/agent-client.ts). */
export const UNPACK_LIMIT_HEADER = "x-afp-max-unpacked-bytes";
/**
 * Most packages kept extracted: the one just installed and the one used before it (an instance
 * may ship the next event's package while the last one's is still wanted); a package a running
 * execution uses is kept besides.
 */
export const MAX_CACHED_PACKAGES = 2;
/**
 * Free disk kept beyond what a package needs (its zip and its unpack limit) before it is accepted:
 * 64 MiB for the handlers' spool and temporary files. AGENT_CODE_DISK_RESERVE_BYTES overrides it.
 */
export const CODE_DISK_RESERVE_BYTES = Number(process.env.AGENT_CODE_DISK_RESERVE_BYTES ?? 64 * 1024 * 1024);
/** Most entries (files and folders) in a package. */
export const MAX_PACKAGE_ENTRIES = 10_000;
/** How long an extraction may take before it is killed and the package refused. */
export const EXTRACTION_TIMEOUT_MS = 60_000;
/** Longest refusal text kept from the extractor. */
const MAX_REFUSAL_CHARS = 1_000;

const EXTRACTOR = join(new URL(".", import.meta.url).pathname, "extract.py");

/** The unpack limit a PUT /code request names (UNPACK_LIMIT_HEADER), never above MAX_UNPACKED_BYTES. */
export function unpackLimitOf(request) {
  const named = Number(request.headers[UNPACK_LIMIT_HEADER]);
  return Number.isSafeInteger(named) && named > 0 ? Math.min(named, MAX_UNPACKED_BYTES) : MAX_UNPACKED_BYTES;
}

/** Caches code packages under one root folder; inUse() answers the hashes not to evict. */
export class CodeStore {
  constructor(root, inUse = () => []) {
    this.root = root;
    this.inUse = inUse;
  }

  /** The folder of a package; only ever called with a validated hash. */
  directory(sha256) {
    if (!SHA256_PATTERN.test(sha256)) throw Object.assign(new Error("invalid code hash"), { status: 400 });
    return join(this.root, sha256);
  }

  /** True when the package is cached; marks it used (the eviction keeps the most recently used). */
  has(sha256) {
    const target = this.directory(sha256);
    if (!existsSync(target)) return false;
    try {
      const now = new Date();
      utimesSync(target, now, now);
    } catch {
      // evicted meanwhile: still answered as cached once; the execution start checks again
    }
    return true;
  }

  /**
   * Removes cached packages beyond the `keepOthers` most recently used, never `keep` nor one in
   * use; answers how many were removed.
   */
  evict(keep, keepOthers) {
    if (!existsSync(this.root)) return 0;
    const protectedHashes = new Set([keep, ...this.inUse()]);
    const cached = readdirSync(this.root)
      .filter((name) => SHA256_PATTERN.test(name) && !protectedHashes.has(name))
      .map((name) => {
        try {
          return { name, used: statSync(join(this.root, name)).mtimeMs };
        } catch {
          return undefined;
        }
      })
      .filter((entry) => entry !== undefined)
      .sort((a, b) => b.used - a.used);
    const removed = cached.slice(keepOthers);
    for (const { name } of removed) rmSync(join(this.root, name), { recursive: true, force: true });
    return removed.length;
  }

  /** Free bytes of the code root's file system (for an unprivileged user). */
  freeBytes() {
    const stats = statfsSync(this.root);
    return Number(stats.bavail) * Number(stats.bsize);
  }

  /**
   * Refuses (507) a package the disk has no room for: its zip and its unpack limit, plus
   * CODE_DISK_RESERVE_BYTES; other cached packages are evicted first when that makes room.
   */
  ensureRoom(sha256, zipBytes, unpackLimit) {
    const needed = zipBytes + unpackLimit + CODE_DISK_RESERVE_BYTES;
    if (this.freeBytes() >= needed) return;
    this.evict(sha256, 0);
    const free = this.freeBytes();
    if (free >= needed) return;
    throw httpError(
      507,
      `not enough disk space in the container for the code package: ${free} bytes free, ${needed} needed (its ${zipBytes}-byte zip, up to ${unpackLimit} bytes unpacked, a ${CODE_DISK_RESERVE_BYTES}-byte reserve)`,
    );
  }

  /** Verifies and extracts one package; answers the HTTP status and body for PUT /code/:sha256. */
  async store(sha256, zip, unpackLimit = MAX_UNPACKED_BYTES) {
    const target = this.directory(sha256);
    const actual = createHash("sha256").update(zip).digest("hex");
    if (actual !== sha256) return { status: 400, body: { error: "sha256 mismatch", actual } };
    if (this.has(sha256)) return { status: 200, body: { cached: true } };
    mkdirSync(this.root, { recursive: true, mode: 0o755 });
    this.ensureRoom(sha256, zip.length, unpackLimit);
    const staging = join(this.root, `.staging-${randomUUID()}`);
    const zipPath = `${staging}.zip`;
    writeFileSync(zipPath, zip, { mode: 0o600 });
    return this.install(zipPath, staging, target, unpackLimit);
  }

  /**
   * As store, from a request body of at most limitBytes (413 past it) streamed to disk and hashed
   * on the way: a package of hundreds of MiB never sits in memory. unpackLimit: the request's
   * (unpackLimitOf). A package already cached is answered before its body is read.
   */
  async storeFrom(sha256, request, limitBytes, unpackLimit = MAX_UNPACKED_BYTES) {
    const target = this.directory(sha256);
    const declared = Number(request.headers["content-length"]);
    if (Number.isFinite(declared) && declared > limitBytes) throw httpError(413, `body over ${limitBytes} bytes`);
    mkdirSync(this.root, { recursive: true, mode: 0o755 });
    if (!this.has(sha256)) this.ensureRoom(sha256, Number.isFinite(declared) ? declared : limitBytes, unpackLimit);
    const staging = join(this.root, `.staging-${randomUUID()}`);
    const zipPath = `${staging}.zip`;
    const hash = createHash("sha256");
    let size = 0;
    const counted = new Transform({
      transform(chunk, _encoding, callback) {
        size += chunk.length;
        if (size > limitBytes) return callback(httpError(413, `body over ${limitBytes} bytes`));
        hash.update(chunk);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(request, counted, createWriteStream(zipPath, { mode: 0o600 }));
    } catch (error) {
      rmSync(zipPath, { force: true });
      throw error;
    }
    const actual = hash.digest("hex");
    if (actual !== sha256 || existsSync(target)) {
      rmSync(zipPath, { force: true });
      if (actual !== sha256) return { status: 400, body: { error: "sha256 mismatch", actual } };
      return { status: 200, body: { cached: true } };
    }
    return this.install(zipPath, staging, target, unpackLimit);
  }

  /**
   * Extracts the zip at zipPath into staging (at most unpackLimit bytes), then moves it to target
   * and evicts packages past MAX_CACHED_PACKAGES; both temporaries go.
   */
  async install(zipPath, staging, target, unpackLimit = MAX_UNPACKED_BYTES) {
    try {
      const refusal = await extractPackage(zipPath, staging, unpackLimit);
      if (refusal) return { status: 400, body: { error: refusal } };
      try {
        renameSync(staging, target);
      } catch (error) {
        // The same package was stored by a concurrent request meanwhile.
        if (existsSync(target)) return { status: 200, body: { cached: true } };
        throw error;
      }
      this.evict(target.slice(this.root.length + 1), MAX_CACHED_PACKAGES - 1);
      return { status: 201, body: { cached: false } };
    } finally {
      rmSync(zipPath, { force: true });
      rmSync(staging, { recursive: true, force: true });
    }
  }
}

/** Runs the extractor with its limits; resolves undefined on success, or why it refused. */
function extractPackage(zipPath, destination, unpackLimit) {
  return new Promise((resolve) => {
    const child = spawn(
      "python3",
      [EXTRACTOR, zipPath, destination, String(unpackLimit), String(MAX_PACKAGE_ENTRIES)],
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
