// The namespace-wide bound on stored logs: bytes of R2 log segments per namespace, in D1.
import type { LogUsageLedger } from "./event-log-store";

/** Bytes of compressed log segments a namespace may hold in R2 by default (100 GiB). */
export const DEFAULT_NAMESPACE_LOG_LIMIT_BYTES = 100 * 1024 ** 3;
/** Largest bound the NAMESPACE_LOG_LIMIT_BYTES variable may set (100 TiB). */
const MAX_NAMESPACE_LOG_LIMIT_BYTES = 100 * 1024 ** 4;

/**
 * The NAMESPACE_LOG_LIMIT_BYTES variable as a bound: a whole number of bytes from 1 to 100 TiB;
 * absent or anything else means DEFAULT_NAMESPACE_LOG_LIMIT_BYTES.
 */
export function namespaceLogLimitBytes(value: string | undefined): number {
  if (value === undefined || !/^[1-9][0-9]{0,15}$/.test(value.trim())) return DEFAULT_NAMESPACE_LOG_LIMIT_BYTES;
  const bytes = Number(value.trim());
  return bytes <= MAX_NAMESPACE_LOG_LIMIT_BYTES ? bytes : DEFAULT_NAMESPACE_LOG_LIMIT_BYTES;
}

/**
 * One row per namespace (namespace_log_usage). A segment's bytes are added once its object is
 * written (a crash in between undercounts by that segment at most); they are taken back when the
 * event is deleted.
 */
export class NamespaceLogUsage implements LogUsageLedger {
  constructor(
    private readonly db: D1Database,
    private readonly limitBytes: number,
  ) {}

  async add(namespace: string, bytes: number): Promise<boolean> {
    const row = await this.db
      .prepare(
        `INSERT INTO namespace_log_usage (namespace, bytes) VALUES (?, ?)
         ON CONFLICT (namespace) DO UPDATE SET bytes = bytes + excluded.bytes RETURNING bytes`,
      )
      .bind(namespace, bytes)
      .first<{ bytes: number }>();
    return (row?.bytes ?? 0) >= this.limitBytes;
  }

  async release(namespace: string, bytes: number): Promise<void> {
    await this.db
      .prepare("UPDATE namespace_log_usage SET bytes = MAX(0, bytes - ?) WHERE namespace = ?")
      .bind(bytes, namespace)
      .run();
  }
}
