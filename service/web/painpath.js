// PainPath web page: vanilla JS, no framework, no external resources.
// Evaluates a Bundle with POST /ui/summary (the decision trace as JSON, with the result Bundle
// that POST /fhir/$triage answers for the same body under "result"), then renders both.
// All data is inserted as text, never as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const state = { samples: [], inputIds: new Map() };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

const $ = (id) => document.getElementById(id);

async function loadSamples() {
  const response = await fetch("/ui/samples/index.json");
  state.samples = (await response.json()).samples;
  const select = $("sample");
  for (const sample of state.samples) {
    select.append(el("option", { value: sample.id, text: sample.title }));
  }
}

// Whatever is in the text area is what Evaluate sends, so while a sample or a file is being
// read the area is cleared, Evaluate is disabled and the results of the previous patient are
// taken away; the form's data-loaded attribute names the input once it is in place.
function startLoading(message) {
  const form = $("triage-form");
  form.dataset.loaded = "";
  form.setAttribute("aria-busy", "true");
  $("evaluate").disabled = true;
  $("bundle-text").value = "";
  $("output").replaceChildren();
  $("raw").hidden = true;
  $("error").hidden = true;
  $("status").textContent = message;
}

function finishLoading(loaded, message) {
  const form = $("triage-form");
  form.dataset.loaded = loaded;
  form.removeAttribute("aria-busy");
  $("evaluate").disabled = false;
  $("status").textContent = message;
}

async function chooseSample() {
  const id = $("sample").value;
  const sample = state.samples.find((s) => s.id === id);
  $("sample-description").textContent = sample ? sample.description : "";
  if (!sample) return;
  startLoading("Loading the sample patient…");
  let text;
  try {
    const response = await fetch(`/ui/samples/${sample.id}.json`);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    text = await response.text();
  } catch (failure) {
    if ($("sample").value !== id) return;
    finishLoading("", `Sample not loaded: ${failure.message}`);
    return;
  }
  if ($("sample").value !== id) return; // another sample was chosen meanwhile
  $("bundle-text").value = text;
  $("as-of").value = sample.asOf;
  $("profile").value = sample.profile;
  finishLoading(`sample:${sample.id}`, "Sample loaded: press Evaluate.");
}

function chooseFile() {
  const file = $("bundle-file").files[0];
  if (!file) return;
  startLoading("Reading the file…");
  const reader = new FileReader();
  reader.onload = () => {
    $("bundle-text").value = String(reader.result);
    $("sample").value = "";
    $("sample-description").textContent = `Loaded ${file.name}`;
    finishLoading(`file:${file.name}`, "File loaded: press Evaluate.");
  };
  reader.onerror = () => finishLoading("", "The file could not be read.");
  reader.readAsText(file);
}

function outcomeText(body) {
  if (body && body.resourceType === "OperationOutcome") {
    return (body.issue || [])
      .map((i) => `${i.severity} (${i.code}): ${i.diagnostics || ""}` +
        (i.expression ? ` at ${i.expression.join(", ")}` : ""))
      .join("\n");
  }
  return JSON.stringify(body);
}

async function post(path, body, query) {
  const response = await fetch(`${path}?${query}`, {
    method: "POST",
    headers: { "Content-Type": "application/fhir+json", Accept: "application/fhir+json" },
    body,
  });
  let json = null;
  try { json = await response.json(); } catch (error) { json = { diagnostics: String(error) }; }
  if (!response.ok) throw new Error(`HTTP ${response.status}\n${outcomeText(json)}`);
  return json;
}

async function evaluate(event) {
  event.preventDefault();
  const body = $("bundle-text").value.trim();
  const error = $("error");
  error.hidden = true;
  if (!body) {
    error.textContent = "Paste a Bundle, choose a sample patient or upload a file first.";
    error.hidden = false;
    $("bundle-text").focus();
    return;
  }
  const query = new URLSearchParams({ profile: $("profile").value });
  const asOf = $("as-of").value.trim() || new Date().toISOString();
  query.set("asOf", asOf);
  $("evaluate").disabled = true;
  $("status").textContent = "Evaluating…";
  try {
    const trace = await post("/ui/summary", body, query);
    render(trace, trace.result);
    const count = trace.patients.length;
    $("status").textContent =
      `Evaluated ${count} patient${count === 1 ? "" : "s"} as of ${asOf}.`;
  } catch (failure) {
    $("output").replaceChildren();
    $("raw").hidden = true;
    $("status").textContent = "Evaluation failed.";
    error.textContent = failure.message;
    error.hidden = false;
  } finally {
    $("evaluate").disabled = false;
  }
}

