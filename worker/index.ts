import { createApp } from "./api/app";
import { deleteExpiredIndexRows } from "./events/event-list";
import { consumeDeadLetters, consumeDispatchBatch } from "./scheduling/dispatch-consumer";

export { SignatureLedgerObject } from "./auth/signature-ledger";
export { AsyncEventObject } from "./events/async-event-object";
export { DeliveryObject } from "./events/delivery-object";
export { IdempotencyObject } from "./events/idempotency-object";
export { InstanceContainer } from "./instances/instance-container";
export { QpsBucketObject } from "./ratelimit/qps-bucket-object";
export { FunctionSchedulerObject } from "./scheduling/function-scheduler-object";
export { NamespaceQuotaObject } from "./scheduling/namespace-quota-object";
export { PlatformCapacityObject } from "./scheduling/platform-capacity-object";

const app = createApp();

/** Queue names, as in wrangler.toml. */
const DISPATCH_QUEUE = "afp-dispatch";

export default {
  fetch: app.fetch,
  async queue(batch, env): Promise<void> {
    if (batch.queue === DISPATCH_QUEUE) return consumeDispatchBatch(batch, env);
    return consumeDeadLetters(batch);
  },
  async scheduled(controller, env): Promise<void> {
    const deleted = await deleteExpiredIndexRows(env.DB, controller.scheduledTime);
    if (deleted > 0) console.log(`event index retention: ${deleted} rows older than 3 days deleted`);
    // Keeps the query planner's statistics current as the index grows and shrinks.
    await env.DB.exec("PRAGMA optimize");
  },
} satisfies ExportedHandler<Env>;
