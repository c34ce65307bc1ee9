// Code packages read from an R2 object (SCF's Code.CosBucketName and Code.CosObjectName), for
// packages past the inline limit: up to MAX_OBJECT_CODE_PACKAGE_BYTES. Nothing is buffered whole:
// the zip checks read the object's tail with ranged gets (the central directory, see
// zip-directory.ts), the SHA-256 is computed streaming (crypto.DigestStream), and the copy into
// CODE_BUCKET streams as well. Every read names the ETag the object had when it was checked, so
// an object replaced meanwhile is refused rather than half-checked.
import { PlatformError } from "../shared/errors";
import { MAX_CODE_OBJECT_KEY_BYTES, MAX_CODE_PACKAGE_BYTES } from "./model";
import { inspectZipDirectory, locateZipDirectory, MAX_ZIP_UNCOMPRESSED_BYTES } from "./zip-directory";

/** Largest code package read from an R2 object (500 MiB, as SCF's COS code packages). */
export const MAX_OBJECT_CODE_PACKAGE_BYTES = 500 * 1024 * 1024;
/**
 * Largest total uncompressed size an R2 object package's central directory may declare (1 GiB;
 * inline packages keep MAX_ZIP_UNCOMPRESSED_BYTES). The agent enforces the same bound on the real
 * bytes while extracting (containers/runtime/agent/code-package.mjs MAX_UNPACKED_BYTES).
 */
export const MAX_OBJECT_ZIP_UNCOMPRESSED_BYTES = 1024 * 1024 * 1024;
/**
 * Largest central directory of an object package, with the end records and comment after it, in
 * bytes (16 MiB: MAX_ZIP_ENTRIES entries with names of ~1,600 bytes). Only these bytes are read
 * into memory.
 */
export const MAX_OBJECT_ZIP_DIRECTORY_BYTES = 16 * 1024 * 1024;
/**
 * Custom metadata of a package in CODE_BUCKET: the bytes it may unpack to, which the instance
 * names to the agent when it ships the package (MAX_ZIP_UNCOMPRESSED_BYTES for an inline package,
 * MAX_OBJECT_ZIP_UNCOMPRESSED_BYTES for one from an R2 object).
 */
export const UNPACK_LIMIT_METADATA = "maxUnpackedBytes";

/** The unpack limit of a stored package: its metadata, else the bound of its size's kind of package. */
export function unpackLimitOfStored(object: { size: number; customMetadata?: Record<string, string> }): number {
  const named = Number(object.customMetadata?.[UNPACK_LIMIT_METADATA]);
  if (Number.isSafeInteger(named) && named > 0) return Math.min(named, MAX_OBJECT_ZIP_UNCOMPRESSED_BYTES);
  // Stored before the metadata: an inline package is at most MAX_CODE_PACKAGE_BYTES.
  return object.size > MAX_CODE_PACKAGE_BYTES ? MAX_OBJECT_ZIP_UNCOMPRESSED_BYTES : MAX_ZIP_UNCOMPRESSED_BYTES;
}
/** Bytes of the tail read first to find the end record: the record, its longest comment, the ZIP64 locator. */
const TAIL_PROBE_BYTES = 22 + 0xffff + 20;

/** An R2 object holding a code package, in a bucket the namespace may read (see CodeBucketAccess). */
export interface ObjectCodeSource {
  bucket: R2Bucket;
  bucketName: string;
  key: string;
}

/**
 * The buckets a namespace may read code packages from, and their bindings: the layer above
 * (triggers/code-buckets.ts) decides, with the cos triggers' ownership rule. bucketFor throws
 * INVALID_PARAMETER for a bucket the namespace does not own, or a key it may not read there (in a
 * shared bucket, outside `<namespace>/`), with the same answer for both.
 */
export interface CodeBucketAccess {
  bucketFor(namespace: string, bucketName: string, key: string): R2Bucket;
}

/** How an object package is bounded; the defaults are the named constants above (tests lower them). */
export interface ObjectPackageLimits {
  maxBytes?: number;
  maxUncompressedBytes?: number;
}

/** A checked object package: its size, ETag and SHA-256 (hex). */
export interface CheckedObjectPackage {
  size: number;
  etag: string;
  sha256: string;
}

function objectNotFound(source: ObjectCodeSource): PlatformError {
  return new PlatformError(
    "CODE_OBJECT_NOT_FOUND",
    `code object ${JSON.stringify(source.key)} not found in bucket ${source.bucketName}`,
  );
}

/** R2 refused the key itself (too long, invalid): the caller's input, answered as not found. */
function isKeyRefusal(error: unknown): boolean {
  return /key|name/i.test(String(error)) && /invalid|too long|length|exceed/i.test(String(error));
}

/** A failure of the storage (not of the caller's input): a platform error, worth a retry. */
function storageFailed(source: ObjectCodeSource, action: string, error: unknown): PlatformError {
  console.warn(`${action} a code package from an object failed`, source.bucketName, String(error));
  return new PlatformError(
    "UNAVAILABLE",
    `${action} code object ${JSON.stringify(source.key)} in bucket ${source.bucketName} failed (a storage error: ${String(error).slice(0, 200)}); try again`,
  );
}

/** Runs an R2 read of the caller's object: key refusals are CODE_OBJECT_NOT_FOUND, others 5xx. */
async function readObject<T>(source: ObjectCodeSource, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof PlatformError) throw error;
    if (isKeyRefusal(error)) throw objectNotFound(source);
    throw storageFailed(source, "reading", error);
  }
}