// ---- rendering ---------------------------------------------------------------------------
function inputLink(ref) {
  const id = state.inputIds.get(ref);
  if (!id) return el("span", { class: "ref", text: ref });
  const link = el("a", { href: `#${id}`, class: "ref", text: ref });
  link.addEventListener("click", () => {
    const target = $(id);
    target.open = true;
    target.classList.add("flash");
    setTimeout(() => target.classList.remove("flash"), 1500);
  });
  return link;
}

function evidenceList(evidence) {
  if (!evidence || !evidence.length) return el("p", { class: "reason", text: "No input cited." });
  return el("ul", { class: "evidence" }, evidence.map((e) => el("li", {},
    `${e.title}${e.value && e.value !== "true" ? ` = ${e.value}` : ""}`,
    e.fromText ? el("span", { class: "tag", text: "from free text" }) : null,
    " — ", inputLink(e.ref))));
}

function ruleText(rules) {
  return rules.map((r) => `${r.id} v${r.version} (${r.source})`).join("; ");
}

function banner(patients) {
  const flags = patients.flatMap((p) => (p.redFlags || []).map((f) => ({ ...f, subject: p.subject })));
  if (!flags.length) return null;
  return el("div", { class: "banner", id: "red-flag-banner", role: "alert" },
    el("strong", { text: `Red flag${flags.length > 1 ? "s" : ""}: urgent assessment needed` }),
    el("ul", {}, flags.map((f) => el("li", {},
      el("b", { text: f.title }), ` (${f.severity}): ${f.reasons.join(" ")} Evidence: `,
      f.evidence.flatMap((e, i) => [i ? ", " : "", inputLink(e.ref)])))));
}

function painCard(p) {
  return el("section", { class: "card", "aria-labelledby": `pain-${p.index}` },
    el("h3", { id: `pain-${p.index}`, text: "Pain type" }),
    el("p", { class: "pain-type", "data-testid": "pain-type", text: p.painType.display }),
    el("p", { class: "certainty" }, "Neuropathic component: ",
      el("b", { "data-testid": "certainty", text: p.certainty.display })),
    el("p", { class: "reason", text: p.painType.reason }),
    el("p", { class: "reason", text: p.certainty.reason }),
    el("h4", { text: "Evidence" }),
    evidenceList(dedupe([...p.painType.evidence, ...p.certainty.evidence])));
}

