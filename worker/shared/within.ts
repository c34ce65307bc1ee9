// A bounded wait on an optional answer: what a read adds from another object (why a queued event
// waits, whether a function's dispatch is paused) must neither fail nor stall the read it decorates.

/**
 * The promise's value if it settles within `ms`; `fallback` if it rejects or takes longer (the
 * promise is left to settle on its own; its rejection is absorbed).
 */
export async function answerWithin<T, F>(answer: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  const settled = answer.catch((error: unknown) => {
    console.warn("an optional answer failed", String(error));
    return fallback;
  });
  try {
    return await Promise.race([settled, late]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}
