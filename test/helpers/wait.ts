// Waiting on an observable condition instead of sleeping a fixed time.

/** How often pollUntil reads again. */
const POLL_INTERVAL_MS = 100;

/**
 * Reads until done holds and returns that value; after timeoutMs it returns the last value read,
 * so that the caller's assertion on it fails with what was actually seen.
 */
export async function pollUntil<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}
