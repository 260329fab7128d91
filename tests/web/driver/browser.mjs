// The one way the browser tests start Chromium: Debian's /usr/bin/chromium (or $CHROMIUM),
// headless, through playwright-core (no browser download), with nothing running in the
// background that could reach past 127.0.0.1 (updates, sync, QUIC).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
}

// axe-core's script, for page.evaluate (accessibility checks)
export function readAxe() {
  const require = createRequire(import.meta.url);
  return readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
}
