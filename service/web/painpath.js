// PainPath web page: vanilla JS, no framework, no external resources.
// Evaluates a Bundle with POST /ui/summary (the decision trace as JSON, with the result Bundle
// that POST /fhir/$triage answers for the same body under "result"), then renders both.
// All data is inserted as text, never as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const state = { samples: [], inputIds: new Map(), inputs: {} };

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
  $("print-area").replaceChildren();
  $("print-summary-button").hidden = true;
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
    $("print-area").replaceChildren();
    $("raw").hidden = true;
    $("status").textContent = "Evaluation failed.";
    error.textContent = failure.message;
    error.hidden = false;
  } finally {
    $("evaluate").disabled = false;
  }
}

// ---- rendering ---------------------------------------------------------------------------
function inputLink(ref, label) {
  const id = state.inputIds.get(ref);
  const input = state.inputs[ref];
  const text = label || (input ? `${input.type}: ${input.label}` : ref);
  if (!id) return el("span", { class: "ref", text });
  const link = el("a", { href: `#${id}`, class: "ref", text, title: ref });
  link.addEventListener("click", () => {
    const target = $(id);
    const routine = target.closest("details.after-urgent");
    if (routine) routine.open = true;
    target.open = true;
    target.classList.add("flash");
    setTimeout(() => target.classList.remove("flash"), 1500);
  });
  return link;
}

function evidenceLabel(e) {
  const value = e.value && e.value !== "true" ? ` = ${e.value}` : "";
  return `${e.display}${value}`;
}

function evidenceList(evidence) {
  if (!evidence || !evidence.length) return el("p", { class: "reason", text: "No input cited." });
  return el("ul", { class: "evidence" }, evidence.map((e) => el("li", {},
    inputLink(e.ref, evidenceLabel(e)),
    el("span", { class: "meta", text: ` (${e.resourceType || "input"})` }),
    e.fromText ? el("span", { class: "tag", text: "from free text" }) : null)));
}

function citations(rules) {
  const seen = new Set();
  const unique = rules.filter((r) => !seen.has(r.id) && seen.add(r.id));
  return el("p", { class: "rules" }, "Guideline: ", unique.flatMap((r, i) => [
    i ? "; " : "",
    r.url ? el("a", { href: r.url, target: "_blank", rel: "noopener noreferrer", text: r.source })
      : el("span", { text: r.source }),
    el("span", { class: "rule-id", text: ` (rule ${r.id} v${r.version})` }),
  ]));
}

function banner(patients) {
  const flags = patients.flatMap((p) => (p.redFlags || []).map((f) => ({ ...f, subject: p.subject })));
  if (!flags.length) return null;
  const urgent = patients.some((p) => p.urgent);
  return el("div", { class: urgent ? "banner" : "banner routine-flag", id: "red-flag-banner", role: "alert" },
    el("strong", { text: urgent ? `Red flag${flags.length > 1 ? "s" : ""}: urgent assessment needed`
      : `Red flag${flags.length > 1 ? "s" : ""}: specialist assessment` }),
    el("ul", {}, flags.map((f) => el("li", {},
      el("b", { text: f.title }), ` (${f.severity}): ${f.reasons.join(" ")} Evidence: `,
      f.evidence.flatMap((e, i) => [i ? ", " : "", inputLink(e.ref, evidenceLabel(e))])))));
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
    evidenceList(dedupe([...p.painType.evidence, ...p.certainty.evidence])),
    citations([p.painType.rule, p.certainty.rule]));
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

