// One function: its configuration, invoke, statistics, edit, replace code and delete.
import { api, path } from "../api.js";
import { confirmAction, facts, h, link, navigate, notice, time, viewUrl } from "../dom.js";
import { statisticsChart } from "./chart.js";
import { errorNotice } from "./common.js";
import { codeFields, configurationFields, readCode, readConfiguration } from "./function-form.js";

/** Largest payload of an async invocation, in bytes (the API's MAX_ASYNC_PAYLOAD_BYTES: 128 KB). */
export const MAX_PAYLOAD_BYTES = 128 * 1024;
/** Longest tags text of an invocation: 10 tags (MAX_TAGS_PER_EVENT) of a 64-character key and a 128-character value. */
const MAX_TAGS_TEXT_CHARS = 10 * (64 + 128 + 2);

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
        ["Dispatch", dispatchText(fn)],
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

  // Pause / resume dispatch (POST .../dispatch/pause|resume): the button says what it will do.
  const dispatchStatus = h("div", { id: "dispatch-status" });
  const dispatchButton = h("button", { type: "button", id: "dispatch-toggle" });
  const showDispatchButton = () => {
    const paused = fn.dispatchPaused === true;
    dispatchButton.textContent = paused ? "Resume dispatch" : "Pause dispatch";
    dispatchButton.dataset.action = paused ? "resume" : "pause";
    dispatchButton.hidden = fn.dispatchPaused === undefined;
  };
  showDispatchButton();
  dispatchButton.addEventListener("click", async () => {
    const pausing = dispatchButton.dataset.action === "pause";
    const sure = await confirmAction(
      pausing ? `Pause dispatch of ${name}?` : `Resume dispatch of ${name}?`,
      pausing
        ? "Invocations are still accepted, but their events stay queued until dispatch is resumed. Events already running go on."
        : "The events held while paused start, oldest first, within the function's concurrency.",
      pausing ? "Pause dispatch" : "Resume dispatch",
    );
    if (!sure) return;
    dispatchButton.disabled = true;
    try {
      const { body } = await api("POST", `${functionPath}/dispatch/${pausing ? "pause" : "resume"}`, { body: {} });
      fn = { ...fn, dispatchPaused: body.dispatchPaused, pausedAt: body.pausedAt };
      showOverview();
      showDispatchButton();
      dispatchStatus.replaceChildren(
        notice(
          "ok",
          body.dispatchPaused
            ? `Dispatch paused: new events stay queued (${body.pendingEvents} waiting).`
            : `Dispatch resumed (${body.pendingEvents} waiting to start).`,
        ),
      );
    } catch (error) {
      dispatchStatus.replaceChildren(errorNotice(error, { namespace }));
    } finally {
      dispatchButton.disabled = false;
    }
  });

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
        dispatchButton,
        deleteButton,
      ),
    ),
    dispatchStatus,
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
      // PATCH and PUT .../code answer without the dispatch fields (GET of the function has them).
      fn = { ...updated, dispatchPaused: fn.dispatchPaused, pausedAt: fn.pausedAt };
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

/** The function's dispatch state (dispatchPaused and pausedAt of GET of the function). */
function dispatchText(fn) {
  if (fn.dispatchPaused === undefined) return undefined;
  if (fn.dispatchPaused === null) return h("span", { id: "dispatch-state", dataset: { state: "unknown" } }, "unknown");
  return fn.dispatchPaused
    ? h(
        "span",
        { id: "dispatch-state", class: "paused", dataset: { state: "paused" } },
        h("strong", {}, "paused"),
        fn.pausedAt ? ` since ${time(fn.pausedAt)}` : "",
        ": new events stay queued",
      )
    : h("span", { id: "dispatch-state", dataset: { state: "running" } }, "running");
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
  const tags = h("input", {
    id: "invoke-tags",
    maxlength: MAX_TAGS_TEXT_CHARS,
    placeholder: "env=prod,team=video",
    title: "key=value pairs separated by commas (at most 10)",
    autocomplete: "off",
    spellcheck: "false",
  });
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
    h("label", { for: "invoke-tags" }, "Tags (optional)"),
    tags,
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
        query: { tags: tags.value.trim() },
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