function dedupe(evidence) {
  const seen = new Set();
  return evidence.filter((e) => {
    const key = `${e.ref}|${e.concept}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function timelineCard(p) {
  const t = p.timeline;
  const card = el("section", { class: "card timeline", "aria-labelledby": `tl-${p.index}` },
    el("h3", { id: `tl-${p.index}`, text: "Symptom duration" }));
  const dur = t.durationWeeks;
  const treatments = t.treatments;
  const summary = dur === null
    ? "Symptom onset not documented: duration unknown."
    : `Symptoms for ${dur} weeks (onset ${t.onset.slice(0, 10)}); acute under ${t.acuteMaxWeeks} weeks, chronic beyond ${t.chronicMinWeeks} weeks.`;
  const end = dur === null ? Math.max(t.chronicMinWeeks + 2, ...treatments.map((x) => x.startWeeksAgo)) : dur;
  const start = Math.min(0, ...treatments.map((x) => end - x.startWeeksAgo));
  const maxW = Math.max(end, t.chronicMinWeeks + 1) * 1.05;
  const W = 560, left = 16, right = 16, top = 26, rowH = 22;
  const height = top + 40 + rowH * (treatments.length + 1) + 24;
  const x = (w) => left + ((w - start) / (maxW - start)) * (W - left - right);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${height}`, role: "img", "aria-label": summary });
  const bandBottom = height - 22;
  chart.append(
    svg("rect", { x: x(0), y: top, width: x(t.acuteMaxWeeks) - x(0), height: bandBottom - top, fill: "#e4eefb" }),
    svg("rect", { x: x(t.acuteMaxWeeks), y: top, width: x(t.chronicMinWeeks) - x(t.acuteMaxWeeks), height: bandBottom - top, fill: "#fdf1da" }),
    svg("rect", { x: x(t.chronicMinWeeks), y: top, width: x(maxW) - x(t.chronicMinWeeks), height: bandBottom - top, fill: "#eceef1" }),
    svg("text", { x: x(t.acuteMaxWeeks / 2), y: 16, "text-anchor": "middle", "font-size": 13, fill: "#1b1f24" }, "acute"),
    svg("text", { x: x((t.acuteMaxWeeks + t.chronicMinWeeks) / 2), y: 16, "text-anchor": "middle", "font-size": 13, fill: "#1b1f24" }, "subacute"),
    svg("text", { x: x(t.chronicMinWeeks) + 8, y: 16, "font-size": 13, fill: "#1b1f24" }, "chronic"),
  );
  for (const mark of [0, t.acuteMaxWeeks, t.chronicMinWeeks]) {
    chart.append(
      svg("line", { x1: x(mark), x2: x(mark), y1: top, y2: bandBottom, stroke: "#4a5260", "stroke-dasharray": mark ? "4 3" : "" }),
      svg("text", { x: x(mark), y: height - 6, "text-anchor": "middle", "font-size": 12, fill: "#1b1f24" },
        mark ? `${mark} wk` : "onset"));
  }
  let y = top + 12;
  if (dur !== null) {
    chart.append(
      svg("rect", { x: x(0), y, width: Math.max(x(dur) - x(0), 2), height: 14, rx: 3, fill: "#12263f" }),
      svg("text", { x: Math.min(x(dur) + 6, W - 150), y: y + 12, "font-size": 13, fill: "#1b1f24" }, `symptoms ${dur} wk (today)`));
    chart.append(svg("line", { x1: x(dur), x2: x(dur), y1: top, y2: bandBottom, stroke: "#a4161a", "stroke-width": 2 }));
  }
  for (const tr of treatments) {
    y += rowH;
    const a = x(end - tr.startWeeksAgo), b = x(end - tr.endWeeksAgo);
    chart.append(
      svg("rect", { x: a, y, width: Math.max(b - a, 4), height: 12, rx: 3, fill: "#1f7a45" }),
      svg("text", { x: Math.min(b + 6, W - 230), y: y + 11, "font-size": 12, fill: "#1b1f24" },
        `${tr.title} (${(tr.startWeeksAgo - tr.endWeeksAgo).toFixed(1)} wk)`));
  }
  card.append(chart, el("p", { class: "legend", "data-testid": "timeline-summary", text: summary }));
  if (treatments.length) {
    card.append(el("ul", { class: "evidence" }, treatments.map((tr) => el("li", {},
      `Treatment tried: ${tr.title}, ${tr.start.slice(0, 10)} to ${tr.ongoing ? "now" : tr.end.slice(0, 10)} — `,
      inputLink(tr.ref)))));
  } else {
    card.append(el("p", { class: "legend", text: "No conservative treatment documented." }));
  }
  return card;
}

function ladderCard(p) {
  const steps = p.stages.map((s) => el("li", {
    class: `step${s.recommended ? " recommended" : ""}`, "data-stage": s.stage,
    "aria-current": s.recommended ? "step" : null,
  },
  el("h4", {}, s.title, s.recommended ? el("span", { class: "rec", text: "Recommended" }) : null),
  el("span", { class: `badge ${s.code}`, text: s.display }),
  el("p", { class: "reason", text: s.reason }),
  s.detail.length ? el("ul", { class: "detail" }, s.detail.map((d) =>
    el("li", {}, `${d.name}: `, el("b", { text: d.display }), ` — ${d.reason}`))) : null,
  el("p", { class: "rules", text: ruleText([s.rule]) })));
  const urgent = p.recommended && p.recommended.code === "urgent-referral"
    ? el("p", { class: "urgent-note", text: `Recommended: urgent referral — ${p.recommended.reason}` })
    : null;
  return el("section", { class: "card wide", "aria-labelledby": `ladder-${p.index}` },
    el("h3", { id: `ladder-${p.index}` }, "Treatment stages ",
      el("span", { class: "meta", "data-testid": "recommended-stage", text: `recommended: ${p.recommended.display}` })),
    el("ol", { class: "ladder" }, steps), urgent);
}