function objectChanged(source: ObjectCodeSource): PlatformError {
  return new PlatformError(
    "INVALID_PARAMETER",
    `code object ${JSON.stringify(source.key)} in bucket ${source.bucketName} changed while it was read; try again`,
  );
}

/** The object's bytes from offset (length of them), only while it still has the ETag checked. */
async function readRange(source: ObjectCodeSource, etag: string, offset: number, length: number): Promise<Uint8Array> {
  return readObject(source, async () => {
    const object = await source.bucket.get(source.key, { range: { offset, length }, onlyIf: { etagMatches: etag } });
    if (!object) throw objectNotFound(source);
    if (!("body" in object)) throw objectChanged(source);
    return new Uint8Array(await object.arrayBuffer());
  });
}

/** The object's whole body as a stream, only while it still has the ETag checked. */
async function openBody(source: ObjectCodeSource, etag: string): Promise<ReadableStream<Uint8Array>> {
  return readObject(source, async () => {
    const object = await source.bucket.get(source.key, { onlyIf: { etagMatches: etag } });
    if (!object) throw objectNotFound(source);
    if (!("body" in object)) throw objectChanged(source);
    return object.body;
  });
}

/**
 * Checks an R2 object as a code package without holding it in memory: it exists (else
 * CODE_OBJECT_NOT_FOUND), is at most maxBytes (PAYLOAD_TOO_LARGE), is a zip whose central
 * directory passes inspectZipDirectory (INVALID_PARAMETER, the inline packages' errors), then its
 * SHA-256 streaming. Nothing is stored.
 */
export async function checkObjectPackage(
  source: ObjectCodeSource,
  limits: ObjectPackageLimits = {},
): Promise<CheckedObjectPackage> {
  const maxBytes = limits.maxBytes ?? MAX_OBJECT_CODE_PACKAGE_BYTES;
  // R2 keys are at most 1,024 bytes: a longer one (of multibyte characters) cannot name an object.
  if (new TextEncoder().encode(source.key).byteLength > MAX_CODE_OBJECT_KEY_BYTES) throw objectNotFound(source);
  const head = await readObject(source, () => source.bucket.head(source.key));
  if (!head) throw objectNotFound(source);
  if (head.size > maxBytes) {
    throw new PlatformError(
      "PAYLOAD_TOO_LARGE",
      `code object ${JSON.stringify(source.key)} is ${head.size} bytes, over the limit of ${maxBytes} bytes for a code package from an object`,
    );
  }
  const etag = head.etag;
  // The same first check as an inline package's: a local file header or an empty archive's end record.
  const magic = head.size >= 4 ? await readRange(source, etag, 0, 4) : new Uint8Array();
  const isZip = magic[0] === 0x50 && magic[1] === 0x4b && (magic[2] === 3 || magic[2] === 5);
  if (!isZip) throw new PlatformError("INVALID_PARAMETER", "code.zipFile is not a zip archive");
  const tailStart = Math.max(0, head.size - TAIL_PROBE_BYTES);
  const tail = await readRange(source, etag, tailStart, head.size - tailStart);
  const { directoryOffset } = locateZipDirectory(tail, tailStart);
  const windowStart = Math.min(directoryOffset, tailStart);
  if (head.size - windowStart > MAX_OBJECT_ZIP_DIRECTORY_BYTES) {
    throw new PlatformError(
      "INVALID_PARAMETER",
      `code.zipFile: the central directory is over ${MAX_OBJECT_ZIP_DIRECTORY_BYTES} bytes, over the limit`,
    );
  }
  const window = windowStart === tailStart ? tail : await readRange(source, etag, windowStart, head.size - windowStart);
  inspectZipDirectory(window, {
    start: windowStart,
    maxUncompressedBytes: limits.maxUncompressedBytes ?? MAX_OBJECT_ZIP_UNCOMPRESSED_BYTES,
  });
  const digest = new crypto.DigestStream("SHA-256");
  const body = await openBody(source, etag);
  // A read failing midway is the storage's failure (the object was fixed by its ETag): 5xx.
  await body.pipeTo(digest).catch((error: unknown) => {
    throw storageFailed(source, "reading", error);
  });
  const sha256 = [...new Uint8Array(await digest.digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return { size: head.size, etag, sha256 };
}

/**
 * Copies a checked object package into the code bucket under codeKey, streaming; R2 verifies the
 * SHA-256 as it stores, so an object replaced since the check is refused (INVALID_PARAMETER, as a
 * failed ETag precondition is). Any other failure is the storage's: UNAVAILABLE (503).
 */
export async function copyObjectPackage(
  source: ObjectCodeSource,
  checked: CheckedObjectPackage,
  codeBucket: R2Bucket,
  codeKey: string,
): Promise<void> {
  const body = await openBody(source, checked.etag);
  const sized = new FixedLengthStream(checked.size);
  // Aborted when the put fails: a put that never read the stream would leave the pipe waiting.
  const copying = new AbortController();
  const piped = body.pipeTo(sized.writable, { signal: copying.signal });
  try {
    await codeBucket.put(codeKey, sized.readable, {
      sha256: checked.sha256,
      customMetadata: { [UNPACK_LIMIT_METADATA]: String(MAX_OBJECT_ZIP_UNCOMPRESSED_BYTES) },
    });
  } catch (error) {
    copying.abort(error);
    await piped.catch(() => undefined);
    if (/sha-?256|checksum|digest/i.test(String(error))) {
      console.warn("a code package from an object changed while it was copied", source.bucketName, String(error));
      throw objectChanged(source);
    }
    throw storageFailed(source, "copying", error);
  }
  await piped.catch((error: unknown) => {
    throw storageFailed(source, "copying", error);
  });
}
