'use strict';
// The demo page (web/index.html at /): the four panels count the same
// messages; each panel's "drop the connection" resumes with nothing lost;
// the gateway's cost per technique (from /metrics) and the latency chart
// are drawn; two tabs of one browser both keep every message (six HTTP
// connections per host for both); the old-browser toggle shows the
// fallback; screenshots go to test-artifacts/ (demo-1280.png,
// demo-phone.png).
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const L = require('./lib');

const T = ['ws', 'sse', 'longpoll', 'poll'];
const t = L.tap(7, 150000);

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
  });

  // settled: every message acknowledged and counted by every panel, and
  // nothing lost, doubled, reordered or gapped
  async function settled(pg, what) {
    const sent = await L.waitFor(async () => {
      const s = await pg.textContent('#sent');
      return /^[0-9]+ published$/.test(s) ? Number(s.split(' ')[0]) : 0;
    }, 10000, what + ': all publishes acknowledged');
    return sent;
  }
  // what the demo channel stored: its last id, read from the gateway
  const lastId = async () => JSON.parse((await L.httpReq('GET', gw.base + '/channels/demo-test/info')).body).last_id;
  // the messages stored since `before`, once the channel stands still:
  // a tab's "N published" can be read while its last publish is on its way
  async function storedSince(before, what) {
    let total = -1;
    await L.waitFor(async () => {
      await L.sleep(500);
      const n = (await lastId()) - before;
      const still = n === total;
      total = n;
      return still;
    }, 15000, what + ': the channel to stand still');
    return total;
  }
  async function allCount(pg, want, what) {
    // 30 s: the short-poll panel and the publishes take turns on one
    // connection per tab, which a loaded CI machine slows down
    try {
      await L.waitFor(async () => {
        const s = await pg.evaluate(() => window.demo.snapshot());
        return T.every((tr) => s[tr].received === want && s[tr].state === 'open');
      }, 30000, what + ': every panel open and counting ' + want);
    } catch (e) {
      const s = await pg.evaluate(() => window.demo.snapshot());
      const seen = T.map((tr) => tr + ' ' + s[tr].state + ' ' + s[tr].received).join(', ');
      throw new Error(e.message + ' (panels: ' + seen + ')');
    }
    const s = await pg.evaluate(() => window.demo.snapshot());
    for (const tr of T) {
      assert.strictEqual(s[tr].lost + s[tr].dup + s[tr].order + s[tr].gaps, 0,
        what + ': ' + tr + ' lost/dup/order/gap ' + JSON.stringify(s[tr]));
    }
    return s;
  }

  await t.test('drop the connection: each panel closes and reconnects, resumes from its cursor, nothing lost', async () => {
    await page.click('#reset');
    const before = await lastId();
    await page.click('#rates button[data-rate="20"]');
    await L.waitFor(async () => parseInt(await page.textContent('#sent'), 10) >= 5, 5000, 'publishing');
    // each panel looked at right after its own click: a drop lasts 1.5 s,
    // which four clicks on a loaded machine can outlast
    for (const tr of T) {
      await page.click('.panel[data-transport=' + tr + '] [data-k=drop]');
      const during = await page.evaluate((tr) => window.demo.snapshot()[tr], tr);
      assert.strictEqual(during.dropping, true, tr + ' dropping');
      assert.strictEqual(during.state, 'closed', tr + ' closed while dropped');
    }
    const atDrop = parseInt(await page.textContent('#sent'), 10);
    await L.waitFor(async () => {
      const s = await page.evaluate(() => window.demo.snapshot());
      return T.every((tr) => !s[tr].dropping && s[tr].state === 'open');
    }, 10000, 'every panel back');
    const atBack = parseInt(await page.textContent('#sent'), 10);
    assert(atBack - atDrop >= 10, 'messages were published while the panels were away: ' + (atBack - atDrop));
    await L.sleep(500);
    await page.click('#rates button[data-rate="0"]');
    const sent = await settled(page, 'drop');
    const total = await storedSince(before, 'drop');
    assert(total >= sent && total <= sent + 2, 'stored ' + total + ', acknowledged ' + sent);
    const s = await allCount(page, total, 'drop');
    for (const tr of T) assert.strictEqual(s[tr].drops, 1, tr + ' drops');
    assert.strictEqual(await page.textContent('.panel[data-transport=ws] [data-k=errors]'), '0 · 0 · 0 · 0');
  });

  await t.test('gateway cost per technique from /metrics, and the latency chart', async () => {
    const g = await L.waitFor(async () => {
      const x = await page.evaluate(() => window.demo.gateway());
      return T.every((tr) => x[tr] && x[tr].requests > 0 && x[tr].bytes > 0 && x[tr].cpuUs > 0) && x;
    }, 8000, 'the gateway cost of the four transports');
    // a held stream serves many messages per request; short polling many
    // requests per message at this rate; long polling about one per batch
    assert(g.ws.requests < 1 && g.sse.requests < 1, 'ws and sse: less than a request per message ' + JSON.stringify(g));
    for (const tr of T) {
      assert(g[tr].bytes >= 50, tr + ' bytes per message ' + g[tr].bytes);
      const shown = await page.textContent('.panel[data-transport=' + tr + '] [data-k=gwbytes]');
      assert(/^[0-9]+ B$/.test(shown), tr + ' shows gateway bytes: ' + shown);
    }
    const lat = await L.waitFor(async () => {
      const x = await page.evaluate(() => window.demo.latency());
      return T.every((tr) => x[tr].some((v) => v !== null)) && x;
    }, 5000, 'a latency point for every technique');
    for (const tr of T) assert(lat[tr].every((v) => v === null || v >= 0), tr + ' latencies');
    const inked = await page.evaluate(() => {
      const c = document.getElementById('lat');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
      return n;
    });
    assert(inked > 100, 'the chart has lines: ' + inked + ' pixels');
    // something to draw: 30 more messages at 20 a second, then every
    // panel showing all of them (the page redraws four times a second)
    const from = parseInt(await page.textContent('#sent'), 10);
    await page.click('#rates button[data-rate="20"]');
    await L.waitFor(async () => parseInt(await page.textContent('#sent'), 10) >= from + 30, 15000, '30 more published');
    await page.click('#rates button[data-rate="0"]');
    const shot = await settled(page, 'screenshot');
    // a timeout names the panel behind; 10 s, as the CI box runs other
    // tests meanwhile (the short-poll panel asks once a second, a long
    // poll asks again after each reply)
    await L.waitFor(async () => {
      const got = {};
      for (const tr of T) got[tr] = Number(await page.textContent('.panel[data-transport=' + tr + '] [data-k=received]'));
      if (T.every((tr) => got[tr] === shot)) return true;
      throw new Error(shot + ' published, received ' + JSON.stringify(got));
    }, 10000, 'every panel to show every message');
    await page.screenshot({ path: path.join(L.ARTIFACTS, 'demo-1280.png'), fullPage: true });
  });

  // Counts the HTTP connections a page uses at once: XMLHttpRequests from
  // send() to their end, EventSources from creation to close. (WebSockets
  // have a pool of their own in Chromium.)
  function countConnections() {
    var X = window.XMLHttpRequest, ES = window.EventSource, c = { live: 0, max: 0 };
    function up() { c.live++; if (c.live > c.max) c.max = c.live; }
    window.__connections = c;
    window.XMLHttpRequest = function () {
      var x = new X(), busy = false, send = x.send, abort = x.abort;
      function down() { if (busy) { busy = false; c.live--; } }
      x.addEventListener('readystatechange', function () { if (x.readyState === 4) down(); });
      x.send = function () { busy = true; up(); return send.apply(x, arguments); };
      x.abort = function () { var r = abort.apply(x, arguments); down(); return r; };
      return x;
    };
    window.EventSource = function (url, opts) {
      var e = new ES(url, opts), open = true, close = e.close;
      up();
      function down() { if (open) { open = false; c.live--; } }
      e.close = function () { down(); return close.apply(e, arguments); };
      e.addEventListener('error', function () { if (e.readyState === 2) down(); });
      return e;
    };
  }

  await t.test('two tabs side by side: both count every message of both, each tab uses 3 of the 6 connections', async () => {
    await context.addInitScript(countConnections);
    await page.reload();
    const page2 = await context.newPage();
    page2.on('pageerror', (e) => console.log('# page 2 error: ' + e.message));
    await page2.goto(gw.base + '/?channel=demo-test');
    for (const pg of [page, page2]) {
      await L.waitFor(async () => {
        const s = await pg.evaluate(() => window.demo.snapshot());
        return T.every((tr) => s[tr].state === 'open') && s.auto.state === 'open';
      }, 15000, 'both tabs open');
    }
    // what the gateway stores from here on is what each panel must count:
    // a tab's "N published" can be read while its last publish is still
    // on its way, so it may lag the channel by one
    await page.click('#reset');
    await page2.click('#reset');
    const before = await lastId();
    await page.click('#rates button[data-rate="20"]');
    await page2.click('#rates button[data-rate="5"]');
    for (const text of ['from tab 2', 'and again']) {
      await page2.fill('#text', text);
      await page2.press('#text', 'Enter');
    }
    // both tabs publishing at once, until 40 and more are out (at 20 and
    // 5 a second, about 2 s; waited for, not slept for)
    const sentOf = async (pg) => parseInt(await pg.textContent('#sent'), 10);
    await L.waitFor(async () => await sentOf(page) >= 32 && await sentOf(page2) >= 10, 15000, 'both tabs publishing');
    await page.click('#rates button[data-rate="0"]');
    await page2.click('#rates button[data-rate="0"]');
    const acked = await settled(page, 'tab 1') + await settled(page2, 'tab 2');
    assert(acked >= 40, 'published ' + acked);
    // once the channel stands still, every publish has been stored
    const total = await storedSince(before, 'two tabs');
    assert(total >= acked && total <= acked + 2, 'stored ' + total + ', acknowledged ' + acked);
    await allCount(page, total, 'tab 1');
    await allCount(page2, total, 'tab 2');
    // Chromium keeps six HTTP/1.1 connections per host for all its tabs:
    // SSE and long polling hold one each, everything else takes turns
    for (const [pg, name] of [[page, 'tab 1'], [page2, 'tab 2']]) {
      const c = await pg.evaluate(() => window.__connections);
      assert(c && c.max <= 3, name + ' used ' + JSON.stringify(c) + ' HTTP connections at once, more than 3');
    }
    // the gateway cost shows in the second tab too (its /metrics reads get
    // through); since its reset, ws and sse opened no connection: 0 requests
    await L.waitFor(async () => {
      const x = await page2.evaluate(() => window.demo.gateway());
      return T.every((tr) => x[tr] && x[tr].bytes > 0 && x[tr].requests >= 0);
    }, 8000, 'the gateway cost in tab 2');
    await page2.close();
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
