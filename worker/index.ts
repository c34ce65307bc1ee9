import { createApp } from "./api/app";
import { indexDatabases } from "./db/index-databases";
import { isDispatchQueue } from "./events/dispatch-send";
import { purgeExpiredIndexRows } from "./events/event-retention";
import { consumeDeadLetters, consumeDispatchBatch } from "./scheduling/dispatch-consumer";
import { consumeCosNotifications, R2_EVENTS_QUEUE } from "./triggers/cos";
import { consumeTriggerQueueBatch, isTriggerQueue } from "./triggers/queue";
import { consumeTriggerDeadLetters } from "./triggers/source-consumer";

export { SignatureLedgerObject } from "./auth/signature-ledger";
export { AsyncEventObject } from "./events/async-event-object";
export { BulkTerminationObject } from "./events/bulk-terminate-object";
export { DeliveryObject } from "./events/delivery-object";
export { IdempotencyObject } from "./events/idempotency-object";
export {
  ImageContainer,
  InstanceContainerLarge,
  InstanceContainerLite,
  InstanceContainerStandard,
} from "./instances/instance-classes";
export { InstanceContainer } from "./instances/instance-container";
export { QpsBucketObject } from "./ratelimit/qps-bucket-object";
export { FunctionSchedulerObject } from "./scheduling/function-scheduler-object";
export { NamespaceQuotaObject } from "./scheduling/namespace-quota-object";
export { PlatformCapacityObject } from "./scheduling/platform-capacity-object";
export { TimerTriggerObject } from "./triggers/timer-object";

const app = createApp();

/** Queue names, as in wrangler.toml (the dispatch queues: DISPATCH_QUEUE_NAMES). */
const DISPATCH_DEAD_LETTER_QUEUE = "afp-dispatch-dead";
/** The dead-letter queue of every trigger queue (ckafka queues and afp-r2-events). */
const TRIGGER_DEAD_LETTER_QUEUE = "afp-trigger-dead";
/** Seconds before a batch of a queue nothing consumes is delivered again (then dead-lettered by its config). */
const UNKNOWN_QUEUE_RETRY_SECONDS = 60;

export default {
  fetch: app.fetch,
  async queue(batch, env): Promise<void> {
    if (isDispatchQueue(batch.queue)) return consumeDispatchBatch(batch, env);
    if (batch.queue === DISPATCH_DEAD_LETTER_QUEUE) return consumeDeadLetters(batch, env);
    if (batch.queue === TRIGGER_DEAD_LETTER_QUEUE) return consumeTriggerDeadLetters(batch);
    if (batch.queue === R2_EVENTS_QUEUE) return consumeCosNotifications(batch, env);
    if (isTriggerQueue(env, batch.queue)) return consumeTriggerQueueBatch(batch, env);
    // A queue the Worker consumes but nothing here names (a trigger queue left out of TRIGGER_QUEUES,
    // or listed bare, without its owners): its messages are kept (retried, then its dead-letter
    // queue, afp-trigger-dead for trigger queues), never dropped silently.
    console.error(`queue ${batch.queue} is consumed but handled by nothing: add <queue>=<namespace> to TRIGGER_QUEUES`);
    batch.retryAll({ delaySeconds: UNKNOWN_QUEUE_RETRY_SECONDS });
  },
  async scheduled(controller, env): Promise<void> {
    // Every index database (INDEX_DATABASES), each on its own: one that fails does not stop the others.
    const results = await Promise.allSettled(
      indexDatabases(env).map(async ({ binding, db, namespaces }) => {
        const scope = namespaces === undefined ? undefined : { settingsDb: env.DB, namespaces };
        const deleted = await purgeExpiredIndexRows(db, controller.scheduledTime, scope);
        if (deleted > 0)
          console.log(`event index retention: ${deleted} rows of ${binding} past their retention deleted`);
        // Keeps the query planner's statistics current as the index grows and shrinks.
        await db.exec("PRAGMA optimize");
      }),
    );
    const failed = results.find((result) => result.status === "rejected");
    if (failed) throw failed.reason;
  },
} satisfies ExportedHandler<Env>;
