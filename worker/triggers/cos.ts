// The cos trigger, on R2 event notifications: TriggerName is the R2 bucket's name, one that
// COS_TRIGGER_BUCKETS gives the trigger's namespace (never the platform's own buckets); the bucket's
// notifications (`wrangler r2 bucket notification create <bucket> --queue afp-r2-events`) arrive
// on the queue R2_EVENTS_QUEUE, and each notification whose action, key prefix and suffix match an
// enabled trigger becomes one event in SCF's COS shape (invoke type COS). A redelivered
// notification never creates a second event (its key: the trigger and a hash of the notification).
import { z } from "zod";
import type { TriggerRow } from "../db/schema";
import { PlatformError } from "../shared/errors";
import { describeIssues } from "../shared/validation";
import type { PrepareTrigger } from "./model";
import {
  claimOwnedSource,
  deliveryKey,
  enabledTriggersOf,
  invokeForOutcome,
  noteRedelivery,
  parseSourceOwners,
  type SourceOutcome,
  type SourceOwners,
  settle,
  TRIGGER_RETRY_DELAY_SECONDS,
} from "./source-consumer";

/** The queue R2 sends the buckets' event notifications to (wrangler.toml consumes it). */
export const R2_EVENTS_QUEUE = "afp-r2-events";
/** How long a notification's deduplication key holds (s): 24 h, as the queue triggers'. */
export const COS_DEDUPE_WINDOW_SECONDS = 86_400;
/** Longest Prefix or Suffix of a filter, in characters (an R2 key is at most 1024 bytes). */
export const MAX_COS_FILTER_CHARS = 1024;
/** An R2 bucket name: 3-63 lower-case letters, digits and `-`, starting and ending with a letter or digit. */
export const BUCKET_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;
/**
 * The platform's own buckets (wrangler.toml: CODE_BUCKET, LOG_BUCKET, ARCHIVE_BUCKET): code
 * packages, event logs and the archive of every namespace's events. No cos trigger may name them,
 * whatever COS_TRIGGER_BUCKETS says, and their notifications (should a rule send any) reach no trigger.
 */
export const PLATFORM_BUCKETS: readonly string[] = ["afp-code", "afp-logs", "afp-archive"];
/** The region the events name (R2 has one: `auto`). */
const REGION = "auto";

/** R2 notification actions and the SCF event name each becomes. */
export const R2_ACTION_EVENTS = {
  PutObject: "cos:ObjectCreated:Put",
  CopyObject: "cos:ObjectCreated:Copy",
  CompleteMultipartUpload: "cos:ObjectCreated:CompleteMultipartUpload",
  DeleteObject: "cos:ObjectRemove:Delete",
  LifecycleDeletion: "cos:ObjectRemove:Delete",
} as const;
/** An R2 notification action. */
export type R2Action = keyof typeof R2_ACTION_EVENTS;

/** SCF event names a trigger may name: those R2 can send (ObjectCreated:Post, Origin, Replication, restores cannot). */
export const COS_TRIGGER_EVENTS = [
  "cos:ObjectCreated:*",
  "cos:ObjectCreated:Put",
  "cos:ObjectCreated:Copy",
  "cos:ObjectCreated:CompleteMultipartUpload",
  "cos:ObjectRemove:*",
  "cos:ObjectRemove:Delete",
] as const;

const filterText = z
  .string()
  .max(MAX_COS_FILTER_CHARS, `Prefix and Suffix: at most ${MAX_COS_FILTER_CHARS} characters`);

/** SCF's cos TriggerDesc: {"event": ..., "filter": {"Prefix": ..., "Suffix": ...}}. */
const cosDescSchema = z.strictObject({
  event: z.enum(COS_TRIGGER_EVENTS, `event: one of ${COS_TRIGGER_EVENTS.join(", ")}`),
  filter: z.strictObject({ Prefix: filterText.default(""), Suffix: filterText.default("") }).default({
    Prefix: "",
    Suffix: "",
  }),
});

/** A cos trigger's TriggerDesc, normalised. */
export type CosTriggerDesc = z.infer<typeof cosDescSchema>;

