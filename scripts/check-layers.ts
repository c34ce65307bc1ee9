/**
 * `npm run layers`: checks that imports between folders of worker/ point down the layering of
 * ARCHITECTURE.md, and that no file outside api/ imports a route file. Prints every import between
 * folders with its direction when run with --verbose; exits 1 on any violation, naming it.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

/** The layers, bottom first: a file may import its own folder and the folders before it. */
export const LAYERS = [
  "shared",
  "db",
  "contract",
  "ratelimit",
  "auth",
  "functions",
  "events",
  "scheduling",
  "instances",
  "logs",
  "triggers",
  "tcapi",
  "api",
  ".",
] as const;

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..", "worker");
const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+["'](\.[^"']+)["']/g;

function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

/** The top folder of a path relative to worker/ ("." for worker/index.ts). */
function layerOf(relativePath: string): string {
  const slash = relativePath.indexOf("/");
  return slash < 0 ? "." : relativePath.slice(0, slash);
}

/** A route file: under api/routes/, or a tcapi/api file named routes.ts. */
function isRouteFile(relativePath: string): boolean {
  return relativePath.startsWith("api/routes/") || /(^|\/)routes\.ts$/.test(relativePath);
}

const problems: string[] = [];
let crossing = 0;
const verbose = process.argv.includes("--verbose");
for (const file of sourceFiles(ROOT)) {
  const from = relative(ROOT, file);
  const fromLayer = layerOf(from);
  for (const match of readFileSync(file, "utf8").matchAll(IMPORT)) {
    const target = `${relative(ROOT, resolve(dirname(file), match[1] ?? ""))}.ts`;
    const toLayer = layerOf(target);
    if (isRouteFile(target) && !from.startsWith("api/") && from !== "index.ts") {
      problems.push(`${from} imports the route file ${target}`);
    }
    if (toLayer === fromLayer) continue;
    crossing++;
    const fromRank = LAYERS.indexOf(fromLayer as (typeof LAYERS)[number]);
    const toRank = LAYERS.indexOf(toLayer as (typeof LAYERS)[number]);
    if (fromRank < 0) problems.push(`${from}: folder ${fromLayer} is not in the layering (scripts/check-layers.ts)`);
    else if (toRank < 0) problems.push(`${from} -> ${target}: folder ${toLayer} is not in the layering`);
    else if (toRank > fromRank)
      problems.push(`${from} imports ${target}, a higher layer (${toLayer} above ${fromLayer})`);
    if (verbose) console.log(`${toRank > fromRank ? "UP  " : "down"} ${from} -> ${target}`);
  }
}
if (problems.length > 0) {
  console.error(`layering: ${problems.length} violation(s) among ${crossing} imports between folders:`);
  for (const problem of [...new Set(problems)]) console.error(`  ${problem}`);
  process.exit(1);
}
console.log(`layering: ${crossing} imports between folders of worker/, all pointing down (ARCHITECTURE.md)`);
