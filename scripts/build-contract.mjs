// Bundles the container contract (worker/contract, zod included) into one minified ES module for
// the runtime agent: containers/runtime/agent/contract.gen.mjs, which the agent imports (the image
// has no node_modules). Same input, same bytes: the output depends only on the sources and on the
// installed versions of esbuild and zod.
//
//   node scripts/build-contract.mjs           writes the bundle (npm run contract:build)
//   node scripts/build-contract.mjs --check   exits 1 when the committed bundle differs from a fresh
//                                             build (npm run contract:check)
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const ENTRY = join(ROOT, "worker", "contract", "agent-contract.ts");
const OUTPUT = join(ROOT, "containers", "runtime", "agent", "contract.gen.mjs");
const BUILD_COMMAND = "npm run contract:build";

/** The installed version of a package, named in the bundle's header. */
function versionOf(name) {
  const require = createRequire(import.meta.url);
  return JSON.parse(readFileSync(require.resolve(`${name}/package.json`), "utf8")).version;
}

/** The header of the bundle: what it is, where it comes from, how to rebuild it. */
function header() {
  return [
    "// biome-ignore-all lint: generated and minified",
    "// biome-ignore-all format: generated and minified",
    "// biome-ignore-all assist: generated and minified",
    "// GENERATED FILE, do not edit: the container contract (worker/contract/*.ts) bundled with",
    `// zod ${versionOf("zod")} (MIT License, https://github.com/colinhacks/zod) by esbuild ${versionOf("esbuild")}.`,
    `// Rebuild with \`${BUILD_COMMAND}\`; \`npm run contract:check\` fails when it is out of date.`,
    "",
  ].join("\n");
}

/** Builds the bundle in memory: its full text, header included. */
async function bundle() {
  const result = await build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    format: "esm",
    // Neutral: nothing of Node (or of a browser) is assumed, and a builtin import fails the build.
    platform: "neutral",
    mainFields: ["module", "main"],
    target: "es2022",
    minify: true,
    legalComments: "none",
    charset: "utf8",
    logLevel: "silent",
  });
  const [file] = result.outputFiles;
  if (!file || result.outputFiles.length !== 1) throw new Error("esbuild produced no single output file");
  return `${header()}${file.text}`;
}

async function main() {
  const text = await bundle();
  const target = relative(ROOT, OUTPUT);
  if (!process.argv.includes("--check")) {
    writeFileSync(OUTPUT, text);
    console.log(`wrote ${target} (${Buffer.byteLength(text)} bytes)`);
    return;
  }
  let committed;
  try {
    committed = readFileSync(OUTPUT, "utf8");
  } catch {
    committed = undefined;
  }
  if (committed === text) {
    console.log(`${target} is up to date`);
    return;
  }
  console.error(
    committed === undefined
      ? `${target} is missing: run \`${BUILD_COMMAND}\` and commit it`
      : `${target} is out of date with worker/contract: run \`${BUILD_COMMAND}\` and commit it`,
  );
  process.exitCode = 1;
}

await main();
