// Drives the browser console (served at / by the HTTP gateway) in headless Chromium:
// sample a grid, adapt with live progress over Server-Sent Events, invert a photo, sweep
// a text edit over the inversion, then save a screenshot.
// Usage: node console_test.js HTTP_PORT PHOTO_PNG SCREENSHOT_PNG
const { chromium } = require("playwright-core");

const [port, photo, screenshot] = process.argv.slice(2);
const base = `http://127.0.0.1:${port}/`;

function fail(message) {
  console.error("FAIL: " + message);
  process.exit(1);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("requestfailed", (r) => {
    if (!r.url().startsWith(base)) pageErrors.push("the page reached outside the server: " + r.url());
  });
  try {
    await page.goto(base);
    await page.waitForFunction(() => document.querySelectorAll("#model option").length > 0, null, { timeout: 20000 });
    await page.selectOption("#model", "demo");

    console.log("--- sample");
    await page.fill("#seeds", "1-8");
    await page.click("#sample-go");
    await page.waitForFunction(() => document.querySelectorAll("#sample-grid img").length === 8, null, { timeout: 60000 });

    console.log("--- adapt, following the job's Server-Sent Events");
    await page.fill("#adapt-iterations", "6");
    await page.fill("#adapt-preview", "2");
    await page.fill("#adapt-name", "demo-console");
    await page.click("#adapt-go");
    await page.waitForFunction(() => /succeeded: new model demo-console/.test(document.querySelector("#adapt-status").textContent),
                               null, { timeout: 300000 }).catch(async () => {
      fail("adaptation did not finish: status '" + await page.textContent("#adapt-status") + "', error '" +
           await page.textContent("#adapt-error") + "'");
    });
    const progress = await page.$eval("#adapt-progress", (p) => [p.value, p.max]);
    if (progress[0] !== 6 || progress[1] !== 6) fail("progress bar at " + progress.join("/"));
    if (await page.$$eval("#adapt-previews img", (imgs) => imgs.length) === 0) fail("no preview images");
    if (!/total \d/.test(await page.textContent("#adapt-losses"))) fail("no loss terms shown");
    if (!(await page.$$eval("#model option", (o) => o.map((x) => x.value))).includes("demo-console")) {
      fail("the adapted model is not offered after the job");
    }

    console.log("--- invert an uploaded photo");
    await page.setInputFiles("#invert-file", photo);
    await page.fill("#invert-steps", "20");
    await page.click("#invert-go");
    await page.waitForFunction(() => document.querySelectorAll("#invert-grid img").length === 1, null, { timeout: 180000 })
        .catch(async () => fail("inversion: " + await page.textContent("#invert-error")));

    console.log("--- sweep a text edit over the inversion");
    await page.selectOption("#edit-input", "inversion");
    await page.fill("#edit-clip", "demo-clip");
    await page.fill("#edit-beta", "0.01");
    await page.fill("#edit-alphas", "-3,0,3");
    await page.click("#edit-go");
    await page.waitForFunction(() => document.querySelectorAll("#edit-grid img").length === 3, null, { timeout: 120000 })
        .catch(async () => fail("edit: " + await page.textContent("#edit-error")));
    if (!/S channels moved/.test(await page.textContent("#edit-status"))) fail("no moved-channel count");

    console.log("--- an error is shown, not thrown");
    await page.fill("#seeds", "1-3");
    await page.evaluate(() => { const o = document.createElement("option"); o.value = "no-such-model"; o.textContent = "x";
                                document.querySelector("#model").appendChild(o); });
    await page.selectOption("#model", "no-such-model");
    await page.click("#sample-go");
    await page.waitForFunction(() => /NOT_FOUND/.test(document.querySelector("#sample-error").textContent), null,
                               { timeout: 20000 }).catch(() => fail("an unknown model's error was not shown"));
    await page.selectOption("#model", "demo");
    await page.click("#sample-go");
    await page.waitForFunction(() => document.querySelectorAll("#sample-grid img").length === 3, null, { timeout: 60000 });

    await page.screenshot({ path: screenshot, fullPage: true });
    if (pageErrors.length) fail("page errors: " + pageErrors.join("; "));
    console.log("console: all checks passed; screenshot " + screenshot);
  } finally {
    await browser.close();
  }
})().catch((e) => fail(e.stack || String(e)));
