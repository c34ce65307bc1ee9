// Runs one Node.js handler: `node bootstrap-node.mjs CODE_DIR file.function`.
// The event arrives as JSON on stdin; the outcome goes to fd 3 as one JSON line.
import { existsSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [codeDir, handlerSpec] = process.argv.slice(2);
const separator = handlerSpec.lastIndexOf(".");
const fileName = handlerSpec.slice(0, separator);
const functionName = handlerSpec.slice(separator + 1);

function report(outcome) {
  const usage = process.resourceUsage();
  writeSync(3, `${JSON.stringify({ ...outcome, maxRssKb: usage.maxRSS })}\n`);
}

function describe(error) {
  if (error instanceof Error) return { message: `${error.name}: ${error.message}`, stack: error.stack ?? "" };
  return { message: String(error), stack: "" };
}

const context = JSON.parse(process.env.AFP_CONTEXT ?? "{}");
const deadline = Date.now() + (context.time_limit_in_ms ?? 0);
context.getRemainingTimeInMillis = () => Math.max(0, deadline - Date.now());
context.callbackWaitsForEmptyEventLoop = false;
delete process.env.AFP_CONTEXT;

let handler;
try {
  const candidates = [".js", ".mjs", ".cjs"].map((extension) => join(codeDir, `${fileName}${extension}`));
  const modulePath = candidates.find((candidate) => existsSync(candidate));
  if (!modulePath) throw new Error(`handler file ${fileName}.js not found in the code package`);
  const loaded = await import(pathToFileURL(modulePath).href);
  handler = loaded[functionName] ?? loaded.default?.[functionName];
  if (typeof handler !== "function") throw new Error(`${fileName}.${functionName} is not an exported function`);
} catch (error) {
  report({ kind: "threw", ...describe(error) });
  process.exit(1);
}

const event = JSON.parse(readFileSync(0, "utf8") || "{}");
try {
  const result = await handler(event, context);
  report({ kind: "returned", result: result === undefined ? null : result });
  process.exit(0);
} catch (error) {
  report({ kind: "threw", ...describe(error) });
  process.exit(1);
}
