'use strict';
// The demo page (web/index.html at /): the four panels count the same
// messages, the old-browser toggle shows the fallback; screenshots go to
// test-artifacts/ (demo-1280.png, demo-phone.png).
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const L = require('./lib');

const T = ['ws', 'sse', 'longpoll', 'poll'];
const t = L.tap(4, 85000);

(async () => {
  let gw, browser, page, context;
  try {
    fs.mkdirSync(L.ARTIFACTS, { recursive: true });
    gw = await L.startGateway();
    browser = await L.launch();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    L.onCleanup(() => context.close());
    page = await context.newPage();
    page.on('pageerror', (e) => console.log('# page error: ' + e.message));
    await page.goto(gw.base + '/?channel=demo-test');
  } catch (e) {
    console.log('# setup failed: ' + (e && e.stack || e));
  }
  const snap = () => page.evaluate(() => window.demo.snapshot());

  await t.test('all four panels connect, each on its own transport', async () => {
    await L.waitFor(async () => {
      const s = await snap();
      return T.every((tr) => s[tr].state === 'open' && s[tr].transport === tr) && s.auto.state === 'open';
    }, 20000, 'the four panels to be open');
    // the page redraws four times a second
    await L.waitFor(async () => {
      for (const tr of T) {
        if (await page.textContent('.panel[data-transport=' + tr + '] [data-k=state]') !== 'open') return false;
      }
      return true;
    }, 5000, 'the panels to show open');
    assert.strictEqual((await snap()).auto.transport, 'ws', 'a modern browser: the auto client is on ws');
  });

  await t.test('publishing (box and auto-publish): all four panels count the same messages, no dup/order/gap', async () => {
    for (const text of ['hello', 'wörld ✓', 'third']) {
      await page.fill('#text', text);
      await page.press('#text', 'Enter');
    }
    await page.click('#rates button[data-rate="20"]');
    await L.waitFor(async () => parseInt(await page.textContent('#sent'), 10) >= 40, 15000, '40+ messages published');
    await page.click('#rates button[data-rate="0"]');
    // everything acked, then every panel has exactly that many
    const sent = await L.waitFor(async () => {
      const s = await page.textContent('#sent');
      return /^[0-9]+ published$/.test(s) ? Number(s.split(' ')[0]) : 0;
    }, 10000, 'all publishes acknowledged');
    await L.waitFor(async () => {
      const s = await snap();
      return T.every((tr) => s[tr].received === sent);
    }, 15000, 'every panel to count ' + sent);
    const s = await snap();
    await L.waitFor(async () => {
      for (const tr of T) {
        if (Number(await page.textContent('.panel[data-transport=' + tr + '] [data-k=received]')) !== sent) return false;
      }
      return true;
    }, 5000, 'the panels to show ' + sent);
    for (const tr of T) {
      assert.strictEqual(s[tr].received, sent, tr);
      assert.strictEqual(s[tr].dup + s[tr].order + s[tr].gaps, 0, tr + ' dup/order/gap');
      assert.strictEqual(s[tr].lastId, sent, tr + ' last id');
      assert(s[tr].p50 !== null && s[tr].p95 >= s[tr].p50, tr + ' latency');
      assert(s[tr].requests >= 1 && s[tr].bytes > 0, tr + ' requests/bytes');
      const shown = await page.textContent('.panel[data-transport=' + tr + '] [data-k=received]');
      assert.strictEqual(Number(shown), sent, tr + ' shown count');
    }
    assert.strictEqual(s.auto.received, sent, 'auto client');
    // let the sparklines and numbers settle, then the screenshot
    await L.sleep(600);
    await page.screenshot({ path: path.join(L.ARTIFACTS, 'demo-1280.png') });
  });

  await t.test('old-browser toggle: the auto client skips ws and sse and ends on long polling', async () => {
    await page.click('label.switch');
    await L.waitFor(async () => {
      const s = await snap();
      return s.auto.transport === 'longpoll' && s.auto.state === 'open';
    }, 15000, 'auto client on longpoll');
    const s = await snap();
    assert.deepStrictEqual(s.auto.skipped, ['ws', 'sse']);
    assert.strictEqual(await page.getAttribute('#autoline', 'data-transport'), 'longpoll');
    assert(await page.$('.step.skipped[data-step=ws]') && await page.$('.step.skipped[data-step=sse]'), 'chain shows skips');
    assert(await page.$('.step.active[data-step=longpoll]'), 'chain shows longpoll in use');
    await page.evaluate(() => window.demo.publish('chat', 'after the toggle'));
    await L.waitFor(async () => (await snap()).auto.received === 1, 10000, 'the auto client to receive');
    await L.sleep(300);
    await page.screenshot({ path: path.join(L.ARTIFACTS, 'demo-1280-old.png') });
  });

  await t.test('phone width: one column, nothing wider than the screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await L.sleep(400);
    const m = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
      cols: getComputedStyle(document.getElementById('panels')).gridTemplateColumns.split(' ').length,
    }));
    assert.strictEqual(m.cols, 1, 'one column');
    assert(m.scroll <= m.client, 'no horizontal scroll: ' + JSON.stringify(m));
    await page.screenshot({ path: path.join(L.ARTIFACTS, 'demo-phone.png'), fullPage: true });
  });

  await t.done();
})();
