/**
 * A stable shard number of a text among `count` shards: FNV-1a of its characters, modulo `count`
 * (0 for one shard or fewer). Pure, so that the end-to-end tests can pick names by it too.
 */
export function stableShard(text: string, count: number): number {
  if (count <= 1) return 0;
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % count;
}
