// Opens a speedscope file in speedscope's own app (offline, from the npm package) in headless
// Chromium: `node speedscope_open.js APP_INDEX_HTML PROFILE.json SCREENSHOT.png`. Prints
// {"errors": [...], "text": "..."}: console errors and the page's text once loaded.
const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');
(async () => {
  const [app, profile, shot] = process.argv.slice(2);
  const b = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const r = { errors: [], text: '' };
  try {
    const p = await b.newPage({ viewport: { width: 1366, height: 768 } });
    p.on('console', (m) => { if (m.type() === 'error') r.errors.push(m.text()); });
    p.on('pageerror', (e) => r.errors.push(String(e)));
    await p.goto('file://' + app);
    await p.waitForSelector('input[type=file]', { state: 'attached' });
    await p.setInputFiles('input[type=file]', profile);
    await p.waitForFunction(() => /\(1\/\d+\)/.test(document.body.innerText), null, { timeout: 20000 });
    r.text = await p.evaluate(() => document.body.innerText);
    await p.screenshot({ path: shot });
  } catch (e) {
    r.errors.push(String(e && e.stack || e));
  }
  await b.close();
  process.stdout.write(JSON.stringify(r));
})();
