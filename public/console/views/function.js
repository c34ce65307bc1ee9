// One function: its configuration, invoke, statistics, edit, replace code and delete.
import { api, path } from "../api.js";
import { confirmAction, facts, h, link, navigate, notice, time, viewUrl } from "../dom.js";
import { statisticsChart } from "./chart.js";
import { errorNotice } from "./common.js";
import { codeFields, configurationFields, readCode, readConfiguration } from "./function-form.js";

/** Largest payload of an async invocation, in bytes (the API's MAX_ASYNC_PAYLOAD_BYTES: 128 KB). */
export const MAX_PAYLOAD_BYTES = 128 * 1024;

export async function render(container, params, { namespace }) {
  const name = params.get("fn") ?? "";
  const functionPath = path("v1", "namespaces", namespace, "functions", name);
  let fn;
  try {
    fn = (await api("GET", functionPath)).body;
  } catch (error) {
    container.append(h("h1", {}, name || "Function"), errorNotice(error, { namespace }));
    return;
  }
  const overview = h("div");
  const showOverview = () =>
    overview.replaceChildren(
      facts([
        ["Runtime", fn.runtime],
        ["Handler", fn.handler],
        ["Execution", fn.asyncRunEnable ? "async (fixed at creation)" : "sync (fixed at creation)"],
        ["Timeout", `${fn.timeout} s`],
        ["Memory", `${fn.memorySize} MB`],
        ["Concurrency", String(fn.maxConcurrency)],
        ["QPS limit", String(fn.qpsLimit)],
        ["Idempotency window", `${fn.idempotencyWindowSeconds} s`],
        ["Log limit", fn.logLimitMb === undefined ? "—" : `${fn.logLimitMb} MiB per execution`],
        ["Environment", Object.keys(fn.environment).join(", ") || "none"],
        ["Code", `${fn.codeSize} bytes, sha256 ${fn.codeSha256.slice(0, 12)}…`],
        ["Created", time(fn.createdAt)],
        ["Updated", time(fn.updatedAt)],
      ]),
    );
  showOverview();

  const deleteStatus = h("div");
  const deleteButton = h("button", { type: "button", class: "danger", id: "delete-function" }, "Delete");
  deleteButton.addEventListener("click", async () => {
    const sure = await confirmAction(
      `Delete ${name}?`,
      "The function and its code are deleted. Events still running refuse it.",
      "Delete",
    );
    if (!sure) return;
    try {
      await api("DELETE", functionPath);
      navigate(viewUrl("functions", { ns: namespace }));
    } catch (error) {
      deleteStatus.replaceChildren(
        error.code === "FUNCTION_IN_USE"
          ? notice(
              "error",
              h("strong", {}, "Refused: "),
              error.message,
              " ",
              link("See its running events", "events", { ns: namespace, fn: name, statuses: "RUNNING" }),
            )
          : errorNotice(error, { namespace }),
      );
    }
  });

  container.append(
    h(
      "div",
      { class: "title-row" },
      h("h1", {}, name, " ", h("span", { class: "muted" }, `in ${namespace}`)),
      h(
        "div",
        { class: "actions" },
        link("Events", "events", { ns: namespace, fn: name }, { class: "button" }),
        deleteButton,
      ),
    ),
    params.get("created") ? notice("ok", `Function ${name} created.`) : "",
    deleteStatus,
    h(
      "div",
      { class: "columns" },
      h(
        "section",
        { class: "card", "aria-labelledby": "overview-title" },
        h("h2", { id: "overview-title" }, "Overview"),
        overview,
      ),
      invokePanel(namespace, name),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "stats-title" },
      h("h2", { id: "stats-title" }, "Events per hour (last 3 days)"),
      statisticsChart(namespace, name),
    ),
    editPanel(namespace, name, fn, (updated) => {
      fn = updated;
      showOverview();
    }),
    h(
      "section",
      { class: "card placeholder", "aria-labelledby": "later-title" },
      h("h2", { id: "later-title" }, "Triggers, versions and aliases"),
      h(
        "p",
        { class: "muted" },
        "Not available yet: the platform has no triggers, versions or aliases so far. Every invocation runs $LATEST.",
      ),
    ),
  );
}

