// The event's transition timeline (pure): what happened to it and when, from its acceptance to its
// end, kept on its state, bounded, shown in its status and streamed to its live-log followers.

/** What a timeline entry records. */
export const TIMELINE_KINDS = [
  "accepted",
  "queued",
  "instance-assigned",
  "container-starting",
  "container-warm",
  "running",
  "terminate-requested",
  "signal-delivered",
  /** The function's deadline warning: SIGTERM sent to the handler N seconds before its timeout. */
  "deadline-warning",
  "ended",
  /** Stands for entries left out past MAX_TIMELINE_ENTRIES (see addTimelineEntries). */
  "truncated",
] as const;
/** What a timeline entry records. */
export type TimelineKind = (typeof TIMELINE_KINDS)[number];

/** One stored entry: when (epoch ms), what, and a short detail. */
export interface TimelineEntry {
  at: number;
  kind: TimelineKind;
  detail?: string;
  /** Only on the `truncated` marker: how many entries it stands for. */
  dropped?: number;
}

/** One entry as the status and the live-log stream show it. */
export interface PublicTimelineEntry {
  at: string;
  kind: TimelineKind;
  detail: string | null;
}

/**
 * Most entries an event's timeline keeps, the truncation marker included (64). An event has about
 * eight; only a long wait in the queue (one `queued` entry per re-dispatch) can pass it.
 */
export const MAX_TIMELINE_ENTRIES = 64;
/**
 * Entries kept from the start once the timeline is full (the acceptance and the first steps); after
 * them one `truncated` marker stands for the entries left out, then the latest entries follow.
 */
export const TIMELINE_HEAD_ENTRIES = 8;
/** Longest detail of an entry, in characters (details are the platform's own short texts). */
export const MAX_TIMELINE_DETAIL_CHARS = 200;

/** Kinds that happen once per event (per claim for the container kinds): a repeat is not recorded. */
const ONCE_KINDS: ReadonlySet<TimelineKind> = new Set([
  "accepted",
  "instance-assigned",
  "running",
  "signal-delivered",
  "deadline-warning",
  "ended",
]);
const CONTAINER_KINDS: ReadonlySet<TimelineKind> = new Set(["container-starting", "container-warm"]);

/** An entry with its detail bounded (no detail when none is given). */
export function timelineEntry(kind: TimelineKind, at: number, detail?: string): TimelineEntry {
  return detail === undefined ? { at, kind } : { at, kind, detail: detail.slice(0, MAX_TIMELINE_DETAIL_CHARS) };
}

/** How many entries were ever recorded (those kept, less the marker, plus those it stands for). */
export function timelineTotal(timeline: readonly TimelineEntry[] | undefined): number {
  let total = 0;
  for (const entry of timeline ?? []) total += entry.kind === "truncated" ? (entry.dropped ?? 0) : 1;
  return total;
}

/**
 * True when `entry` would repeat what the timeline already says (a redelivered report): a kind that
 * happens once is already there (with the same detail for instance-assigned: a claim by another
 * instance is another step), or a container entry is already there since the latest assignment.
 */
function repeats(timeline: readonly TimelineEntry[], entry: TimelineEntry): boolean {
  if (CONTAINER_KINDS.has(entry.kind)) {
    for (let i = timeline.length - 1; i >= 0; i--) {
      const kind = timeline[i]?.kind;
      if (kind === "instance-assigned") return false;
      if (kind !== undefined && CONTAINER_KINDS.has(kind)) return true;
    }
    return false;
  }
  if (!ONCE_KINDS.has(entry.kind)) return false;
  return timeline.some(
    (kept) => kept.kind === entry.kind && (entry.kind !== "instance-assigned" || kept.detail === entry.detail),
  );
}

/**
 * The timeline with `entries` appended in order, each unless it repeats one already there (see
 * repeats). Past MAX_TIMELINE_ENTRIES the first TIMELINE_HEAD_ENTRIES stay, one `truncated` marker
 * (at the time of the latest entry it stands for) counts the entries left out, and the latest
 * entries fill the rest. Answers the same array when nothing was added.
 */
export function addTimelineEntries(
  timeline: readonly TimelineEntry[] | undefined,
  entries: readonly TimelineEntry[],
): readonly TimelineEntry[] {
  const before = timeline ?? [];
  let next: TimelineEntry[] | undefined;
  for (const entry of entries) {
    const current: readonly TimelineEntry[] = next ?? before;
    if (repeats(current, entry)) continue;
    next = [...current, entry];
    if (next.length > MAX_TIMELINE_ENTRIES) next = truncated(next);
  }
  return next ?? before;
}

/**
 * The timeline with a step that happened before the event's end but may be reported after it (the
 * instance's answer that SIGTERM was delivered can come after the handler's end): placed before a
 * trailing `ended` entry, at the end's time at the latest; appended otherwise (see addTimelineEntries).
 */
export function addTimelineEntryBeforeEnd(
  timeline: readonly TimelineEntry[] | undefined,
  entry: TimelineEntry,
): readonly TimelineEntry[] {
  const ended = timeline?.at(-1);
  if (!timeline || ended?.kind !== "ended") return addTimelineEntries(timeline, [entry]);
  const added = addTimelineEntries(timeline.slice(0, -1), [{ ...entry, at: Math.min(entry.at, ended.at) }]);
  return timelineTotal(added) === timelineTotal(timeline) - 1 ? timeline : [...added, ended];
}

/** A timeline one entry over the bound, brought back to MAX_TIMELINE_ENTRIES (see addTimelineEntries). */
function truncated(timeline: TimelineEntry[]): TimelineEntry[] {
  const marker = timeline[TIMELINE_HEAD_ENTRIES];
  const hasMarker = marker?.kind === "truncated";
  // With a marker, the oldest entry after it is left out; without one, the two oldest after the
  // head are (the marker takes the place of one of them).
  const leftOutThrough = TIMELINE_HEAD_ENTRIES + 1;
  const leftOut = timeline[leftOutThrough];
  if (!leftOut) return timeline;
  const dropped = hasMarker ? (marker.dropped ?? 0) + 1 : 2;
  const nextMarker: TimelineEntry = {
    at: leftOut.at,
    kind: "truncated",
    detail: `${dropped} entries left out`,
    dropped,
  };
  return [...timeline.slice(0, TIMELINE_HEAD_ENTRIES), nextMarker, ...timeline.slice(leftOutThrough + 1)];
}

/**
 * The entries `after` has that `before` had not (the latest ones, in order): what a transition
 * added, for the live followers.
 */
export function newTimelineEntries(
  before: readonly TimelineEntry[] | undefined,
  after: readonly TimelineEntry[] | undefined,
): TimelineEntry[] {
  const added = timelineTotal(after) - timelineTotal(before);
  if (added <= 0 || !after) return [];
  return after.slice(-added).filter((entry) => entry.kind !== "truncated");
}

/** The entry as the status and the stream show it. */
export function publicTimelineEntry(entry: TimelineEntry): PublicTimelineEntry {
  return { at: new Date(entry.at).toISOString(), kind: entry.kind, detail: entry.detail ?? null };
}
