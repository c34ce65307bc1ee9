// Creating a function (POST .../functions), and the configuration and code fields the function
// view's edit and replace-code forms reuse.
import { api, path } from "../api.js";
import { h, link, navigate, notice, viewUrl } from "../dom.js";
import { base64Of, zipFiles } from "../zip.js";
import { environmentText, errorNotice, parseEnvironment, RUNTIMES, templateFor } from "./common.js";

/** Largest code package, in bytes (the API's MAX_CODE_PACKAGE_BYTES). */
const MAX_CODE_PACKAGE_BYTES = 20 * 1024 * 1024;

let fieldCounter = 0;
/** A labelled field: label above, hint below (described-by). */
function field(label, control, hint) {
  fieldCounter += 1;
  const id = control.id || `field-${fieldCounter}`;
  control.id = id;
  const hintId = hint ? `${id}-hint` : undefined;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    hint && h("small", { id: hintId }, hint),
  );
}

function number(name, value, min, max) {
  return h("input", { name, type: "number", value, min, max, step: 1, required: true });
}

/**
 * The configuration fields; `fn` fills them with a function's values (edit), where the runtime and
 * async execution are shown but fixed.
 */
export function configurationFields(fn) {
  const editing = Boolean(fn);
  const runtime = h(
    "select",
    { name: "runtime", id: editing ? "edit-runtime" : "create-runtime" },
    RUNTIMES.map((name) => h("option", { value: name, selected: fn?.runtime === name }, name)),
  );
  const asyncBox = h("input", {
    type: "checkbox",
    name: "asyncRunEnable",
    id: editing ? "edit-async" : "create-async",
    checked: fn ? fn.asyncRunEnable : true,
    disabled: editing,
  });
  return h(
    "fieldset",
    { class: "grid-fields" },
    h("legend", {}, "Configuration"),
    field("Runtime", runtime),
    field(
      "Handler",
      h("input", { name: "handler", value: fn?.handler ?? "index.main_handler", required: true, maxlength: 128 }),
      "file.function",
    ),
    field("Timeout (s)", number("timeout", fn?.timeout ?? 60, 1, 86400), "1–86400; async functions may run up to 24 h"),
    field("Memory (MB)", number("memorySize", fn?.memorySize ?? 128, 64, 3072), "64–3072"),
    field("Concurrency", number("maxConcurrency", fn?.maxConcurrency ?? 10, 1, 50), "events running at once, 1–50"),
    field("QPS limit", number("qpsLimit", fn?.qpsLimit ?? 1000, 1, 100000), "invocations per second, 1–100000"),
    field(
      "Idempotency window (s)",
      number("idempotencyWindowSeconds", fn?.idempotencyWindowSeconds ?? 86400, 1, 259200),
      "how long an Idempotency-Key holds",
    ),
    field(
      "Log limit (MiB)",
      number("logLimitMb", fn?.logLimitMb ?? 1024, 1, 3072),
      "log output one execution keeps, 1–3072; past it lines are dropped with a marker",
    ),
    field("Description", h("input", { name: "description", value: fn?.description ?? "", maxlength: 1000 })),
    h(
      "div",
      { class: "field wide" },
      h("label", { for: editing ? "edit-env" : "create-env" }, "Environment variables"),
      h(
        "textarea",
        {
          name: "environment",
          id: editing ? "edit-env" : "create-env",
          rows: 3,
          spellcheck: "false",
          placeholder: "KEY=value, one per line",
        },
        environmentText(fn?.environment),
      ),
    ),
    h(
      "div",
      { class: "field wide check" },
      asyncBox,
      h("label", { for: asyncBox.id }, "Async execution"),
      h("small", {}, editing ? "Fixed at creation." : "Fixed at creation: it cannot be changed later."),
    ),
  );
}

/** The configuration a form holds, as the API's fields (runtime and async only when creating). */
export function readConfiguration(form, { creating }) {
  const data = new FormData(form);
  const integer = (name) => Number.parseInt(String(data.get(name)), 10);
  const configuration = {
    handler: String(data.get("handler")).trim(),
    timeout: integer("timeout"),
    memorySize: integer("memorySize"),
    maxConcurrency: integer("maxConcurrency"),
    qpsLimit: integer("qpsLimit"),
    idempotencyWindowSeconds: integer("idempotencyWindowSeconds"),
    logLimitMb: integer("logLimitMb"),
    description: String(data.get("description") ?? ""),
    environment: parseEnvironment(String(data.get("environment") ?? "")),
  };
  if (creating) {
    configuration.runtime = String(data.get("runtime"));
    configuration.asyncRunEnable = data.get("asyncRunEnable") === "on";
  }
  return configuration;
}

