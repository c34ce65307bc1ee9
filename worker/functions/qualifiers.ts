// Qualifier resolution for invocations: a qualifier is `$LATEST`, a published version number or an
// alias (`$DEFAULT` included). An alias resolves to its main version, or, with the additional
// version's weight as probability, to the additional one. Lookups are cached per isolate (see
// qualifier-cache.ts and FunctionRegistry.snapshot).
import { PlatformError } from "../shared/errors";
import { aliasNotFound, cachedAliasRouting, DEFAULT_ALIAS, isAliasName } from "./aliases";
import type { FunctionSnapshot } from "./model";
import { snapshotOf } from "./model";
import { FunctionRegistry, functionNotFound } from "./registry";
import { cachedPublishedVersion, isVersionNumber, LATEST, versionNotFound } from "./versions";

/** Longest qualifier, in characters (an alias name's bound). */
export const MAX_QUALIFIER_CHARS = 64;
/** The qualifier's rule, as error messages tell it. */
export const QUALIFIER_RULE = `${LATEST}, a version number, ${DEFAULT_ALIAS} or an alias name (1-64 letters, digits, _ or -, starting with a letter)`;

/** True for a well-formed qualifier (it may still name nothing). */
export function isQualifier(value: string): boolean {
  return value === LATEST || value === DEFAULT_ALIAS || isVersionNumber(value) || isAliasName(value);
}

/** The qualifier checked, or INVALID_PARAMETER naming `label`. */
export function checkQualifier(value: string, label = "qualifier"): string {
  if (value.length > MAX_QUALIFIER_CHARS || !isQualifier(value)) {
    throw new PlatformError("INVALID_PARAMETER", `${label}: ${QUALIFIER_RULE}`);
  }
  return value;
}

/** True when a qualifier names an alias (not a version). */
export function isAliasQualifier(value: string): boolean {
  return value === DEFAULT_ALIAS || isAliasName(value);
}

/** One version a qualifier may run, with what it runs. */
export interface RoutedVersion {
  /** "$LATEST" or the version number. */
  version: string;
  snapshot: FunctionSnapshot;
}

/** Where a qualifier routes, every version it may run already looked up. */
export interface QualifierRoute {
  /** The alias named, when the qualifier is one. */
  alias?: string;
  main: RoutedVersion;
  /** The weighted additional version of an alias, if any. */
  additional?: RoutedVersion & { weight: number };
}

/** What an invocation runs: the version chosen, its snapshot, and the alias named (if any). */
export interface ResolvedQualifier extends RoutedVersion {
  alias?: string;
}

async function routedVersion(
  env: Env,
  namespace: string,
  name: string,
  latest: FunctionSnapshot,
  version: string,
): Promise<RoutedVersion> {
  if (version === LATEST) return { version, snapshot: latest };
  const published = isVersionNumber(version) ? await cachedPublishedVersion(env, namespace, name, version) : undefined;
  if (!published) throw versionNotFound(name, version);
  return { version, snapshot: snapshotOf(published.row) };
}

/**
 * Where a qualifier routes (nothing chosen yet): FUNCTION_NOT_FOUND, INVALID_PARAMETER (malformed),
 * QUALIFIER_NOT_FOUND (a version or alias the function does not have, or an alias routing to a
 * version deleted meanwhile).
 */
export async function resolveRoute(
  env: Env,
  namespace: string,
  name: string,
  qualifier: string,
): Promise<QualifierRoute> {
  checkQualifier(qualifier);
  const latest = await new FunctionRegistry(env).snapshot(namespace, name);
  if (!latest) throw functionNotFound(namespace, name);
  if (!isAliasQualifier(qualifier)) return { main: await routedVersion(env, namespace, name, latest, qualifier) };
  const routing = await cachedAliasRouting(env, namespace, name, qualifier);
  if (!routing) throw aliasNotFound(name, qualifier);
  const main = await routedVersion(env, namespace, name, latest, routing.functionVersion);
  if (!routing.additional) return { alias: qualifier, main };
  const additional = await routedVersion(env, namespace, name, latest, routing.additional.version);
  return { alias: qualifier, main, additional: { ...additional, weight: routing.additional.weight } };
}

/**
 * The version one invocation runs: the additional version when `random()` (uniform in [0, 1)) is
 * below its weight, the main one otherwise.
 */
export function chooseVersion(route: QualifierRoute, random: () => number = Math.random): ResolvedQualifier {
  const chosen = route.additional && random() < route.additional.weight ? route.additional : route.main;
  return {
    version: chosen.version,
    snapshot: chosen.snapshot,
    ...(route.alias !== undefined ? { alias: route.alias } : {}),
  };
}

/** Resolves a qualifier and chooses the version one invocation runs (resolveRoute, then chooseVersion). */
export async function resolveQualifier(
  env: Env,
  namespace: string,
  name: string,
  qualifier: string,
  random: () => number = Math.random,
): Promise<ResolvedQualifier> {
  return chooseVersion(await resolveRoute(env, namespace, name, qualifier), random);
}
