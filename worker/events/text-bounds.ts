// Cutting texts to a byte budget with a visible marker, for bounded stored and returned values.

const encoder = new TextEncoder();

/** UTF-8 length of a text, in bytes. */
export function utf8Length(text: string): number {
  return encoder.encode(text).byteLength;
}

/** The marker that ends a cut text: how many characters (UTF-16 code units) were removed. */
export function truncationMarker(removedChars: number): string {
  return `…[truncated ${removedChars} characters]`;
}

/** Room kept for the marker: its longest form (a 16-digit count) in UTF-8. */
const MARKER_RESERVE_BYTES = utf8Length(truncationMarker(10 ** 15));

/**
 * The text itself when it fits in `maxBytes` of UTF-8, otherwise its longest prefix (never cutting
 * a character in two) followed by truncationMarker, the whole within `maxBytes`.
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  // A UTF-16 code unit is at most 3 bytes of UTF-8: short texts need no encoding to be sure.
  if (text.length * 3 <= maxBytes || utf8Length(text) <= maxBytes) return text;
  const budget = Math.max(0, maxBytes - MARKER_RESERVE_BYTES);
  // encodeInto writes whole characters only; `read` is how many code units fitted.
  const { read } = encoder.encodeInto(text, new Uint8Array(budget));
  return `${text.slice(0, read)}${truncationMarker(text.length - read)}`;
}
