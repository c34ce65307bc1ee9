// A bounded set of places held by ids, each until its lease runs out or it is released: the waits
// of synchronous invocations (invoke-sync.ts, per function and isolate) and the callers waiting for
// one event's end (async-event-object.ts awaitEnd). A holder that vanishes without releasing its
// place (a dropped connection, a cancelled request, a timer that never fires) frees it when its
// lease lapses, so the count cannot leak.

/** Places held by ids, at most `capacity` at once; a place is held until its lease's end or its release. */
export class LeasedPlaces {
  /** Each holder's lease end (epoch ms). */
  private readonly leases = new Map<string, number>();

  constructor(readonly capacity: number) {}

  /**
   * Takes a place for `id` until `until`, or extends the one it holds (a lease is never shortened).
   * False, and nothing changes, when `id` holds none and every place is held.
   */
  hold(id: string, until: number, now: number): boolean {
    this.expire(now);
    const held = this.leases.get(id);
    if (held === undefined && this.leases.size >= this.capacity) return false;
    this.leases.set(id, Math.max(held ?? until, until));
    return true;
  }

  /** True while `id` holds a place. */
  holds(id: string, now: number): boolean {
    this.expire(now);
    return this.leases.has(id);
  }

  /** Frees `id`'s place (nothing when it holds none). */
  release(id: string): void {
    this.leases.delete(id);
  }

  /** Places held at `now`. */
  count(now: number): number {
    this.expire(now);
    return this.leases.size;
  }

  /** Frees the places whose lease ended. */
  private expire(now: number): void {
    for (const [id, until] of this.leases) {
      if (until <= now) this.leases.delete(id);
    }
  }
}