/** The code fields: a zip upload or an inline editor holding one small handler file. */
export function codeFields(prefix, runtime) {
  const template = templateFor(runtime);
  const zipInput = h("input", { type: "file", name: "zip", id: `${prefix}-zip`, accept: ".zip,application/zip" });
  const fileName = h("input", {
    name: "fileName",
    id: `${prefix}-file-name`,
    value: template.file,
    required: true,
    spellcheck: "false",
  });
  const editor = h(
    "textarea",
    { name: "source", id: `${prefix}-source`, rows: 10, class: "code", spellcheck: "false" },
    template.code,
  );
  const uploadPart = h(
    "div",
    { class: "code-part" },
    field("Zip file", zipInput, "at most 20 MB; the handler file at its root"),
  );
  const inlinePart = h(
    "div",
    { class: "code-part" },
    field("File name", fileName),
    h("div", { class: "field wide" }, h("label", { for: editor.id }, "Handler source"), editor),
  );
  const choose = (mode) => {
    uploadPart.hidden = mode !== "zip";
    inlinePart.hidden = mode !== "inline";
  };
  choose("inline");
  const radio = (value, label, checked) =>
    h(
      "label",
      { class: "radio" },
      h("input", {
        type: "radio",
        name: "codeMode",
        value,
        checked,
        id: `${prefix}-mode-${value}`,
        onchange: () => choose(value),
      }),
      label,
    );
  const fieldset = h(
    "fieldset",
    { class: "code-fields" },
    h("legend", {}, "Code"),
    h("div", { class: "radios" }, radio("inline", "Inline editor", true), radio("zip", "Upload a zip", false)),
    inlinePart,
    uploadPart,
  );
  /** Switches the inline template to another runtime's (while untouched). */
  fieldset.setRuntime = (next) => {
    const fresh = templateFor(next);
    if (editor.dataset.touched) return;
    editor.value = fresh.code;
    fileName.value = fresh.file;
  };
  editor.addEventListener("input", () => {
    editor.dataset.touched = "1";
  });
  return fieldset;
}

/** The code a form's code fields hold, as base64 of a zip; throws with what is missing. */
export async function readCode(form) {
  const data = new FormData(form);
  if (data.get("codeMode") === "zip") {
    const file = data.get("zip");
    if (!(file instanceof File) || file.size === 0) throw new Error("choose a zip file");
    if (file.size > MAX_CODE_PACKAGE_BYTES)
      throw new Error(`the zip is ${file.size} bytes; at most ${MAX_CODE_PACKAGE_BYTES}`);
    return base64Of(file);
  }
  const name = String(data.get("fileName") ?? "").trim();
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error("file name: letters, digits, '.', '_' or '-'");
  return base64Of(zipFiles({ [name]: String(data.get("source") ?? "") }));
}

export async function render(container, _params, { namespace }) {
  const status = h("div", { class: "form-status" });
  const config = configurationFields();
  const code = codeFields("create", RUNTIMES[0]);
  config.querySelector("select[name=runtime]").addEventListener("change", (event) => {
    code.setRuntime(event.target.value);
  });
  const form = h(
    "form",
    { id: "create-form", class: "card", novalidate: false },
    h(
      "div",
      { class: "field" },
      h("label", { for: "create-name" }, "Name"),
      h("input", {
        id: "create-name",
        name: "name",
        required: true,
        pattern: "[A-Za-z][A-Za-z0-9_\\-]{0,58}[A-Za-z0-9]",
        maxlength: 60,
        autocomplete: "off",
        spellcheck: "false",
        "aria-describedby": "create-name-hint",
      }),
      h("small", { id: "create-name-hint" }, "2–60 letters, digits, - or _, starting with a letter"),
    ),
    config,
    code,
    status,
    h(
      "div",
      { class: "actions" },
      link("Cancel", "functions", { ns: namespace }, { class: "button" }),
      h("button", { type: "submit", class: "primary" }, "Create function"),
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    status.replaceChildren(notice("info", "Creating…"));
    try {
      const name = String(new FormData(form).get("name")).trim();
      const body = { name, ...readConfiguration(form, { creating: true }), code: { zipFile: await readCode(form) } };
      await api("POST", path("v1", "namespaces", namespace, "functions"), { body });
      navigate(viewUrl("function", { ns: namespace, fn: name, created: 1 }));
    } catch (error) {
      status.replaceChildren(error.code ? errorNotice(error, { namespace }) : notice("error", error.message));
      button.disabled = false;
    }
  });
  container.append(h("h1", {}, "Create a function ", h("span", { class: "muted" }, `in ${namespace}`)), form);
  form.querySelector("#create-name").focus();
}