function proposalsCard(p) {
  const cards = p.proposals.map((pr) => el("article", {
    class: `proposal ${pr.priority}`, "data-service": pr.service, "aria-label": pr.title,
  },
  el("h4", { text: pr.title }),
  el("span", { class: `priority ${pr.priority}`, text: pr.priority }),
  pr.reasons.map((r) => el("p", { text: r })),
  el("p", { class: "rules", text: ruleText(pr.rules) })));
  const care = p.activities.filter((a) => !a.doNotPerform);
  const avoid = p.activities.filter((a) => a.doNotPerform);
  return el("section", { class: "card wide", "aria-labelledby": `prop-${p.index}` },
    el("h3", { id: `prop-${p.index}`, text: "Proposals" }),
    cards.length ? el("div", { class: "cards" }, cards) : el("p", { text: "No service proposed." }),
    care.length ? el("p", {}, el("b", { text: "Self-management and care: " }), care.map((a) => a.title).join("; ")) : null,
    avoid.length ? el("ul", { class: "activities" }, avoid.map((a) =>
      el("li", { class: "donot" }, el("b", { text: "Do not: " }), a.reasons[0]))) : null);
}

function notesCard(p) {
  if (!p.notes.length) return null;
  return el("section", { class: "card wide notes", "aria-labelledby": `notes-${p.index}` },
    el("h3", { id: `notes-${p.index}`, text: "Notes and missing data" }),
    el("ul", {}, p.notes.map((n) => el("li", {}, el("b", { text: `${n.severity}: ` }), n.text))));
}

function inputsCard(trace) {
  const entries = Object.entries(trace.inputs);
  return el("section", { class: "card wide inputs", "aria-labelledby": "inputs-title" },
    el("h3", { id: "inputs-title", text: "Input resources" }),
    entries.map(([ref, input]) => el("details", { id: state.inputIds.get(ref) },
      el("summary", {}, `${ref} `, el("span", { class: "meta", text: input.path })),
      el("pre", { tabindex: "0", text: JSON.stringify(input.resource, null, 2) }))));
}

function patientSection(p) {
  const head = el("div", { class: "patient-head" },
    el("h2", { text: p.subject.startsWith("Patient/") ? p.subject : `Patient ${p.subject}` }),
    el("span", { class: "meta", text: `as of ${p.asOf.slice(0, 10)} · profile ${p.profile} · rules ${p.ruleset}` }));
  if (!p.inScope) {
    return el("section", { class: "patient" }, head,
      el("p", { text: "Outside PainPath's scope: no care plan." }), notesCard(p));
  }
  return el("section", { class: "patient", "aria-label": `Results for ${p.subject}` }, head,
    el("div", { class: "grid" }, painCard(p), timelineCard(p), ladderCard(p), proposalsCard(p),
      notesCard(p)));
}

function render(trace, bundle) {
  state.inputIds = new Map(Object.keys(trace.inputs).map((ref, i) => [ref, `input-${i}`]));
  trace.patients.forEach((p, i) => { p.index = i; });
  $("output").replaceChildren(
    ...[banner(trace.patients), ...trace.patients.map(patientSection), inputsCard(trace)]
      .filter(Boolean));
  $("raw-bundle").textContent = JSON.stringify(bundle, null, 2);
  $("raw").hidden = false;
  $("copy-status").textContent = "";
  $("results").focus();
}

async function copyBundle() {
  const text = $("raw-bundle").textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch (error) {
    const range = document.createRange();
    range.selectNodeContents($("raw-bundle"));
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand("copy");
  }
  $("copy-status").textContent = "Copied to the clipboard.";
}

document.addEventListener("DOMContentLoaded", () => {
  loadSamples().catch((error) => { $("status").textContent = `Samples not loaded: ${error}`; });
  $("sample").addEventListener("change", chooseSample);
  $("bundle-file").addEventListener("change", chooseFile);
  $("triage-form").addEventListener("submit", evaluate);
  $("copy-bundle").addEventListener("click", copyBundle);
});
