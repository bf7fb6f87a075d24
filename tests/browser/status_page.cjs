// Loads the relayer's status page in a real headless Chromium (npm @sparticuz/chromium, driven
// by puppeteer-core) with JavaScript switched off, as a plain-HTML page must work, saves a
// screenshot, and prints what the page shows as one JSON line:
//   node tests/browser/status_page.cjs URL SCREENSHOT.png
"use strict";
const chromium = require("@sparticuz/chromium").default ?? require("@sparticuz/chromium");
const puppeteer = require("puppeteer-core");

async function main() {
  const [url, screenshot] = process.argv.slice(2);
  if (!url || !screenshot) {
    console.error("usage: node status_page.cjs URL SCREENSHOT.png");
    process.exitCode = 2;
    return;
  }
  const browser = await puppeteer.launch({
    args: chromium.args,
    executablePath: await chromium.executablePath(),
    headless: true,
    defaultViewport: { width: 1280, height: 800 },
  });
  try {
    const page = await browser.newPage();
    await page.setJavaScriptEnabled(false);
    const response = await page.goto(url, { waitUntil: "load", timeout: 30000 });
    // DOM reads go through the DevTools protocol, not the page's (disabled) scripts.
    const shown = await page.evaluate(() => {
      const text = (el) => (el ? el.textContent.trim() : null);
      const facts = {};
      for (const dd of document.querySelectorAll("dd[data-field]")) {
        facts[dd.dataset.field] = text(dd);
      }
      const models = {};
      for (const row of document.querySelectorAll("tr[data-model]")) {
        const cells = {};
        for (const td of row.querySelectorAll("td[data-field]")) cells[td.dataset.field] = text(td);
        models[row.dataset.model] = cells;
      }
      const workers = [...document.querySelectorAll("td[data-field=worker-state]")].map(text);
      const refresh = document.querySelector('meta[http-equiv="refresh"]');
      return {
        title: document.title,
        refresh: refresh ? refresh.getAttribute("content") : null,
        scripts: document.querySelectorAll("script").length,
        facts,
        models,
        workers,
        headings: [...document.querySelectorAll("h2")].map(text),
      };
    });
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(JSON.stringify({ status: response.status(), ...shown }));
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.error(`status page check failed: ${err.message}`);
  process.exitCode = 1;
});