/** Parses a cos trigger's TriggerDesc, or INVALID_PARAMETER (it is required: it names the event). */
export function parseCosTriggerDesc(text: string | undefined): CosTriggerDesc {
  if (text === undefined || text.trim() === "") {
    throw new PlatformError(
      "INVALID_PARAMETER",
      'TriggerDesc: a cos trigger needs {"event":"cos:ObjectCreated:*",...}',
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new PlatformError("INVALID_PARAMETER", "TriggerDesc: a cos trigger's TriggerDesc must be a JSON object");
  }
  const parsed = cosDescSchema.safeParse(value);
  if (!parsed.success) throw new PlatformError("INVALID_PARAMETER", `TriggerDesc: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/**
 * The buckets cos triggers may name and the namespaces owning each: COS_TRIGGER_BUCKETS,
 * comma-separated `<bucket>=<namespace>[|<namespace>...]` entries (`<bucket>=*`: every namespace,
 * an explicit opt-in; a bare `<bucket>` is ignored, logged). PLATFORM_BUCKETS are never included.
 */
export function cosBucketOwners(env: Partial<Pick<Env, "COS_TRIGGER_BUCKETS">>): ReadonlyMap<string, SourceOwners> {
  const owners = new Map(parseSourceOwners(env.COS_TRIGGER_BUCKETS, "COS_TRIGGER_BUCKETS", BUCKET_NAME_PATTERN));
  for (const bucket of PLATFORM_BUCKETS) owners.delete(bucket);
  return owners;
}

/**
 * The cos trigger's check: TriggerName a bucket of COS_TRIGGER_BUCKETS owned by the trigger's
 * namespace (another namespace's bucket, a platform bucket or an unlisted one get the same answer,
 * naming only the namespace's own buckets), with room for one more trigger (MAX_TRIGGERS_PER_SOURCE);
 * TriggerDesc its event and filter.
 */
export const prepareCosTrigger: PrepareTrigger = async (env, input) => {
  if (!BUCKET_NAME_PATTERN.test(input.triggerName)) {
    throw new PlatformError(
      "INVALID_PARAMETER",
      "TriggerName: a cos trigger names an R2 bucket (3-63 lower-case letters, digits and -)",
    );
  }
  const desc = parseCosTriggerDesc(input.triggerDesc);
  await claimOwnedSource(
    env,
    { type: "cos", noun: "bucket", variable: "COS_TRIGGER_BUCKETS", owners: cosBucketOwners(env) },
    input,
  );
  return { triggerDesc: JSON.stringify(desc), source: input.triggerName };
};

/** An R2 event notification's message body (developers.cloudflare.com/r2/buckets/event-notifications). */
export const r2NotificationSchema = z.object({
  account: z.string().min(1).max(64),
  action: z.enum(Object.keys(R2_ACTION_EVENTS) as [R2Action, ...R2Action[]]),
  bucket: z.string().min(1).max(63),
  object: z.object({
    key: z.string().min(1).max(1024),
    size: z.number().int().nonnegative().optional(),
    eTag: z.string().max(256).optional(),
  }),
  eventTime: z.string().min(1).max(64),
  copySource: z.object({ bucket: z.string().max(63), object: z.string().max(1024) }).optional(),
});

/** An R2 event notification. */
export type R2Notification = z.infer<typeof r2NotificationSchema>;

/** True when the trigger's event and filter match the notification. */
export function cosTriggerMatches(desc: CosTriggerDesc, notification: R2Notification): boolean {
  const eventName = R2_ACTION_EVENTS[notification.action];
  const eventMatches = desc.event.endsWith(":*")
    ? eventName.startsWith(desc.event.slice(0, -1))
    : eventName === desc.event;
  const key = notification.object.key;
  return eventMatches && key.startsWith(desc.filter.Prefix) && key.endsWith(desc.filter.Suffix);
}

/** What identifies a notification: a redelivery has the same (bucket, key, eTag, action, eventTime). */
function notificationParts(notification: R2Notification): string[] {
  return [
    "notification",
    notification.bucket,
    notification.object.key,
    notification.object.eTag ?? "",
    notification.action,
    notification.eventTime,
  ];
}

/** A notification's deduplication key for a trigger. */
export function notificationKey(row: TriggerRow, notification: R2Notification): Promise<string> {
  return deliveryKey("cos", row, notificationParts(notification));
}

/** The object's address on R2's S3 API. */
function objectUrl(notification: R2Notification): string {
  const key = notification.object.key.split("/").map(encodeURIComponent).join("/");
  return `https://${notification.account}.r2.cloudflarestorage.com/${notification.bucket}/${key}`;
}

/** Unix seconds of the notification's eventTime (0 when unreadable). */
function eventSeconds(eventTime: string): number {
  const ms = Date.parse(eventTime);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : 0;
}

/** The COS event (SCF reference §1.3) of a notification for a trigger; `reqid` is numeric as COS's. */
export function cosEventOf(row: TriggerRow, notification: R2Notification, reqid: number): Record<string, unknown> {
  return {
    Records: [
      {
        cos: {
          cosSchemaVersion: "1.0",
          cosObject: {
            url: objectUrl(notification),
            meta: {
              "x-cos-request-id": String(reqid),
              "Content-Type": "",
              ...(notification.object.eTag !== undefined ? { ETag: notification.object.eTag } : {}),
              ...(notification.copySource
                ? { "x-cos-copy-source": `${notification.copySource.bucket}/${notification.copySource.object}` }
                : {}),
            },
            vid: "",
            key: `/${notification.account}/${notification.bucket}/${notification.object.key}`,
            size: notification.object.size ?? 0,
          },
          cosBucket: { region: REGION, name: notification.bucket, appid: notification.account },
          cosNotificationId: row.id,
        },
        event: {
          eventName: R2_ACTION_EVENTS[notification.action],
          eventVersion: "1.0",
          eventTime: eventSeconds(notification.eventTime),
          eventSource: "qcs::cos",
          requestParameters: { requestSourceIP: "", requestHeaders: {} },
          eventQueue: `qcs:0:scf:${REGION}:appid/${notification.account}:${row.namespace}.${row.functionName}.${row.qualifier}`,
          reservedInfo: "",
          reqid,
        },
      },
    ],
  };
}

/** One notification's invocation of one trigger. */
async function invokeCos(env: Env, row: TriggerRow, notification: R2Notification): Promise<SourceOutcome> {
  const key = await notificationKey(row, notification);
  // A number of the key's hash: the same for every delivery of the notification.
  const reqid = Number.parseInt(key.slice(-12), 16) % 2 ** 31;
  return invokeForOutcome(env, row, {
    payloadText: JSON.stringify(cosEventOf(row, notification, reqid)),
    idempotencyKey: key,
    idempotencyWindowSeconds: COS_DEDUPE_WINDOW_SECONDS,
  });
}

/**
 * Consumes R2 event notifications: each becomes one event per enabled cos trigger of its bucket
 * in the bucket's owning namespaces (COS_TRIGGER_BUCKETS; none for a platform bucket or a trigger
 * of another namespace) whose event and filter match. A malformed notification, or one no trigger matches, is logged and
 * acknowledged; a passing failure retries the message (the triggers whose event exists then find it).
 */
export async function consumeCosNotifications(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  await Promise.all(
    batch.messages.map(async (message) => {
      const parsed = r2NotificationSchema.safeParse(message.body);
      if (!parsed.success) {
        console.error(`R2 notification ${message.id} is malformed: ${describeIssues(parsed.error)}`);
        message.ack();
        return;
      }
      const notification = parsed.data;
      let rows: readonly TriggerRow[];
      try {
        const owners = cosBucketOwners(env).get(notification.bucket) ?? [];
        rows = await enabledTriggersOf(env, "cos", notification.bucket, owners);
      } catch (error) {
        console.warn(`trigger lookup failed for bucket ${notification.bucket}; retrying`, String(error));
        message.retry({ delaySeconds: TRIGGER_RETRY_DELAY_SECONDS });
        return;
      }
      const matching = rows.filter((row) => {
        try {
          return cosTriggerMatches(parseCosTriggerDesc(row.triggerDesc), notification);
        } catch {
          console.error(`cos trigger ${row.id} has an unreadable TriggerDesc; skipped`);
          return false;
        }
      });
      if (matching.length === 0) {
        message.ack();
        return;
      }
      const outcomes = await Promise.all(matching.map((row) => invokeCos(env, row, notification)));
      for (const outcome of outcomes) {
        if (outcome.kind === "retry") console.warn(`R2 notification ${message.id} retried: ${outcome.reason}`);
        if (outcome.kind === "dropped") console.error(`R2 notification ${message.id} dropped: ${outcome.reason}`);
        if (outcome.kind === "duplicate") noteRedelivery(`${notification.bucket}/${notification.object.key}`);
      }
      settle(env, message, outcomes);
    }),
  );
}
