// The handler's progress (pure rules): `context.progress(percent, message)` in the handler, bounded
// and coalesced by the runtime agent (worker/contract/agent-records.ts), relayed by the instance to
// the event, which keeps only the latest report (shown in its status, its list row and its live-log
// stream). The event index is not written on every report: see progressIndexDueAt.
import {
  MAX_PROGRESS_MESSAGE_CHARS,
  MAX_PROGRESS_PERCENT,
  MIN_PROGRESS_INTERVAL_MS,
  PROGRESS_TRUNCATED_MARKER,
} from "../contract/agent-records";

export { MAX_PROGRESS_MESSAGE_CHARS, MAX_PROGRESS_PERCENT, MIN_PROGRESS_INTERVAL_MS } from "../contract/agent-records";

/**
 * Shortest interval between two event index (D1) writes an event makes for its progress (5 s): a
 * report owes a write due this long after it (or sooner when one is owed already), which carries the
 * latest progress then; the index write at the end carries the final progress.
 */
export const PROGRESS_INDEX_INTERVAL_MS = 5_000;

/** The latest progress an event keeps: percent (0 to 100), message, when (epoch ms), its record's seq. */
export interface EventProgress {
  percent: number;
  message: string;
  at: number;
  /** The seq of the agent record it came from: a resumed relay's repeat (or an older one) is ignored. */
  seq: number;
}

/** The progress as the status, the list and the live stream show it. */
export interface PublicProgress {
  percent: number;
  message: string;
  at: string;
}

/** One relayed progress record (see AgentProgressRecord). */
export interface ProgressReport {
  percent: number;
  message: string;
  seq: number;
}

/** A percent within 0..MAX_PROGRESS_PERCENT (NaN: 0). */
function clampPercent(percent: number): number {
  if (Number.isNaN(percent)) return 0;
  return Math.min(MAX_PROGRESS_PERCENT, Math.max(0, percent));
}

/** A message of at most MAX_PROGRESS_MESSAGE_CHARS, cut with PROGRESS_TRUNCATED_MARKER. */
function boundMessage(message: string): string {
  if (message.length <= MAX_PROGRESS_MESSAGE_CHARS) return message;
  let kept = message.slice(0, MAX_PROGRESS_MESSAGE_CHARS - PROGRESS_TRUNCATED_MARKER.length);
  if (/[\uD800-\uDBFF]$/.test(kept)) kept = kept.slice(0, -1);
  return `${kept}${PROGRESS_TRUNCATED_MARKER}`;
}

/**
 * What withProgress reads and writes of an event's state (event-machine.ts's EventState has these
 * fields; named here so that this module needs nothing of the machine, which uses it).
 */
interface ProgressHolder {
  phase: string;
  instanceId?: string;
  version: number;
  progress?: EventProgress;
}

/**
 * The state with a progress report from `instanceId` applied at `now`, or undefined when it is
 * ignored: the event is not running (a report before the start or after the end), another instance
 * sent it, or it is not newer (by seq) than the progress kept. The version grows, so that the index
 * write carrying it is never refused as older, nor an older one applied over it.
 */
export function withProgress<State extends ProgressHolder>(
  state: State,
  instanceId: string,
  report: ProgressReport,
  now: number,
): State | undefined {
  if (state.phase !== "running" || state.instanceId !== instanceId) return undefined;
  if (state.progress !== undefined && report.seq <= state.progress.seq) return undefined;
  return {
    ...state,
    version: state.version + 1,
    progress: {
      percent: clampPercent(report.percent),
      message: boundMessage(report.message),
      at: now,
      seq: report.seq,
    },
  };
}

/** The public view of the kept progress: null before any report. */
export function publicProgress(progress: EventProgress | undefined): PublicProgress | null {
  if (!progress) return null;
  return { percent: progress.percent, message: progress.message, at: new Date(progress.at).toISOString() };
}

/** The progress columns of an index row (events.progress_*): null when the row has none. */
export function progressOfRow(row: {
  progressPercent?: number | null;
  progressMessage?: string | null;
  progressAt?: number | null;
}): PublicProgress | null {
  if (row.progressPercent === null || row.progressPercent === undefined) return null;
  if (row.progressAt === null || row.progressAt === undefined) return null;
  return {
    percent: row.progressPercent,
    message: row.progressMessage ?? "",
    at: new Date(row.progressAt).toISOString(),
  };
}

/**
 * When the index write a progress report owes is due: PROGRESS_INDEX_INTERVAL_MS after `now` when
 * none is owed, else the owed write's own time (a write already due carries this report too; a
 * failing one keeps its backoff). Reports never bring a write forward, so an event writes its
 * progress to the index at most once per interval; the end's write is made at once and carries the
 * final progress.
 */
export function progressIndexDueAt(now: number, owedRetryAt: number | undefined): number {
  return owedRetryAt ?? now + PROGRESS_INDEX_INTERVAL_MS;
}

/**
 * How long a progress report arriving at `now` waits before the event stores it: 0 when the last
 * stored one (at `storedAt`) is at least MIN_PROGRESS_INTERVAL_MS old, else the rest of that
 * interval. The agent never reports faster; the event does not trust it to: reports closer together
 * are kept in memory only (the latest winning) and stored together once the interval has passed.
 */
export function progressStoreDelay(now: number, storedAt: number | undefined): number {
  if (storedAt === undefined) return 0;
  return Math.max(0, storedAt + MIN_PROGRESS_INTERVAL_MS - now);
}
