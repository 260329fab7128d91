// Drives PainPath's web page in headless Debian Chromium with playwright-core (no browser
// download) and prints what the page shows as JSON on stdout.
//   node drive.mjs BASE_URL ARTIFACT_DIR AS_OF [BUNDLE_FILE ...]
// Every sample the page bundles (/ui/samples/index.json) is chosen from the sample menu, in menu
// order; each BUNDLE_FILE (the repository's samples/) is pasted into the text area and evaluated
// as of AS_OF. For each: what the page shows, layout checks at 1400 px and 390 px in every state
// (routine care opened, explanation opened, inputs opened, raw JSON opened), axe-core's
// violations, screenshots, and the clinician summary printed to PDF (A4).
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { launchChromium, readAxe } from "./browser.mjs";

const [baseUrl, shotDir, asOf, ...files] = process.argv.slice(2);
const axeSource = readAxe();
const WIDE = { width: 1400, height: 900 };
const NARROW = { width: 390, height: 844 };

const browser = await launchChromium();
const result = { samples: {}, console: [], requests: [] };

// what overflows the viewport horizontally, and whether the timeline labels are legible
async function layout(page) {
  return page.evaluate(() => {
    const doc = document.documentElement;
    const wide = [...document.querySelectorAll("#results *")]
      .filter((n) => n.getClientRects().length && n.getBoundingClientRect().right > doc.clientWidth + 1)
      .slice(0, 5).map((n) => `${n.tagName.toLowerCase()}.${n.className}`);
    const labels = [...document.querySelectorAll(".tl-row")].filter((r) => r.getClientRects().length).map((row) => {
      const label = row.querySelector(".tl-label").getBoundingClientRect();
      const track = row.querySelector(".tl-track").getBoundingClientRect();
      const size = parseFloat(getComputedStyle(row.querySelector(".tl-label")).fontSize);
      return { size, overBar: label.bottom > track.top + 0.5, clipped: label.right > track.right + 1 };
    });
    // axis ticks that overlap one another ("6 wk" drawn over "12 wk")
    const axisOverlaps = [...document.querySelectorAll(".tl-axis")].filter((a) => a.getClientRects().length)
      .flatMap((axis) => {
        const boxes = [...axis.children].map((n) => n.getBoundingClientRect());
        return boxes.slice(1).filter((b, i) => b.left < boxes[i].right).map((_, i) => axis.children[i + 1].textContent);
      });
    return { scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth, wide, labels, axisOverlaps };
  });
}

async function axe(page) {
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const found = await window.axe.run(document, { resultTypes: ["violations"] });
    return {
      version: window.axe.version,
      rulesPassed: found.passes.length,
      violations: found.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
      })),
    };
  });
}

// open the state, check the layout at both widths, take a screenshot at both widths
async function states(page, key) {
  const checks = {};
  const steps = [
    ["evaluated", null],
    ["routine-opened", "details.after-urgent > summary"],
    ["explanation-opened", "details.explanation > summary"],
    ["inputs-opened", ".inputs details > summary"],
    ["raw-opened", "#raw > summary"],
  ];
  for (const [name, opener] of steps) {
    if (opener) {
      const targets = page.locator(opener);
      const count = await targets.count();
      if (!count) continue;
      for (let i = 0; i < count; i++) await targets.nth(i).click();
    }
    checks[name] = {};
    for (const [width, size] of [["1400", WIDE], ["390", NARROW]]) {
      await page.setViewportSize(size);
      checks[name][width] = await layout(page);
      if (name === "evaluated" || name === "raw-opened") {
        await page.evaluate(() => window.scrollTo(0, 0));
        await page.screenshot({ path: `${shotDir}/web-${key}-${name}-${width}.png`, fullPage: true });
      }
    }
    await page.setViewportSize(WIDE);
    if (name === "explanation-opened") {
      const box = page.locator("details.explanation").first();
      await box.screenshot({ path: `${shotDir}/web-${key}-explanation.png` });
    }
  }
  return checks;
}

