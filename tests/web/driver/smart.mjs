// SMART App Launch of PainPath's page in headless Debian Chromium, end to end: each scenario
// opens its start URL (the EHR's launch link, PainPath's /smart/launch, ...) in a fresh browser
// context, signs in and consents (or presses Cancel) on the EHR's own pages (oidc-provider's
// interaction pages) as a user would, and reports what PainPath's page then shows. Every
// request off 127.0.0.1 is aborted and recorded (oidc-provider's pages import a web font).
//   node smart.mjs CONFIG_JSON
// CONFIG_JSON: {"painpath": base URL, "shotDir": dir, "scenarios": [{"name", "start",
//               "abort": bool}]}; prints {"scenarios": {name: what was seen}} as JSON.
import { launchChromium, readAxe } from "./browser.mjs";

const config = JSON.parse(process.argv[2]);
const axeSource = readAxe();
const browser = await launchChromium();

const text = async (page, selector) => {
  const node = page.locator(selector).first();
  return (await node.count()) ? (await node.textContent()).trim() : null;
};

// One step on an EHR page: sign in, or consent / cancel. Returns the page's name.
async function onEhrPage(page, scenario) {
  const before = page.url();
  const moved = () => page.waitForURL((url) => url.href !== before, { waitUntil: "load" });
  if (await page.locator('input[name="login"]').count()) {
    await page.fill('input[name="login"]', "dr-jones");
    await page.fill('input[name="password"]', "any");
    await Promise.all([moved(), page.click('button[type="submit"]')]);
    return "login";
  }
  if (await page.locator('input[name="prompt"][value="consent"]').count()) {
    const shown = (await page.locator(".login-card").first().textContent()).replace(/\s+/g, " ");
    if (scenario.abort) {
      await Promise.all([moved(), page.click("text=[ Cancel ]")]);
      return `consent (cancelled): ${shown}`;
    }
    await Promise.all([moved(), page.click('button:has-text("Continue")')]);
    return `consent: ${shown}`;
  }
  throw new Error(`not an EHR page PainPath expects: ${page.url()}`);
}

async function run(scenario) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const seen = { blocked: [], console: [], origins: [], ehrPages: [] };
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === "127.0.0.1") return route.continue();
    seen.blocked.push(url.origin);
    return route.abort("internetdisconnected");
  });
  const page = await context.newPage();
  // console errors of PainPath's page only (the EHR's pages complain about the blocked font)
  const onPainPath = () => page.url().startsWith(config.painpath);
  page.on("console", (msg) => {
    if (msg.type() === "error" && onPainPath()) seen.console.push(msg.text());
  });
  page.on("pageerror", (error) => seen.console.push(String(error)));
  // every top-level navigation, redirects included: the hops of the launch
  page.on("request", (request) => {
    if (!request.isNavigationRequest() || request.frame() !== page.mainFrame()) return;
    const origin = new URL(request.url()).origin;
    if (seen.origins[seen.origins.length - 1] !== origin) seen.origins.push(origin);
  });
  try {
    await page.goto(scenario.start, { waitUntil: "load" });
    for (let step = 0; step < 6 && !page.url().startsWith(config.painpath); step += 1) {
      seen.ehrPages.push(await onEhrPage(page, scenario));
    }
    await page.waitForSelector("body[data-smart]", { timeout: 60000 });
    seen.outcome = await page.locator("body").getAttribute("data-smart");
    seen.url = page.url();
    seen.status = await text(page, "#status");
    seen.error = (await page.locator("#error").isHidden()) ? null : await text(page, "#error");
    seen.banner = await text(page, "#red-flag-banner");
    seen.headline = await text(page, '[data-testid="headline"]');
    seen.painType = await text(page, '[data-testid="pain-type"]');
    seen.patientName = await text(page, '[data-testid="patient-header"] h2');
    seen.recommended = await text(page, '[data-testid="recommended-stage"]');
    seen.loaded = await page.locator("#triage-form").getAttribute("data-loaded");
    seen.rawBundle = await page.locator("#raw").isHidden() ? null
      : JSON.parse(await page.locator("#raw-bundle").textContent());
    // axe-core on the page as the launch left it (serious and critical violations)
    await page.evaluate(axeSource);
    seen.axe = await page.evaluate(async () => {
      const found = await window.axe.run(document, { resultTypes: ["violations"] });
      return found.violations.filter((v) => ["serious", "critical"].includes(v.impact))
        .map((v) => `${v.id}: ${v.help}`);
    });
    await page.screenshot({ path: `${config.shotDir}/smart-${scenario.name}.png`, fullPage: false });
  } catch (error) {
    seen.failure = String(error);
    seen.at = page.url();
    await page.screenshot({ path: `${config.shotDir}/smart-${scenario.name}-failed.png` });
  } finally {
    await context.close();
  }
  return seen;
}

const result = { scenarios: {} };
try {
  for (const scenario of config.scenarios) {
    result.scenarios[scenario.name] = await run(scenario);
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result));
