// What a handler sees besides its event, as in SCF (docs/scf-reference.md §9): the fields of its
// `context` (the same keys for every runtime; Node.js adds getRemainingTimeInMillis and
// callbackWaitsForEmptyEventLoop in its bootstrap) and the built-in environment variables of its
// process. Both are built from the execution spec; no platform secret is ever among them.

/**
 * SCF's Tencent account fields of the context and the function environment variables that set
 * them. This platform runs in no Tencent region and under no Tencent account: a function that needs
 * them (code building a COS client for "its" region, say) sets these variables; otherwise they are
 * empty strings, so that `context.tencentcloud_region || "ap-guangzhou"` picks its own default.
 */
export const TENCENT_ACCOUNT_FIELDS = Object.freeze([
  ["tencentcloud_region", "TENCENTCLOUD_REGION"],
  ["tencentcloud_appid", "TENCENTCLOUD_APPID"],
  ["tencentcloud_uin", "TENCENTCLOUD_UIN"],
]);

/**
 * The variables the context's `environment` (a JSON string) and `environ` (`K=V;K=V`) show: the
 * function's own variables and SCF_NAMESPACE, as SCF's documented sample shows it.
 */
function visibleEnvironment(spec) {
  return { ...(spec.environment ?? {}), SCF_NAMESPACE: spec.context?.namespace ?? "" };
}

/**
 * The context a handler receives for one event: the spec's context (request_id, function_name,
 * function_version, namespace, memory_limit_in_mb, time_limit_in_ms) with SCF's other fields.
 */
export function handlerContext(spec) {
  const environment = spec.environment ?? {};
  const visible = visibleEnvironment(spec);
  const context = {
    ...spec.context,
    environment: JSON.stringify(visible),
    environ: Object.entries(visible)
      .map(([name, value]) => `${name}=${value}`)
      .join(";"),
  };
  for (const [field, variable] of TENCENT_ACCOUNT_FIELDS) {
    context[field] = typeof environment[variable] === "string" ? environment[variable] : "";
  }
  return context;
}

/**
 * SCF's built-in environment variables that mean something here (scf-reference.md §9.4), for a
 * handler process of this spec whose code is in codeDir. They win over a function variable of the
 * same name (SCF refuses those names). Not set: the temporary credentials (this platform has none to
 * give), SCF's server port, and the Tencent account variables (see TENCENT_ACCOUNT_FIELDS).
 */
export function builtinEnvironment(spec, codeDir) {
  return {
    SCF_FUNCTIONNAME: String(spec.context?.function_name ?? ""),
    SCF_FUNCTIONVERSION: String(spec.context?.function_version ?? ""),
    SCF_NAMESPACE: String(spec.context?.namespace ?? ""),
    // The name the function was created with (`Nodejs18.15`), not the engine that runs it.
    SCF_RUNTIME: String(spec.runtime),
    USER_CODE_ROOT: codeDir,
    TENCENTCLOUD_RUNENV: "SCF",
    TENCENTCLOUD_TZ: "UTC",
  };
}
