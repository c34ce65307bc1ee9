#!/usr/bin/env node
// The dispatch queues of wrangler.toml: afp-dispatch and afp-dispatch-1 to -39 (bindings
// DISPATCH_QUEUE, DISPATCH_QUEUE_1 to _39), one producer and one consumer each, all consumed alike.
// One queue takes at most 5,000 messages a second and an event sends two, so the 100 functions at
// 1,000 QPS of ARCHITECTURE.md's "Scaling" need 40 of them. The entries are written between the
// DISPATCH_QUEUES_BEGIN/END marker comments; nothing else in wrangler.toml is touched.
//
//   node scripts/dispatch-queues.mjs          rewrites the block (after changing QUEUES or the settings)
//   node scripts/dispatch-queues.mjs --check  exits 1 when the block differs from what it would write
//                                             (CI: npm run queues:check)
//
// worker/events/dispatch-send.ts holds the same count (DISPATCH_QUEUE_COUNT); a unit test compares
// the two through the bindings wrangler.toml gives the Worker.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Dispatch queues declared (DISPATCH_QUEUE_COUNT in worker/events/dispatch-send.ts). */
export const QUEUES = 40;
export const BEGIN = "# DISPATCH_QUEUES_BEGIN: written by scripts/dispatch-queues.mjs; do not edit";
export const END = "# DISPATCH_QUEUES_END";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const file = join(root, "wrangler.toml");

function nameOf(index) {
  return index === 0 ? "afp-dispatch" : `afp-dispatch-${index}`;
}

function bindingOf(index) {
  return index === 0 ? "DISPATCH_QUEUE" : `DISPATCH_QUEUE_${index}`;
}

/** The block between the markers. */
export function block() {
  const lines = [];
  for (let index = 0; index < QUEUES; index += 1) {
    lines.push("[[queues.producers]]", `binding = "${bindingOf(index)}"`, `queue = "${nameOf(index)}"`, "");
  }
  for (let index = 0; index < QUEUES; index += 1) {
    lines.push(
      "[[queues.consumers]]",
      `queue = "${nameOf(index)}"`,
      "max_batch_size = 100",
      "max_batch_timeout = 0",
      "max_retries = 100",
      "retry_delay = 1",
      'dead_letter_queue = "afp-dispatch-dead"',
      "",
    );
  }
  return lines.join("\n");
}

const toml = readFileSync(file, "utf8");
const begin = toml.indexOf(`${BEGIN}\n`);
const end = toml.indexOf(`${END}\n`, begin + 1);
if (begin < 0 || end < 0 || toml.indexOf(`${BEGIN}\n`, begin + 1) >= 0) {
  console.error(`wrangler.toml must hold the marker lines "${BEGIN}" and "${END}" once each, in that order`);
  process.exit(1);
}
const written = `${toml.slice(0, begin + BEGIN.length + 1)}${block()}${toml.slice(end)}`;
if (process.argv.includes("--check")) {
  if (written !== toml) {
    console.error("wrangler.toml's dispatch queues differ from scripts/dispatch-queues.mjs: run it and commit");
    process.exit(1);
  }
  console.log(`wrangler.toml declares the ${QUEUES} dispatch queues`);
} else if (written !== toml) {
  writeFileSync(file, written);
  console.log(`wrangler.toml: ${QUEUES} dispatch queues written`);
}
