// The isolate's cache of qualifier lookups on the invoke path (a published version's snapshot, an
// alias's routing), like FunctionRegistry.snapshot's: entries live FUNCTION_CACHE_TTL_MS and are
// forgotten at once when this isolate writes the function's versions or aliases.

/** Longest time an isolate serves a cached qualifier lookup (ms): the function cache's TTL. */
export const QUALIFIER_CACHE_TTL_MS = 2_000;
/** Most entries the cache holds; past it the oldest entry is dropped. */
export const MAX_QUALIFIER_CACHE_ENTRIES = 1_000;

const cache = new Map<string, { value: unknown; expiresAt: number }>();

function prefixOf(namespace: string, name: string): string {
  return `${namespace}/${name}/`;
}

/** The cached value of `key` for a function, or `load()`'s (cached; an absent value is cached too). */
export async function cachedQualifierLookup<T>(
  namespace: string,
  name: string,
  key: string,
  load: () => Promise<T>,
): Promise<T> {
  const fullKey = `${prefixOf(namespace, name)}${key}`;
  const hit = cache.get(fullKey);
  if (hit && hit.expiresAt > Date.now()) return hit.value as T;
  const value = await load();
  cache.delete(fullKey);
  cache.set(fullKey, { value, expiresAt: Date.now() + QUALIFIER_CACHE_TTL_MS });
  while (cache.size > MAX_QUALIFIER_CACHE_ENTRIES) {
    const oldest = cache.keys().next().value;
    if (oldest === undefined) break;
    cache.delete(oldest);
  }
  return value;
}

/** Forgets every cached lookup of a function (after a write to its versions, aliases or itself). */
export function forgetQualifiers(namespace: string, name: string): void {
  const prefix = prefixOf(namespace, name);
  for (const key of [...cache.keys()]) if (key.startsWith(prefix)) cache.delete(key);
}
