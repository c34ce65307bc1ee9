import { describe, expect, it } from "vitest";
import {
  inspectZipDirectory,
  locateZipDirectory,
  MAX_ZIP_ENTRIES,
  MAX_ZIP_ENTRY_RATIO,
  MAX_ZIP_UNCOMPRESSED_BYTES,
  ZIP_RATIO_SMALL_ENTRY_BYTES,
} from "../../worker/functions/zip-directory";
import { PlatformError } from "../../worker/shared/errors";
import { zipFiles } from "../helpers/zip";

const encoder = new TextEncoder();

/** One entry of a hand-crafted archive: its stored bytes and what the directory declares. */
interface CraftedEntry {
  name: string;
  data: Uint8Array;
  /** 0 stored, 8 deflate. */
  method?: number;
  /** Declared sizes (default: the data's length for both). */
  compressedSize?: number;
  uncompressedSize?: number;
  /** Declare sizes and offset through a ZIP64 extra field. */
  zip64?: boolean;
}

/** Tampering with the end records. */
interface CraftOptions {
  declaredEntries?: number;
  directorySizeDelta?: number;
  /** Write ZIP64 end records (with the classic record deferring to them). */
  zip64End?: boolean;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Builds an archive whose directory says exactly what the entries declare, true or not. */
function craftZip(entries: CraftedEntry[], options: CraftOptions = {}): Uint8Array {
  const locals: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = encoder.encode(entry.name);
    const compressed = entry.compressedSize ?? entry.data.length;
    const uncompressed = entry.uncompressedSize ?? entry.data.length;
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(8, entry.method ?? 0, true);
    local.setUint16(26, name.length, true);
    locals.push(new Uint8Array(local.buffer), name, entry.data);
    const header = new DataView(new ArrayBuffer(46));
    header.setUint32(0, 0x02014b50, true);
    header.setUint16(10, entry.method ?? 0, true);
    let extra = new Uint8Array(0);
    if (entry.zip64) {
      header.setUint32(20, 0xffffffff, true);
      header.setUint32(24, 0xffffffff, true);
      header.setUint32(42, 0xffffffff, true);
      const field = new DataView(new ArrayBuffer(28));
      field.setUint16(0, 0x0001, true);
      field.setUint16(2, 24, true);
      field.setBigUint64(4, BigInt(uncompressed), true);
      field.setBigUint64(12, BigInt(compressed), true);
      field.setBigUint64(20, BigInt(offset), true);
      extra = new Uint8Array(field.buffer);
    } else {
      header.setUint32(20, compressed, true);
      header.setUint32(24, uncompressed, true);
      header.setUint32(42, offset, true);
    }
    header.setUint16(28, name.length, true);
    header.setUint16(30, extra.length, true);
    central.push(new Uint8Array(header.buffer), name, extra);
    offset += 30 + name.length + entry.data.length;
  }
  const directory = concat(central);
  const count = options.declaredEntries ?? entries.length;
  const size = directory.length + (options.directorySizeDelta ?? 0);
  const tail: Uint8Array[] = [];
  if (options.zip64End) {
    const zip64End = new DataView(new ArrayBuffer(56));
    zip64End.setUint32(0, 0x06064b50, true);
    zip64End.setBigUint64(4, 44n, true);
    zip64End.setBigUint64(24, BigInt(count), true);
    zip64End.setBigUint64(32, BigInt(count), true);
    zip64End.setBigUint64(40, BigInt(size), true);
    zip64End.setBigUint64(48, BigInt(offset), true);
    const locator = new DataView(new ArrayBuffer(20));
    locator.setUint32(0, 0x07064b50, true);
    locator.setBigUint64(8, BigInt(offset + directory.length), true);
    locator.setUint32(16, 1, true);
    tail.push(new Uint8Array(zip64End.buffer), new Uint8Array(locator.buffer));
  }
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, options.zip64End ? 0xffff : count, true);
  end.setUint16(10, options.zip64End ? 0xffff : count, true);
  end.setUint32(12, options.zip64End ? 0xffffffff : size, true);
  end.setUint32(16, options.zip64End ? 0xffffffff : offset, true);
  tail.push(new Uint8Array(end.buffer));
  return concat([...locals, directory, ...tail]);
}

