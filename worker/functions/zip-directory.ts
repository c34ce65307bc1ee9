// Reads a zip archive's central directory (and ZIP64 records) without extracting anything, and
// refuses archives that would be a zip bomb or escape the code folder when extracted. Pure: the
// container enforces the real bytes again at extraction, since a directory can lie about
// uncompressed sizes in ways only inflating reveals.
import { PlatformError } from "../shared/errors";

/** Largest total uncompressed size the central directory may declare (256 MiB). */
export const MAX_ZIP_UNCOMPRESSED_BYTES = 256 * 1024 * 1024;
/** Most entries (files and folders) one code package may hold. */
export const MAX_ZIP_ENTRIES = 10_000;
/** Largest uncompressed/compressed ratio of one entry (deflate reaches ~1,000 on zeros). */
export const MAX_ZIP_ENTRY_RATIO = 200;
/**
 * Entries this small (uncompressed, 1 MiB) are exempt from the ratio: a small, very regular file
 * (a lock file, a blank template) is harmless, and their sum is bounded by the total size anyway.
 */
export const ZIP_RATIO_SMALL_ENTRY_BYTES = 1024 * 1024;

/** What the central directory says about an archive. */
export interface ZipDirectorySummary {
  entries: number;
  uncompressedBytes: number;
  compressedBytes: number;
}

/** One entry as the central directory declares it. */
export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
}

const EOCD_SIGNATURE = 0x06054b50;
const EOCD_SIZE = 22;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const ZIP64_EOCD_MIN_SIZE = 56;
const CENTRAL_HEADER_SIGNATURE = 0x02014b50;
const CENTRAL_HEADER_SIZE = 46;
const LOCAL_HEADER_SIGNATURE = 0x04034b50;
const LOCAL_HEADER_SIZE = 30;
const ZIP64_EXTRA_ID = 0x0001;
/** Longest archive comment (the EOCD's comment length is 16 bits). */
const MAX_COMMENT_BYTES = 0xffff;
const U16_MAX = 0xffff;
const nameDecoder = new TextDecoder();
const U32_MAX = 0xffffffff;
/** Compression methods: stored (no compression). */
const METHOD_STORED = 0;

function refuse(message: string): PlatformError {
  return new PlatformError("INVALID_PARAMETER", `code.zipFile: ${message}`);
}

/**
 * Bounds-checked little-endian reads over the archive, or over a window of it: `bytes` are the
 * archive's bytes from offset `start` to its end (`length`), as read from an R2 object's tail.
 * Offsets are the archive's; a read before the window is refused as a read outside the archive.
 */
class Reader {
  private readonly view: DataView;
  readonly length: number;

  constructor(
    readonly bytes: Uint8Array,
    readonly start = 0,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.length = start + bytes.byteLength;
  }

  /** True when the archive's bytes from offset on (length of them) are in this window. */
  has(offset: number, length: number): boolean {
    return offset >= this.start && offset + length <= this.length;
  }

  u16(offset: number): number {
    this.need(offset, 2);
    return this.view.getUint16(offset - this.start, true);
  }

  u32(offset: number): number {
    this.need(offset, 4);
    return this.view.getUint32(offset - this.start, true);
  }