async function shownOf(page) {
  return page.evaluate(() => {
    const text = (sel) => { const n = document.querySelector(sel); return n ? n.textContent.trim() : null; };
    const all = (sel) => [...document.querySelectorAll(sel)];
    return {
      loaded: document.querySelector("#triage-form").dataset.loaded,
      inputs: all(".inputs details > summary .meta").map((n) => n.textContent.trim()),
      inputLabels: all(".inputs details > summary .summary-title").map((n) => n.textContent.trim()),
      status: text("#status"),
      error: document.querySelector("#error").hidden ? null : text("#error"),
      banner: text("#red-flag-banner"),
      patientName: text("[data-testid=patient-header] h2"),
      patientFacts: text("[data-testid=patient-facts]"),
      headline: text("[data-testid=headline]"),
      painType: text("[data-testid=pain-type]"),
      certainty: text("[data-testid=certainty]"),
      recommendedText: text("[data-testid=recommended-stage]"),
      recommendedStep: all(".step.recommended").map((n) => n.dataset.stage),
      stages: Object.fromEntries(all(".step").map(
        (n) => [n.dataset.stage, n.querySelector(".badge").textContent.trim()])),
      greenBadges: all(".badge.eligible").length,
      afterUrgent: document.querySelector("details.after-urgent") ? {
        open: document.querySelector("details.after-urgent").open,
        summary: text("details.after-urgent > summary"),
        heldServices: all("details.after-urgent .proposal").map((n) => n.dataset.service),
      } : null,
      order: all(".patient > *, .patient > .grid > *").map((n) => n.getAttribute("data-testid") || n.className),
      proposals: all(".proposal").map((n) => ({
        service: n.dataset.service,
        title: n.querySelector("h4").textContent.trim(),
        priority: n.querySelector(".priority").textContent.trim(),
        reason: n.querySelector("p").textContent.trim(),
        held: !!n.closest("details.after-urgent"),
      })),
      whatWouldChange: all("[data-testid=what-would-change] .change-item").map((n) => ({
        about: n.querySelector("h4").textContent.trim(),
        prompts: [...n.querySelectorAll("li .prompt-text")].map((li) => li.textContent.trim()),
        records: [...n.querySelectorAll("li a.record-link")].map((a) => ({
          href: a.getAttribute("href"), text: a.textContent.trim(), populate: a.dataset.populate })),
      })),
      evidenceLinks: all(".evidence a.ref").map((a) => a.getAttribute("href")),
      evidenceLabels: all(".evidence a.ref").map((a) => a.textContent.trim()),
      citationLinks: all(".rules a").map((a) => a.getAttribute("href")),
      explanation: text("[data-testid=patient-explanation] .explanation-body"),
      printSummary: text("#print-summary"),
      // the first card of the patient's grid, by its heading
      firstCard: (() => { const h = document.querySelector(".patient > .grid > * h3"); return h ? h.textContent.trim() : null; })(),
      timeline: text("[data-testid=timeline-summary]"),
      resultsLive: document.querySelector("#output").getAttribute("aria-live"),
      rawHidden: document.querySelector("#raw").hidden,
    };
  });
}

async function evaluateLoaded(page) {
  await page.locator("#evaluate").focus();
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => /Evaluated|failed/.test(document.querySelector("#status").textContent));
}

async function examine(page, key) {
  const shown = await shownOf(page);
  shown.axe = await axe(page);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${shotDir}/web-${key}-viewport.png` });
  // the clinician summary: print media, one A4 PDF, and a picture of it
  await page.emulateMedia({ media: "print" });
  await page.screenshot({ path: `${shotDir}/web-${key}-print.png`, fullPage: true });
  await page.pdf({ path: `${shotDir}/web-${key}.pdf`, format: "A4", printBackground: true });
  await page.emulateMedia({ media: "screen" });
  shown.layout = await states(page, key);
  // an evidence link opens the input resource it names
  const link = page.locator(".evidence a.ref").first();
  if (await link.count()) {
    const target = (await link.getAttribute("href")).slice(1);
    await page.evaluate((t) => { document.getElementById(t).open = false; }, target);
    await link.click();
    shown.evidenceOpens = await page.evaluate((t) => document.getElementById(t).open, target);
  }
  shown.axeOpened = await axe(page);  // everything opened
  // the raw Bundle: collapsible, with a copy button (opened by the last state)
  await page.locator("#copy-bundle").click();
  await page.waitForFunction(() => document.querySelector("#copy-status").textContent.length > 0);
  shown.copyStatus = await page.locator("#copy-status").textContent();
  shown.rawBundleType = await page.evaluate(() => JSON.parse(document.querySelector("#raw-bundle").textContent).resourceType);
  shown.pdf = `web-${key}.pdf`;
  await page.locator("#raw > summary").click();
  return shown;
}

try {
  const context = await browser.newContext({ viewport: WIDE });
  const page = await context.newPage();
  page.on("console", (msg) => { if (msg.type() === "error") result.console.push(msg.text()); });
  page.on("pageerror", (error) => result.console.push(String(error)));
  page.on("request", (request) => result.requests.push(request.url()));
  await page.goto(baseUrl + "/", { waitUntil: "networkidle" });
  result.title = await page.title();
  result.sampleOptions = await page.locator("#sample option").allTextContents();
  result.axeEmpty = await axe(page);

  // keyboard: the first Tab stop is the skip link, the form controls follow with labels
  await page.keyboard.press("Tab");
  result.firstFocus = await page.evaluate(() => document.activeElement.textContent.trim());
  result.unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea")]
      .filter((c) => !(c.labels && c.labels.length) && !c.getAttribute("aria-label"))
      .map((c) => c.id));

  const index = await (await page.request.get(baseUrl + "/ui/samples/index.json")).json();
  for (const { id } of index.samples) {
    await page.locator("#sample").focus();
    await page.selectOption("#sample", id);
    // the page marks the form once this sample (not the previous one) is in the text area
    await page.waitForFunction((sample) =>
      document.querySelector("#triage-form").dataset.loaded === `sample:${sample}`, id);
    await evaluateLoaded(page);
    result.samples[id] = await examine(page, id);
  }
  for (const file of files) {
    const key = `file-${basename(file, ".json")}`;
    await page.selectOption("#sample", "");
    await page.fill("#bundle-text", readFileSync(file, "utf8"));
    await page.fill("#as-of", asOf);
    await evaluateLoaded(page);
    result.samples[key] = await examine(page, key);
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result, null, 2) + "\n");
