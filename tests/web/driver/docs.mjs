// Loads PainPath's API docs page (/docs, Swagger UI) in headless Debian Chromium with every
// request that is not to PainPath itself aborted (no CDN, no internet), opens $triage and the
// CDS service operation, and prints what the page shows as JSON on stdout.
//   node docs.mjs BASE_URL SCREENSHOT_DIR
import { launchChromium } from "./browser.mjs";

const [baseUrl, shotDir] = process.argv.slice(2);

const browser = await launchChromium();
const result = { console: [], requests: [], blocked: [], failed: [] };
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  // the network outside PainPath is gone: anything else is aborted and recorded
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(baseUrl + "/")) return route.continue();
    result.blocked.push(url);
    return route.abort("internetdisconnected");
  });
  const page = await context.newPage();
  page.on("console", (msg) => { if (msg.type() === "error") result.console.push(msg.text()); });
  page.on("pageerror", (error) => result.console.push(String(error)));
  page.on("request", (request) => result.requests.push(request.url()));
  page.on("requestfailed", (request) => result.failed.push(request.url()));
  await page.goto(baseUrl + "/docs", { waitUntil: "networkidle" });
  await page.waitForSelector(".opblock", { timeout: 30000 });
  result.title = await page.locator(".info .title").first().textContent();
  result.operations = await page.locator(".opblock-summary").evaluateAll((nodes) =>
    nodes.map((n) => {
      const method = n.querySelector(".opblock-summary-method");
      const path = n.querySelector(".opblock-summary-path");
      return `${method ? method.textContent.trim() : "?"} ${path ? path.getAttribute("data-path") : "?"}`;
    }));

  const open = async (path) => {
    const block = page.locator(`.opblock-post:has(.opblock-summary-path[data-path="${path}"])`).first();
    await block.locator(".opblock-summary").click();
    await block.locator(".opblock-body").waitFor();
    await block.locator(".opblock-section-request-body").waitFor();
    const examples = await block.locator(".examples-select select option").allTextContents();
    const shown = await block.locator(".opblock-section-request-body .highlight-code, .opblock-section-request-body pre").first().textContent();
    return { examples, shown };
  };
  result.triage = await open("/fhir/$triage");
  result.patientTriage = await open("/fhir/Patient/{patient_id}/$triage");
  result.cds = await open("/cds-services/{service_id}");
  await page.screenshot({ path: `${shotDir}/docs-offline.png`, fullPage: false });
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result));
