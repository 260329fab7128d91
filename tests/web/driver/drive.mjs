// Drives PainPath's web page in headless Debian Chromium with playwright-core (no browser
// download) and prints what the page shows as JSON on stdout.
//   node drive.mjs BASE_URL SCREENSHOT_DIR SAMPLE_ID [SAMPLE_ID ...]
import { chromium } from "playwright-core";

const [baseUrl, shotDir, ...samples] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
  ],
});
const result = { samples: {}, console: [], requests: [] };
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  page.on("console", (msg) => { if (msg.type() === "error") result.console.push(msg.text()); });
  page.on("pageerror", (error) => result.console.push(String(error)));
  page.on("request", (request) => result.requests.push(request.url()));
  await page.goto(baseUrl + "/", { waitUntil: "networkidle" });
  result.title = await page.title();
  result.sampleOptions = await page.locator("#sample option").allTextContents();

  // keyboard: the first Tab stop is the skip link, the form controls follow with labels
  await page.keyboard.press("Tab");
  result.firstFocus = await page.evaluate(() => document.activeElement.textContent.trim());
  result.unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea")]
      .filter((c) => !(c.labels && c.labels.length) && !c.getAttribute("aria-label"))
      .map((c) => c.id));

  for (const id of samples) {
    await page.locator("#sample").focus();
    await page.selectOption("#sample", id);
    // the page marks the form once this sample (not the previous one) is in the text area
    await page.waitForFunction((sample) =>
      document.querySelector("#triage-form").dataset.loaded === `sample:${sample}`, id);
    await page.locator("#evaluate").focus();
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => /Evaluated|failed/.test(document.querySelector("#status").textContent));
    const shown = await page.evaluate(() => {
      const text = (sel) => { const n = document.querySelector(sel); return n ? n.textContent.trim() : null; };
      return {
        loaded: document.querySelector("#triage-form").dataset.loaded,
        inputs: [...document.querySelectorAll(".inputs details > summary")]
          .map((n) => n.firstChild.textContent.trim()),
        status: text("#status"),
        error: document.querySelector("#error").hidden ? null : text("#error"),
        banner: text("#red-flag-banner"),
        painType: text("[data-testid=pain-type]"),
        certainty: text("[data-testid=certainty]"),
        recommendedText: text("[data-testid=recommended-stage]"),
        recommendedStep: [...document.querySelectorAll(".step.recommended")].map((n) => n.dataset.stage),
        stages: Object.fromEntries([...document.querySelectorAll(".step")].map(
          (n) => [n.dataset.stage, n.querySelector(".badge").textContent.trim()])),
        proposals: [...document.querySelectorAll(".proposal")].map((n) => ({
          service: n.dataset.service,
          title: n.querySelector("h4").textContent.trim(),
          priority: n.querySelector(".priority").textContent.trim(),
          reason: n.querySelector("p").textContent.trim(),
        })),
        evidenceLinks: [...document.querySelectorAll(".evidence a.ref")].map((a) => a.getAttribute("href")),
        timeline: text("[data-testid=timeline-summary]"),
        resultsLive: document.querySelector("#output").getAttribute("aria-live"),
        rawHidden: document.querySelector("#raw").hidden,
      };
    });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: `${shotDir}/web-${id}.png`, fullPage: true });
    await page.screenshot({ path: `${shotDir}/web-${id}-viewport.png` });
    // an evidence link opens the input resource it names
    const link = page.locator(".evidence a.ref").first();
    if (await link.count()) {
      const target = (await link.getAttribute("href")).slice(1);
      await link.click();
      shown.evidenceOpens = await page.evaluate((t) => document.getElementById(t).open, target);
    }
    // the raw Bundle: collapsible, with a copy button
    await page.locator("#raw > summary").click();
    await page.locator("#copy-bundle").click();
    await page.waitForFunction(() => document.querySelector("#copy-status").textContent.length > 0);
    shown.copyStatus = await page.locator("#copy-status").textContent();
    shown.rawBundleType = await page.evaluate(() => JSON.parse(document.querySelector("#raw-bundle").textContent).resourceType);
    await page.locator("#raw > summary").click();
    result.samples[id] = shown;
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result, null, 2) + "\n");
