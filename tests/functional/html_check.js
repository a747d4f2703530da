// Drives headless Chromium (playwright-core, the browser at CHROMIUM) through a gilscope HTML
// page: `node html_check.js PAGE OUTDIR`. Prints one JSON object of what it saw; screenshots go
// to OUTDIR. test_html_page.py makes the assertions.
const path = require('path');
const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');
(async () => {
  const [page, outdir] = process.argv.slice(2);
  const b = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const r = { console: [], dialogs: [], requests: [] };
  try {
    const p = await b.newPage({ viewport: { width: 1366, height: 768 } });
    p.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') r.console.push(m.type() + ': ' + m.text()); });
    p.on('pageerror', (e) => r.console.push('pageerror: ' + e));
    p.on('dialog', (d) => { r.dialogs.push(d.message()); d.dismiss(); });
    p.on('request', (q) => { if (!q.url().startsWith('file:')) r.requests.push(q.url()); });
    await p.goto('file://' + path.resolve(page));
    await p.waitForSelector('body[data-ready]', { timeout: 20000 });
    await p.screenshot({ path: path.join(outdir, 'page-top.png') });
    await p.screenshot({ path: path.join(outdir, 'page-full.png'), fullPage: true });
    const dom = () => p.evaluate(() => ({
      rows: [...document.querySelectorAll('#threads tr.thread')].map((tr) => ({
        tid: +tr.dataset.tid, name: tr.children[1].textContent, bar: tr.querySelectorAll('.bar span').length,
      })),
      groups: document.querySelectorAll('#threads tbody').length,
      tags: [...new Set([...document.querySelectorAll('*')].map((e) => e.tagName.toLowerCase()))],
      scripts: document.querySelectorAll('script').length,
      text: document.body.innerText,
      verdict: [...document.querySelectorAll('#verdict p')].map((e) => e.textContent),
      scrollWidth: document.documentElement.scrollWidth,
      csp: (document.querySelector('meta[http-equiv="Content-Security-Policy"]') || {}).content || null,
    }));
    Object.assign(r, await dom());
    // sorting: by Held % (column 3) down, then up, then by Name
    const col = (k) => p.evaluate((k) => [...document.querySelectorAll('#threads tbody')].map((tb) =>
      [...tb.querySelectorAll('tr.thread')].map((tr) => tr.children[k].dataset.v)), k);
    await p.click('#threads th[data-col="3"]');
    r.held_first = await col(3);
    await p.click('#threads th[data-col="3"]');
    r.held_second = await col(3);
    await p.click('#threads th[data-col="1"]');
    r.name_sorted = await col(1);
    r.aria = await p.$eval('#threads th[data-col="1"]', (th) => th.getAttribute('aria-sort'));
    // a click on the last row finds its track: selected, and the track in the viewport
    const rows = await p.$$('#threads tr.thread');
    const last = rows[rows.length - 1];
    const tid = await last.evaluate((tr) => +tr.dataset.tid);
    await last.click();
    await p.waitForTimeout(200);
    r.clicked = tid;
    r.track = await p.evaluate((tid) => {
      const cv = document.getElementById('tl'), rc = cv.getBoundingClientRect();
      return { sel: +cv.dataset.sel, top: rc.top, bottom: rc.bottom, rows: +cv.dataset.rows, drawn: +cv.dataset.drawn,
        inner: window.innerHeight, selected: document.querySelectorAll('tr.thread.sel').length };
    }, tid);
    await p.screenshot({ path: path.join(outdir, 'page-row-clicked.png') });
    // flame graphs: height = depth rows, root drawn in the canvas's first row
    r.flames = await p.evaluate(() => [...document.querySelectorAll('#flames canvas')].map((c) => {
      const px = c.getContext('2d').getImageData(4, 4, 1, 1).data;
      return { kind: c.dataset.kind, depth: +c.dataset.depth, height: c.height, width: c.width, root_alpha: px[3] };
    }));
    const first = await p.$('#flames canvas');
    if (first) {
      await first.scrollIntoViewIfNeeded();
      r.flame_visible = await first.evaluate((c) => { const b = c.getBoundingClientRect(); return b.top >= 0 && b.top + 17 <= window.innerHeight; });
      await p.fill('#fsearch', process.env.SEARCH || 'spin');
      r.search_note = await p.$eval('#flames .ftool .hint:last-child', (e) => e.textContent);
      const box = await first.boundingBox();
      await p.mouse.click(box.x + box.width / 2, box.y + 17 + 8); // a frame in the second row: zoom
      r.zoomed = true;
      await p.screenshot({ path: path.join(outdir, 'flame-zoomed.png') });
    }
  } catch (e) {
    r.error = String(e && e.stack || e);
  }
  await b.close();
  process.stdout.write(JSON.stringify(r));
})();