/** Raw deflate of the bytes, as a zip's method 8 stores them. */
async function deflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The message of the INVALID_PARAMETER error the inspection throws (fails the test otherwise). */
function refusal(bytes: Uint8Array): string {
  try {
    inspectZipDirectory(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(PlatformError);
    expect((error as PlatformError).code).toBe("INVALID_PARAMETER");
    return (error as PlatformError).message;
  }
  throw new Error("the archive was accepted");
}

describe("zip central directory inspection", () => {
  it("accepts an ordinary package and reports its entries and sizes", () => {
    const summary = inspectZipDirectory(zipFiles({ "index.js": "exports.main_handler = 1;", "lib/a.js": "x" }));
    expect(summary).toEqual({ entries: 2, uncompressedBytes: 26, compressedBytes: 26 });
  });

  it("accepts an empty archive", () => {
    expect(inspectZipDirectory(craftZip([]))).toMatchObject({ entries: 0 });
  });

  it("accepts a deflated entry of ordinary ratio and one small, very regular file", async () => {
    const text = encoder.encode(Array.from({ length: 4000 }, (_, i) => `line ${i * 7919} of text\n`).join(""));
    const small = new Uint8Array(64 * 1024);
    const archive = craftZip([
      { name: "data.txt", method: 8, data: await deflate(text), uncompressedSize: text.length },
      { name: "blank.bin", method: 8, data: await deflate(small), uncompressedSize: small.length },
    ]);
    expect(inspectZipDirectory(archive).entries).toBe(2);
  });

  it("refuses a classic bomb: one entry of highly compressible zeros", async () => {
    const zeros = new Uint8Array(16 * 1024 * 1024);
    const compressed = await deflate(zeros);
    expect(zeros.length / compressed.length).toBeGreaterThan(MAX_ZIP_ENTRY_RATIO);
    const message = refusal(
      craftZip([{ name: "zeros.bin", method: 8, data: compressed, uncompressedSize: zeros.length }]),
    );
    expect(message).toContain(`compression ratio limit of ${MAX_ZIP_ENTRY_RATIO}`);
  });

  it("refuses an entry just over the ratio once past the small-file allowance", () => {
    const compressed = new Uint8Array(10_000);
    const uncompressedSize = Math.max(ZIP_RATIO_SMALL_ENTRY_BYTES + 1, compressed.length * MAX_ZIP_ENTRY_RATIO + 1);
    expect(refusal(craftZip([{ name: "a.bin", method: 8, data: compressed, uncompressedSize }]))).toContain("ratio");
  });

  it("refuses a directory declaring more than the total uncompressed limit", () => {
    const entries = Array.from({ length: 3 }, (_, i) => ({
      name: `part${i}.bin`,
      method: 8,
      data: new Uint8Array(1024 * 1024),
      uncompressedSize: 100 * 1024 * 1024,
    }));
    expect(refusal(craftZip(entries))).toContain(`more than ${MAX_ZIP_UNCOMPRESSED_BYTES} bytes`);
  });

  it("refuses more entries than the limit", () => {
    const entries = Array.from({ length: MAX_ZIP_ENTRIES + 1 }, (_, i) => ({ name: `f${i}`, data: new Uint8Array(0) }));
    expect(refusal(craftZip(entries))).toContain(`over the limit of ${MAX_ZIP_ENTRIES}`);
  });

  it("refuses a directory that lies about its entry count or its size", () => {
    const entries = [{ name: "a.js", data: encoder.encode("a") }];
    expect(refusal(craftZip(entries, { declaredEntries: 2 }))).toContain("malformed");
    expect(
      refusal(craftZip([...entries, { name: "b.js", data: encoder.encode("b") }], { declaredEntries: 1 })),
    ).toContain("lies");
    expect(refusal(craftZip(entries, { directorySizeDelta: 100 }))).toMatch(/do not fit|lies|malformed/);
  });

  it("refuses an entry whose declared compressed size runs past the data (to fake a low ratio)", () => {
    const archive = craftZip([
      {
        name: "zeros.bin",
        method: 8,
        data: new Uint8Array(100),
        compressedSize: 50_000_000,
        uncompressedSize: 200_000_000,
      },
    ]);
    expect(refusal(archive)).toContain("runs past the archive data");
  });

  it("refuses a stored entry whose two sizes differ", () => {
    const archive = craftZip([{ name: "a.bin", data: new Uint8Array(10), uncompressedSize: 2_000_000 }]);
    expect(refusal(archive)).toContain("stored without compression");
  });

  it("refuses absolute names and '..' segments", () => {
    for (const name of ["/etc/passwd", "\\windows\\x", "C:/x", "../x.js", "a/../../x.js", "a\\..\\x"]) {
      expect(refusal(craftZip([{ name, data: encoder.encode("x") }]))).toContain(JSON.stringify(name));
    }
    expect(inspectZipDirectory(craftZip([{ name: "a/..b/c..d.js", data: encoder.encode("x") }])).entries).toBe(1);
  });

  it("refuses a truncated archive and bytes that are not a zip", () => {
    const whole = zipFiles({ "index.js": "x" });
    expect(refusal(whole.subarray(0, whole.length - 5))).toContain("end-of-central-directory");
    expect(refusal(whole.subarray(0, 10))).toContain("end-of-central-directory");
    expect(refusal(encoder.encode("hello, not a zip at all"))).toContain("end-of-central-directory");
  });

  it("refuses an archive whose comment holds another end record (readers would disagree on the directory)", () => {
    const whole = zipFiles({ "index.js": "x" });
    const realEnd = whole.length - 22;
    // A fake end record, its own comment length not reaching the end: this checker would skip it,
    // while a reader that takes the last signature it finds (Python's zipfile) would use it.
    const fake = whole.slice(realEnd);
    new DataView(fake.buffer).setUint16(20, 5, true);
    const crafted = new Uint8Array(whole.length + fake.length);
    crafted.set(whole);
    crafted.set(fake, whole.length);
    new DataView(crafted.buffer).setUint16(realEnd + 20, fake.length, true);
    expect(refusal(crafted)).toContain("ambiguous");
    // The same archive with an ordinary comment is fine.
    const commented = crafted.slice();
    commented.fill(0x20, whole.length);
    expect(inspectZipDirectory(commented)).toMatchObject({ entries: 1 });
  });

  it("refuses bytes between the central directory and its end record (Python would read another directory)", async () => {
    // The review's proof of concept (/tmp/r13/mk.py): a small file `a`, then a bomb `b`, then two
    // directories of one entry each of the same length. The end record names the first (at its
    // declared offset), with a gap before the end record; Python's zipfile reads the directory at
    // the end record's position less its size (the second), shifting offsets by the gap: it
    // extracts the bomb this checker never saw.
    const zeros = new Uint8Array(4 * 1024 * 1024);
    const bombData = await deflate(zeros);
    const small = craftZip([{ name: "aaaa.js", data: encoder.encode("exports.x=1") }]);
    const bomb = craftZip([{ name: "bbbb.js", method: 8, data: bombData, uncompressedSize: zeros.length }]);
    const localOf = (archive: Uint8Array, dataLength: number) => archive.subarray(0, 30 + 7 + dataLength);
    const directoryOf = (archive: Uint8Array, dataLength: number) =>
      archive.slice(30 + 7 + dataLength, archive.length - 22);
    const aLocal = concat([localOf(small, 11), new Uint8Array(64)]);
    const bLocal = localOf(bomb, bombData.length);
    const firstDirectory = directoryOf(small, 11);
    const secondDirectory = directoryOf(bomb, bombData.length);
    // The second directory points at `b` less the gap (its length): Python adds the gap back.
    new DataView(secondDirectory.buffer).setUint32(42, aLocal.length - firstDirectory.length, true);
    const end = new DataView(new ArrayBuffer(22));
    end.setUint32(0, 0x06054b50, true);
    end.setUint16(8, 1, true);
    end.setUint16(10, 1, true);
    end.setUint32(12, firstDirectory.length, true);
    end.setUint32(16, aLocal.length + bLocal.length, true);
    const crafted = concat([aLocal, bLocal, firstDirectory, secondDirectory, new Uint8Array(end.buffer)]);
    expect(refusal(crafted)).toContain("ambiguous");
    // The same gap read from an object's tail is refused as well.
    expect(() => inspectZipDirectory(crafted.subarray(aLocal.length), { start: aLocal.length })).toThrow(/ambiguous/);
  });

  it("reads ZIP64 end records and entry extra fields, and applies the same limits", async () => {
    const ok = craftZip([{ name: "a.js", data: encoder.encode("abc"), zip64: true }], { zip64End: true });
    expect(inspectZipDirectory(ok)).toEqual({ entries: 1, uncompressedBytes: 3, compressedBytes: 3 });
    const zeros = new Uint8Array(8 * 1024 * 1024);
    const bomb = craftZip(
      [{ name: "z.bin", method: 8, data: await deflate(zeros), uncompressedSize: zeros.length, zip64: true }],
      { zip64End: true },
    );
    expect(refusal(bomb)).toContain("ratio");
    const huge = craftZip(
      [{ name: "z.bin", method: 8, data: new Uint8Array(4096), uncompressedSize: 2 ** 40, zip64: true }],
      { zip64End: true },
    );
    expect(refusal(huge)).toMatch(/ratio|more than/);
  });

  it("refuses a ZIP64 locator that points nowhere", () => {
    const archive = craftZip([{ name: "a.js", data: encoder.encode("abc") }], { zip64End: true });
    // Point the locator (the 20 bytes before the 22-byte end record) past the archive.
    const view = new DataView(archive.buffer, archive.byteOffset, archive.byteLength);
    view.setBigUint64(archive.length - 22 - 20 + 8, BigInt(archive.length), true);
    expect(refusal(archive)).toMatch(/ZIP64|truncated/);
  });
});

describe("zip central directory inspection of an archive's tail (an R2 object's)", () => {
  /** The archive's bytes from its central directory on, as code-from-object.ts reads them. */
  function tailOf(archive: Uint8Array): { window: Uint8Array; start: number } {
    const probe = Math.max(0, archive.length - 1024);
    const { directoryOffset } = locateZipDirectory(archive.subarray(probe), probe);
    return { window: archive.subarray(directoryOffset), start: directoryOffset };
  }

  it("reports what the whole archive reports, classic and ZIP64", () => {
    const padding = "x".repeat(50_000);
    for (const archive of [
      zipFiles({ "index.js": "exports.main_handler = 1;", "pad.txt": padding }),
      craftZip([{ name: "a.js", data: encoder.encode(padding), zip64: true }], { zip64End: true }),
    ]) {
      const { window, start } = tailOf(archive);
      expect(start).toBeGreaterThan(50_000);
      expect(inspectZipDirectory(window, { start })).toEqual(inspectZipDirectory(archive));
    }
  });

  it("still refuses names, sizes running past the data and a lower uncompressed bound", () => {
    const lying = craftZip([
      { name: "pad.bin", data: new Uint8Array(4096) },
      { name: "z.bin", method: 8, data: new Uint8Array(100), compressedSize: 50_000_000, uncompressedSize: 1000 },
    ]);
    const lyingTail = tailOf(lying);
    expect(() => inspectZipDirectory(lyingTail.window, { start: lyingTail.start })).toThrow(
      /runs past the archive data/,
    );
    const escaping = tailOf(craftZip([{ name: "../x.js", data: encoder.encode("1") }]));
    expect(() => inspectZipDirectory(escaping.window, { start: escaping.start })).toThrow(/'\.\.' path segments/);
    const ok = tailOf(zipFiles({ "a.txt": "y".repeat(2000) }));
    expect(() => inspectZipDirectory(ok.window, { start: ok.start, maxUncompressedBytes: 1000 })).toThrow(
      /more than 1000 bytes/,
    );
  });

  it("refuses a window that starts after the directory", () => {
    const archive = zipFiles({ "index.js": "exports.main_handler = 1;" });
    const { window, start } = tailOf(archive);
    expect(() => inspectZipDirectory(window.subarray(10), { start: start + 10 })).toThrow(PlatformError);
  });
});