/** The invoke form: a JSON payload checked as typed, its size against the 128 KB bound. */
function invokePanel(namespace, name) {
  const editor = h(
    "textarea",
    { id: "payload", class: "code", rows: 8, spellcheck: "false", "aria-describedby": "payload-check" },
    '{\n  "hello": "world"\n}',
  );
  const check = h("p", { id: "payload-check", class: "hint" });
  const key = h("input", { id: "idempotency-key", maxlength: 128, autocomplete: "off", spellcheck: "false" });
  const button = h("button", { type: "submit", class: "primary", id: "invoke-button" }, "Invoke");
  const result = h("div", { id: "invoke-result" });
  const validate = () => {
    const text = editor.value.trim() === "" ? "{}" : editor.value;
    const bytes = new TextEncoder().encode(text).length;
    let problem = "";
    try {
      JSON.parse(text);
    } catch (error) {
      problem = `Not valid JSON: ${error.message}`;
    }
    if (!problem && bytes > MAX_PAYLOAD_BYTES)
      problem = `Too large: ${bytes} bytes, at most ${MAX_PAYLOAD_BYTES} (128 KB)`;
    check.textContent = problem || `Valid JSON, ${bytes} of ${MAX_PAYLOAD_BYTES} bytes (128 KB)`;
    check.className = problem ? "hint error" : "hint";
    editor.setAttribute("aria-invalid", problem ? "true" : "false");
    button.disabled = Boolean(problem);
    return problem ? undefined : text;
  };
  editor.addEventListener("input", validate);
  validate();
  const form = h(
    "form",
    { id: "invoke-form" },
    h("label", { for: "payload" }, "Payload (JSON)"),
    editor,
    check,
    h("label", { for: "idempotency-key" }, "Idempotency-Key (optional)"),
    key,
    h("div", { class: "actions" }, button),
    result,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = validate();
    if (text === undefined) return;
    button.disabled = true;
    try {
      const headers = key.value.trim() ? { "idempotency-key": key.value.trim() } : {};
      const { body } = await api("POST", path("v1", "namespaces", namespace, "functions", name, "invocations"), {
        body: text,
        headers,
      });
      result.replaceChildren(
        notice(
          "ok",
          body.idempotentReplay ? "Same Idempotency-Key: the key's event is " : "Accepted: RequestId ",
          link(body.requestId, "event", { id: body.requestId }, { id: "invoked-request-id" }),
        ),
      );
    } catch (error) {
      result.replaceChildren(errorNotice(error, { namespace }));
    } finally {
      validate();
    }
  });
  return h(
    "section",
    { class: "card", "aria-labelledby": "invoke-title" },
    h("h2", { id: "invoke-title" }, "Invoke"),
    form,
  );
}

/** Edit the configuration (PATCH) and replace the code (PUT .../code). */
function editPanel(namespace, name, fn, updated) {
  const functionPath = path("v1", "namespaces", namespace, "functions", name);
  const configStatus = h("div");
  const configForm = h(
    "form",
    { id: "edit-form" },
    configurationFields(fn),
    configStatus,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save configuration")),
  );
  configForm.querySelector("select[name=runtime]").disabled = true;
  configForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!configForm.reportValidity()) return;
    try {
      const body = readConfiguration(configForm, { creating: false });
      const answer = await api("PATCH", functionPath, { body });
      updated(answer.body);
      configStatus.replaceChildren(notice("ok", "Configuration saved."));
    } catch (error) {
      configStatus.replaceChildren(error.code ? errorNotice(error, { namespace }) : notice("error", error.message));
    }
  });
  const codeStatus = h("div");
  const codeForm = h(
    "form",
    { id: "code-form" },
    codeFields("replace", fn.runtime),
    codeStatus,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Replace code")),
  );
  codeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = await api("PUT", `${functionPath}/code`, { body: { zipFile: await readCode(codeForm) } });
      updated(answer.body);
      codeStatus.replaceChildren(notice("ok", `Code replaced (${answer.body.codeSize} bytes). New events run it.`));
    } catch (error) {
      codeStatus.replaceChildren(error.code ? errorNotice(error, { namespace }) : notice("error", error.message));
    }
  });
  return h(
    "div",
    { class: "columns" },
    h(
      "section",
      { class: "card", "aria-labelledby": "edit-title" },
      h("h2", { id: "edit-title" }, "Edit configuration"),
      configForm,
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "code-title" },
      h("h2", { id: "code-title" }, "Replace code"),
      codeForm,
    ),
  );
}