  /** A 64-bit size or offset; refused when it cannot be a position in this archive's world. */
  u64(offset: number): number {
    this.need(offset, 8);
    const value = this.view.getBigUint64(offset - this.start, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw refuse("a ZIP64 size or offset is out of range");
    return Number(value);
  }

  slice(offset: number, length: number): Uint8Array {
    this.need(offset, length);
    return this.bytes.subarray(offset - this.start, offset - this.start + length);
  }

  private need(offset: number, length: number): void {
    if (!this.has(offset, length)) {
      throw refuse("the archive is truncated or its directory points outside it");
    }
  }
}

/** The end-of-central-directory fields that matter, ZIP64 values applied. */
interface DirectoryEnd {
  entries: number;
  directorySize: number;
  directoryOffset: number;
  /** Where the directory must end: the start of the (ZIP64) end record. */
  directoryLimit: number;
}

/**
 * Finds the end-of-central-directory record: the last one whose comment reaches exactly the
 * archive end. An archive with another end-record signature after it (inside its comment) is
 * refused as ambiguous: readers that take the last signature they find (Python's zipfile, which
 * extracts in the container) would read another directory than the one checked here.
 */
function findEnd(reader: Reader): number {
  const lowest = Math.max(reader.start, reader.length - EOCD_SIZE - MAX_COMMENT_BYTES);
  let lastSignature: number | undefined;
  for (let offset = reader.length - 4; offset >= lowest; offset -= 1) {
    if (reader.u32(offset) !== EOCD_SIGNATURE) continue;
    lastSignature ??= offset;
    if (offset + EOCD_SIZE > reader.length) continue;
    if (offset + EOCD_SIZE + reader.u16(offset + 20) !== reader.length) continue;
    if (lastSignature !== offset) {
      throw refuse("the archive comment holds another end-of-central-directory record: ambiguous archive");
    }
    return offset;
  }
  throw refuse("no end-of-central-directory record: not a zip archive, or truncated");
}

/** Reads the end record, and the ZIP64 end record when the classic one defers to it. */
function readEnd(reader: Reader): DirectoryEnd {
  const end = findEnd(reader);
  const disk = reader.u16(end + 4);
  const directoryDisk = reader.u16(end + 6);
  const diskEntries = reader.u16(end + 8);
  let entries = reader.u16(end + 10);
  let directorySize = reader.u32(end + 12);
  let directoryOffset = reader.u32(end + 16);
  let directoryLimit = end;
  const deferred = entries === U16_MAX || directorySize === U32_MAX || directoryOffset === U32_MAX;
  const locator = end - ZIP64_LOCATOR_SIZE;
  if (reader.has(locator, ZIP64_LOCATOR_SIZE) && reader.u32(locator) === ZIP64_LOCATOR_SIGNATURE) {
    const zip64End = reader.u64(locator + 8);
    if (zip64End + ZIP64_EOCD_MIN_SIZE > locator || reader.u32(zip64End) !== ZIP64_EOCD_SIGNATURE) {
      throw refuse("the ZIP64 end-of-central-directory locator points to no ZIP64 record");
    }
    if (reader.u32(zip64End + 16) !== 0 || reader.u32(zip64End + 20) !== 0) {
      throw refuse("multi-disk archives are not supported");
    }
    entries = reader.u64(zip64End + 32);
    if (reader.u64(zip64End + 24) !== entries) throw refuse("multi-disk archives are not supported");
    directorySize = reader.u64(zip64End + 40);
    directoryOffset = reader.u64(zip64End + 48);
    directoryLimit = zip64End;
  } else if (deferred) {
    throw refuse("the end record defers to a ZIP64 record that is missing");
  } else if (disk !== 0 || directoryDisk !== 0 || diskEntries !== entries) {
    throw refuse("multi-disk archives are not supported");
  }
  if (directoryOffset + directorySize > directoryLimit) {
    throw refuse("the central directory's declared size and offset do not fit in the archive");
  }
  // No gap between the directory and its end record: Python's zipfile (the container's extractor)
  // reads the directory at the end record's position less its size, shifting every offset by the
  // gap ("concat" data before the archive), so a gap lets it read another directory than this one.
  if (directoryOffset + directorySize !== directoryLimit) {
    throw refuse("bytes between the central directory and its end record: ambiguous archive");
  }
  return { entries, directorySize, directoryOffset, directoryLimit };
}

/** The ZIP64 extended-information extra field values an entry defers to (0xFFFFFFFF fields). */
function applyZip64Extra(
  reader: Reader,
  extraStart: number,
  extraLength: number,
  entry: { compressedSize: number; uncompressedSize: number; localHeaderOffset: number },
): void {
  const needUncompressed = entry.uncompressedSize === U32_MAX;
  const needCompressed = entry.compressedSize === U32_MAX;
  const needOffset = entry.localHeaderOffset === U32_MAX;
  if (!needUncompressed && !needCompressed && !needOffset) return;
  for (let at = extraStart; at + 4 <= extraStart + extraLength; ) {
    const id = reader.u16(at);
    const size = reader.u16(at + 2);
    if (at + 4 + size > extraStart + extraLength) break;
    if (id === ZIP64_EXTRA_ID) {
      let field = at + 4;
      const fieldEnd = field + size;
      const next = (): number => {
        if (field + 8 > fieldEnd) throw refuse("an entry's ZIP64 extra field is too short");
        const value = reader.u64(field);
        field += 8;
        return value;
      };
      if (needUncompressed) entry.uncompressedSize = next();
      if (needCompressed) entry.compressedSize = next();
      if (needOffset) entry.localHeaderOffset = next();
      return;
    }
    at += 4 + size;
  }
  throw refuse("an entry defers its sizes to a ZIP64 extra field that is missing");
}

/** Refuses names that are absolute, carry a drive letter or a NUL, or have a `..` segment. */
export function checkEntryName(name: string): void {
  if (name.length === 0) throw refuse("an entry has an empty name");
  if (name.includes("\0")) throw refuse(`entry ${JSON.stringify(name)}: NUL in the name`);
  if (name.startsWith("/") || name.startsWith("\\") || /^[A-Za-z]:/.test(name)) {
    throw refuse(`entry ${JSON.stringify(name)}: absolute paths are not allowed`);
  }
  if (name.split(/[/\\]/).includes("..")) {
    throw refuse(`entry ${JSON.stringify(name)}: '..' path segments are not allowed`);
  }
}

/** Refuses an entry whose declared sizes are impossible or whose ratio is a bomb's. */
function checkEntrySizes(entry: ZipEntry): void {
  const label = `entry ${JSON.stringify(entry.name)}`;
  if (entry.method === METHOD_STORED && entry.compressedSize !== entry.uncompressedSize) {
    throw refuse(`${label}: stored without compression but its two declared sizes differ`);
  }
  if (entry.uncompressedSize <= ZIP_RATIO_SMALL_ENTRY_BYTES) return;
  if (entry.compressedSize === 0 || entry.uncompressedSize / entry.compressedSize > MAX_ZIP_ENTRY_RATIO) {
    throw refuse(
      `${label} expands ${entry.compressedSize} bytes to ${entry.uncompressedSize} bytes, over the compression ratio limit of ${MAX_ZIP_ENTRY_RATIO} (a zip bomb?)`,
    );
  }
}

/** Reads one central directory header at `at`; returns the entry and where the next one starts. */
function readEntry(reader: Reader, at: number, directoryEnd: number): { entry: ZipEntry; next: number } {
  if (at + CENTRAL_HEADER_SIZE > directoryEnd || reader.u32(at) !== CENTRAL_HEADER_SIGNATURE) {
    throw refuse("the central directory is malformed (an entry header is missing)");
  }
  const nameLength = reader.u16(at + 28);
  const extraLength = reader.u16(at + 30);
  const commentLength = reader.u16(at + 32);
  const next = at + CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength;
  if (next > directoryEnd) throw refuse("the central directory is malformed (an entry overruns it)");
  const name = nameDecoder.decode(reader.slice(at + CENTRAL_HEADER_SIZE, nameLength));
  const sizes = {
    compressedSize: reader.u32(at + 20),
    uncompressedSize: reader.u32(at + 24),
    localHeaderOffset: reader.u32(at + 42),
  };
  applyZip64Extra(reader, at + CENTRAL_HEADER_SIZE + nameLength, extraLength, sizes);
  return { entry: { name, method: reader.u16(at + 10), ...sizes }, next };
}

/**
 * Refuses an entry whose data is not where the directory says, before the directory. In a window
 * (an R2 object's tail) the local header is outside it: only its position and the declared
 * compressed size are checked; the extractor in the container reads the local headers again.
 */
function checkEntryData(reader: Reader, entry: ZipEntry, directoryOffset: number): void {
  const at = entry.localHeaderOffset;
  if (!reader.has(at, LOCAL_HEADER_SIZE)) {
    if (at + LOCAL_HEADER_SIZE + entry.compressedSize > directoryOffset) {
      throw refuse(`entry ${JSON.stringify(entry.name)}: its declared compressed size runs past the archive data`);
    }
    return;
  }
  if (at + LOCAL_HEADER_SIZE > directoryOffset || reader.u32(at) !== LOCAL_HEADER_SIGNATURE) {
    throw refuse(`entry ${JSON.stringify(entry.name)}: no local header where the directory points`);
  }
  const dataStart = at + LOCAL_HEADER_SIZE + reader.u16(at + 26) + reader.u16(at + 28);
  if (dataStart + entry.compressedSize > directoryOffset) {
    throw refuse(`entry ${JSON.stringify(entry.name)}: its declared compressed size runs past the archive data`);
  }
}

/** Where an archive's central directory is and where it must end (see locateZipDirectory). */
export interface ZipDirectoryLocation {
  /** Offset of the central directory's first header. */
  directoryOffset: number;
  /** Offset of the first end record (ZIP64 or classic) after the directory. */
  directoryLimit: number;
}

/**
 * Finds the central directory from the archive's tail: `tail` holds the archive's bytes from offset
 * `start` to its end. Throws INVALID_PARAMETER when the tail holds no valid end record.
 */
export function locateZipDirectory(tail: Uint8Array, start: number): ZipDirectoryLocation {
  const end = readEnd(new Reader(tail, start));
  return { directoryOffset: end.directoryOffset, directoryLimit: end.directoryLimit };
}

/** How inspectZipDirectory reads and bounds an archive. */
export interface ZipInspectOptions {
  /** The archive's offset of `bytes[0]`, when `bytes` are its tail (from the directory on); 0 by default. */
  start?: number;
  /** Largest total uncompressed size allowed; MAX_ZIP_UNCOMPRESSED_BYTES by default. */
  maxUncompressedBytes?: number;
}

/**
 * Checks a zip archive's central directory: well formed and consistent with its end record, at most
 * MAX_ZIP_ENTRIES entries declaring at most MAX_ZIP_UNCOMPRESSED_BYTES (or the options' bound) in
 * total, no entry over MAX_ZIP_ENTRY_RATIO (beyond ZIP_RATIO_SMALL_ENTRY_BYTES), every name
 * relative and inside the code folder. Throws INVALID_PARAMETER naming the problem.
 */
export function inspectZipDirectory(bytes: Uint8Array, options: ZipInspectOptions = {}): ZipDirectorySummary {
  const maxUncompressedBytes = options.maxUncompressedBytes ?? MAX_ZIP_UNCOMPRESSED_BYTES;
  const reader = new Reader(bytes, options.start ?? 0);
  const end = readEnd(reader);
  if (end.entries > MAX_ZIP_ENTRIES) {
    throw refuse(`${end.entries} entries, over the limit of ${MAX_ZIP_ENTRIES}`);
  }
  const directoryEnd = end.directoryOffset + end.directorySize;
  let at = end.directoryOffset;
  let uncompressedBytes = 0;
  let compressedBytes = 0;
  for (let index = 0; index < end.entries; index += 1) {
    const { entry, next } = readEntry(reader, at, directoryEnd);
    checkEntryName(entry.name);
    checkEntrySizes(entry);
    checkEntryData(reader, entry, end.directoryOffset);
    uncompressedBytes += entry.uncompressedSize;
    compressedBytes += entry.compressedSize;
    if (uncompressedBytes > maxUncompressedBytes) {
      throw refuse(`the files expand to more than ${maxUncompressedBytes} bytes, over the limit`);
    }
    at = next;
  }
  if (at !== directoryEnd) {
    throw refuse("the central directory's size does not match its entries (the directory lies)");
  }
  return { entries: end.entries, uncompressedBytes, compressedBytes };
}