// The symptom timeline in HTML (labels wrap and stay legible at any width): one row per bar,
// its label above it, the acute / subacute / chronic windows shaded behind every bar.
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
  const pct = (w) => Math.max(0, Math.min(100, ((w - start) / (maxW - start)) * 100));
  const place = (node, from, to, minimum) => {
    node.style.setProperty("left", `${pct(from)}%`);
    node.style.setProperty("width", `${Math.max(pct(to) - pct(from), minimum)}%`);
    return node;
  };
  const track = (bar) => el("div", { class: "tl-track" },
    place(el("span", { class: "band acute" }), 0, t.acuteMaxWeeks, 0),
    place(el("span", { class: "band subacute" }), t.acuteMaxWeeks, t.chronicMinWeeks, 0),
    place(el("span", { class: "band chronic" }), t.chronicMinWeeks, maxW, 0),
    bar);
  const rows = [];
  if (dur !== null) {
    rows.push(el("li", { class: "tl-row" },
      el("span", { class: "tl-label", text: `Symptoms: ${dur} weeks (to today)` }),
      track(place(el("span", { class: "tl-bar symptoms" }), 0, dur, 0.8))));
  }
  for (const tr of treatments) {
    rows.push(el("li", { class: "tl-row" },
      el("span", { class: "tl-label", text: `${tr.title}: ${(tr.startWeeksAgo - tr.endWeeksAgo).toFixed(1)} weeks` }),
      track(place(el("span", { class: "tl-bar treatment" }), end - tr.startWeeksAgo, end - tr.endWeeksAgo, 1))));
  }
  // axis ticks far enough apart to be read: on a long history 6 and 12 weeks sit near onset, and
  // a tick closer than 14% of the width to the last one shown is left to the shaded bands and key
  let last = -Infinity;
  const ticks = [["onset", 0], [`${t.acuteMaxWeeks} wk`, t.acuteMaxWeeks], [`${t.chronicMinWeeks} wk`, t.chronicMinWeeks]]
    .filter(([, w]) => { const at = pct(w); if (at - last < 14) return false; last = at; return true; });
  const axis = el("div", { class: "tl-axis", "aria-hidden": "true" },
    ticks.map(([label, w]) => { const n = el("span", { text: label }); n.style.setProperty("left", `${pct(w)}%`); return n; }));
  const key = el("p", { class: "tl-key", "aria-hidden": "true" },
    el("span", { class: "swatch acute" }), " acute ", el("span", { class: "swatch subacute" }), " subacute ",
    el("span", { class: "swatch chronic" }), " chronic");
  card.append(key, el("ul", { class: "tl", "aria-label": "Symptom and treatment timeline" }, rows), axis,
    el("p", { class: "legend", "data-testid": "timeline-summary", text: summary }));
  if (treatments.length) {
    card.append(el("ul", { class: "evidence" }, treatments.map((tr) => el("li", {},
      `Treatment tried: ${tr.start.slice(0, 10)} to ${tr.ongoing ? "now" : tr.end.slice(0, 10)}: `,
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
  // under an urgent red flag no stage wears the green "eligible" colour (RULES §8)
  el("span", { class: `badge ${p.urgent ? "neutral" : s.code}`, text: s.display }),
  el("p", { class: "reason", text: s.reason }),
  s.detail.length ? el("ul", { class: "detail" }, s.detail.map((d) =>
    el("li", {}, `${d.name}: `, el("b", { text: d.display }), `: ${d.reason}`))) : null,
  citations([s.rule])));
  const urgent = p.recommended && p.recommended.code === "urgent-referral"
    ? el("p", { class: "urgent-note", text: `Recommended: urgent referral. ${p.recommended.reason}` })
    : null;
  return el("section", { class: "card wide", "aria-labelledby": `ladder-${p.index}` },
    el("h3", { id: `ladder-${p.index}` }, "Treatment stages ",
      el("span", { class: "meta", "data-testid": "recommended-stage", text: `recommended: ${p.recommended.display}` })),
    el("ol", { class: "ladder" }, steps), urgent);
}

function proposalCards(list) {
  return el("div", { class: "cards" }, list.map((pr) => el("article", {
    class: `proposal ${pr.held ? "held" : pr.priority}`, "data-service": pr.service, "aria-label": pr.title,
  },
  el("h4", { text: pr.title }),
  el("span", { class: `priority ${pr.held ? "held" : pr.priority}`, text: pr.held ? "after urgent assessment" : pr.priority }),
  pr.reasons.map((r) => el("p", { text: r })),
  pr.evidence.length ? el("p", { class: "reason" }, "Evidence: ",
    pr.evidence.flatMap((e, i) => [i ? ", " : "", inputLink(e.ref, evidenceLabel(e))])) : null,
  citations(pr.rules))));
}

function proposalsCard(p, list, title, id) {
  return el("section", { class: "card wide", "aria-labelledby": id, "data-testid": id },
    el("h3", { id, text: title }),
    list.length ? proposalCards(list) : el("p", { text: "No service proposed." }));
}

function careCard(p) {
  const care = p.activities.filter((a) => !a.doNotPerform);
  const avoid = p.activities.filter((a) => a.doNotPerform);
  if (!care.length && !avoid.length) return null;
  return el("section", { class: "card wide", "aria-labelledby": `care-${p.index}` },
    el("h3", { id: `care-${p.index}`, text: "Self-management and care" }),
    care.length ? el("p", {}, care.map((a) => a.title).join("; ")) : null,
    avoid.length ? el("ul", { class: "activities" }, avoid.map((a) =>
      el("li", { class: "donot" }, el("b", { text: "Do not: " }), a.reasons[0]))) : null);
}

function changeCard(p) {
  if (!p.whatWouldChange || !p.whatWouldChange.length) return null;
  return el("section", { class: "card wide change", "aria-labelledby": `change-${p.index}`, "data-testid": "what-would-change" },
    el("h3", { id: `change-${p.index}`, text: "What would change the decision" }),
    p.whatWouldChange.map((w) => el("div", { class: "change-item" },
      el("h4", { text: w.about }),
      el("ul", {}, w.prompts.map((pr) => el("li", { class: "prompt" },
        el("span", { class: "prompt-text", text: pr.text }), recordLink(pr.questionnaire)))))));
}

// RULES §9: the PainPath Questionnaire that records a prompt, linked; its $populate pre-fills it
// from the record and the answered form, sent back with the patient's data, re-evaluates.
function recordLink(q) {
  if (!q) return null;
  return el("span", { class: "record" }, " Record with: ",
    el("a", { href: q.read, class: "record-link", target: "_blank", rel: "noopener", "data-populate": q.populate,
      title: `${q.url} (pre-filled from the record by POST ${q.populate})`, text: q.title }));
}

function medicationCard(p) {
  if (!p.medicationIssues || !p.medicationIssues.length) return null;
  return el("section", { class: "card wide", "aria-labelledby": `med-${p.index}` },
    el("h3", { id: `med-${p.index}`, text: "Medication safety" }),
    el("ul", {}, p.medicationIssues.map((m) => el("li", {},
      el("b", { text: `${m.title} (${m.severity}): ` }), m.reasons.join(" "), " ",
      m.evidence.flatMap((e, i) => [i ? ", " : "", inputLink(e.ref, evidenceLabel(e))])))));
}

function notesCard(p) {
  if (!p.notes.length) return null;
  return el("section", { class: "card wide notes", "aria-labelledby": `notes-${p.index}` },
    el("h3", { id: `notes-${p.index}`, text: "Notes and missing data" }),
    el("ul", {}, p.notes.map((n) => el("li", {}, el("b", { text: `${n.severity}: ` }), n.text))));
}

function explanationCard(p) {
  const x = p.explanation;
  if (!x) return null;
  return el("details", { class: "card wide explanation", id: `explanation-${p.index}`, "data-testid": "patient-explanation" },
    el("summary", {}, el("span", { class: "summary-title", text: "Explanation for the patient (plain language)" })),
    el("div", { class: "explanation-body", lang: "en" },
      el("h3", { text: x.title }),
      x.sections.map((s) => el("section", { class: `x-${s.key}` },
        el("h4", { text: s.heading }),
        s.paragraphs.map((t) => el("p", { text: t })),
        s.items.length ? el("ul", {}, s.items.map((t) => el("li", { text: t }))) : null)),
      el("p", { class: "reason", text: x.draftNote }),
      el("button", { type: "button", class: "secondary print-patient", text: "Print the explanation" })));
}

function personHead(p) {
  const who = p.person || {};
  const facts = [];
  if (who.age !== null && who.age !== undefined) facts.push(`${who.age} years`);
  if (who.sex) facts.push(who.sex);
  if (who.birthDate) facts.push(`born ${who.birthDate}`);
  for (const id of who.identifiers || []) facts.push(`${id.label || "ID"} ${id.value}`);
  return el("div", { class: "patient-head", "data-testid": "patient-header" },
    el("h2", { text: who.name || "Name not recorded" }),
    el("span", { class: "meta", "data-testid": "patient-facts", text: facts.join(" · ") || "No demographics recorded" }),
    el("span", { class: "meta", text: `evaluated ${p.asOf.slice(0, 10)} · profile ${p.profile} · rules ${p.ruleset}` }));
}

function patientSection(p) {
  const head = personHead(p);
  if (!p.inScope) {
    return el("section", { class: "patient" }, head,
      el("p", { text: "Outside PainPath's scope: no care plan." }), notesCard(p));
  }
  const label = `Results for ${(p.person && p.person.name) || p.subject}`;
  if (p.urgent) {
    // RULES §8: the flag and the urgent proposals first; routine content waits, collapsed
    const now = p.proposals.filter((x) => !x.held);
    const later = p.proposals.filter((x) => x.held);
    return el("section", { class: "patient urgent-mode", "aria-label": label }, head,
      el("p", { class: "headline", "data-testid": "headline", text: p.headline }),
      el("div", { class: "grid" },
        proposalsCard(p, now, "Urgent proposals", `urgent-${p.index}`),
        el("p", { class: "card wide pain-line" }, "Pain type (follows the urgent assessment): ",
          el("b", { text: `${p.painType.display}, neuropathic component ${p.certainty.display.toLowerCase()}` })),
        changeCard(p), medicationCard(p)),
      el("details", { class: "after-urgent", "data-testid": "after-urgent" },
        el("summary", {}, el("span", { class: "summary-title", text: "Routine care: after urgent assessment" })),
        el("div", { class: "grid" }, painCard(p), timelineCard(p), ladderCard(p),
          later.length ? proposalsCard(p, later, "Held proposals (after urgent assessment)", `held-${p.index}`) : null,
          careCard(p), notesCard(p))),
      el("div", { class: "grid" }, explanationCard(p)));
  }
  return el("section", { class: "patient", "aria-label": label }, head,
    el("div", { class: "grid" }, medicationCard(p), painCard(p), timelineCard(p), ladderCard(p),
      proposalsCard(p, p.proposals, "Proposals", `prop-${p.index}`), careCard(p), changeCard(p),
      notesCard(p), explanationCard(p)));
}

function inputsCard(trace) {
  const entries = Object.entries(trace.inputs);
  return el("section", { class: "card wide inputs", "aria-labelledby": "inputs-title" },
    el("h3", { id: "inputs-title", text: "Input resources" }),
    entries.map(([ref, input]) => el("details", { id: state.inputIds.get(ref) },
      el("summary", {}, el("span", { class: "summary-title", text: `${input.type}: ${input.label}` }),
        el("span", { class: "meta", text: ` ${ref}` })),
      el("pre", { tabindex: "0", "aria-label": `${input.type} ${input.label} (JSON)`, text: JSON.stringify(input.resource, null, 2) }))));
}

// ---- the one-page clinician summary (print only) -----------------------------------------------
function printSummary(trace) {
  const sources = new Map();
  const cite = (rules) => rules.forEach((r) => { if (r.url) sources.set(r.url, r.source.split(" ").slice(0, 3).join(" ")); });
  const blocks = trace.patients.map((p) => {
    const who = p.person || {};
    const facts = [who.age !== null && who.age !== undefined ? `${who.age} y` : null, who.sex,
      who.birthDate ? `born ${who.birthDate}` : null,
      ...(who.identifiers || []).map((i) => `${i.label || "ID"} ${i.value}`)].filter(Boolean);
    const head = el("div", { class: "ps-head" },
      el("h2", { text: who.name || "Name not recorded" }),
      el("p", { text: `${facts.join(" · ")} | evaluated ${p.asOf.slice(0, 10)} · ${p.profile} · rules ${p.ruleset}` }));
    if (!p.inScope) return el("section", { class: "ps-patient" }, head, el("p", { text: "Outside PainPath's scope: no care plan." }));
    [p.painType.rule, p.certainty.rule, ...p.stages.map((s) => s.rule), ...p.proposals.flatMap((x) => x.rules)].forEach((r) => cite([r]));
    const flags = p.redFlags.length ? el("div", { class: p.urgent ? "ps-flag" : "ps-flag routine-flag" },
      el("b", { text: p.urgent ? "RED FLAG: urgent assessment first" : "Red flag" }),
      el("ul", {}, p.redFlags.map((f) => el("li", {}, el("b", { text: `${f.title}: ` }), f.reasons[0],
        ` (${f.evidence.map((e) => e.display).join(", ")})`)))) : null;
    const now = p.proposals.filter((x) => !x.held);
    const later = p.proposals.filter((x) => x.held);
    const care = p.activities.filter((a) => !a.doNotPerform).map((a) => a.title);
    const avoid = p.activities.filter((a) => a.doNotPerform).map((a) => a.title);
    const evidence = dedupe([...p.painType.evidence, ...p.certainty.evidence]).map((e) => evidenceLabel(e));
    const medication = (p.medicationIssues || []).length ? el("div", { class: "ps-medication" },
      el("b", { text: "Medication safety" }),
      el("ul", {}, p.medicationIssues.map((m) => el("li", {}, el("b", { text: `${m.title} (${m.severity}): ` }),
        m.reasons.join(" "))))) : null;
    return el("section", { class: "ps-patient" }, head, flags, medication,
      el("p", {}, el("b", { text: "Pain type: " }), `${p.painType.display} (neuropathic component ${p.certainty.display.toLowerCase()}). `,
        evidence.length ? `Based on: ${evidence.join("; ")}.` : ""),
      el("table", { class: "ps-stages" },
        el("thead", {}, el("tr", {}, el("th", { text: "Stage" }), el("th", { text: "Decision" }), el("th", { text: "Why" }))),
        el("tbody", {}, p.stages.map((s) => el("tr", {},
          el("td", { text: s.title + (s.recommended ? " (recommended)" : "") }), el("td", { text: s.display }),
          el("td", { text: s.reason }))))),
      el("p", {}, el("b", { text: `Recommended: ${p.recommended.display}.` })),
      now.length ? el("div", {}, el("b", { text: p.urgent ? "Urgent proposals" : "Proposals" }),
        el("ul", {}, now.map((x) => el("li", {}, el("b", { text: `${x.title} (${x.priority}): ` }), x.reasons[0])))) : null,
      later.length ? el("p", {}, el("b", { text: "After urgent assessment: " }), later.map((x) => x.title).join("; ") +
        (care.length ? `; ${care.join("; ")}` : "")) : null,
      !later.length && care.length ? el("p", {}, el("b", { text: "Self-management and care: " }), care.join("; ")) : null,
      avoid.length ? el("p", {}, el("b", { text: "Do not: " }), avoid.join("; ")) : null,
      p.whatWouldChange.length ? el("div", {}, el("b", { text: "What would change the decision" }),
        el("ul", {}, p.whatWouldChange.flatMap((w) => w.prompts.map((pr) => el("li", { text: pr.text }))))) : null);
  });
  return el("div", { class: "print-summary", id: "print-summary", "aria-hidden": "true" },
    el("p", { class: "ps-title", text: "PainPath clinician summary: proposals only, a clinician decides" }),
    blocks,
    sources.size ? el("p", { class: "ps-sources" }, "Guidelines: ",
      [...sources].flatMap(([url, name], i) => [i ? "; " : "", `${name} ${url}`])) : null);
}

function render(trace, bundle) {
  state.inputIds = new Map(Object.keys(trace.inputs).map((ref, i) => [ref, `input-${i}`]));
  state.inputs = trace.inputs;
  trace.patients.forEach((p, i) => { p.index = i; });
  $("output").replaceChildren(
    ...[banner(trace.patients), ...trace.patients.map(patientSection), inputsCard(trace)]
      .filter(Boolean));
  $("print-area").replaceChildren(printSummary(trace));
  for (const button of document.querySelectorAll(".print-patient")) {
    button.addEventListener("click", () => printAs(button.closest("details")));
  }
  $("print-summary-button").hidden = false;
  $("raw-bundle").textContent = JSON.stringify(bundle, null, 2);
  $("raw").hidden = false;
  $("copy-status").textContent = "";
  $("results").focus();
}

// ---- SMART App Launch: the page as /smart/callback (or a failed /smart/launch) answers it ----
// The server puts the launch's outcome in a JSON data block: the decision trace of the patient
// read from the EHR (rendered exactly as for a pasted Bundle), or why the launch failed.
function showLaunch() {
  const block = $("page-data");
  if (!block) return;
  const smart = JSON.parse(block.textContent).smart;
  if (!smart) return;
  // the authorization code in the address is spent: keep it out of the history and bookmarks
  history.replaceState(null, "", "/");
  const error = $("error");
  if (smart.error) {
    document.body.dataset.smart = "failed";
    $("status").textContent = "SMART launch failed.";
    error.textContent = `SMART launch failed: ${smart.error}`;
    error.hidden = false;
    return;
  }
  const trace = smart.trace;
  const launch = smart.launch;
  render(trace, trace.result);
  document.body.dataset.smart = "launched";
  $("triage-form").dataset.loaded = `smart:${launch.patient}`;
  const asOf = trace.patients.length ? trace.patients[0].asOf : "";
  const how = launch.flow === "ehr" ? "EHR launch" : "standalone launch";
  $("status").textContent =
    `Patient/${launch.patient} read from the EHR (${launch.iss}, ${how}), evaluated as of ${asOf}.`;
}

// Printing: the clinician summary by default; "Print the explanation" prints only that.
function printAs(explanation) {
  document.body.dataset.print = explanation ? "patient" : "";
  document.querySelectorAll(".explanation.printing").forEach((n) => n.classList.remove("printing"));
  if (explanation) { explanation.open = true; explanation.classList.add("printing"); }
  window.print();
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
  $("print-summary-button").addEventListener("click", () => printAs(null));
  window.addEventListener("afterprint", () => { document.body.dataset.print = ""; });
  showLaunch();
});
