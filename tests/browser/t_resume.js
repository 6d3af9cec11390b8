'use strict';
// Resume in headless Chromium, every transport pinned: a network drop
// (the proxy cuts every connection and refuses new ones for a while) loses
// nothing; a link that goes silent is noticed after two heartbeats; a
// gateway restart on the same port is reported as a gap, not hidden.
const assert = require('assert');
const L = require('./lib');

const T = ['ws', 'sse', 'longpoll', 'poll'];
const t = L.tap(3, 85000);
const fast = { openTimeout: 3000, reconnectDelay: 200, reconnectDelayMax: 1000, pollInterval: 200, requestTimeout: 3000 };

function ids(r, ch) { return r.msgs.filter((m) => m.ch === ch).map((m) => m.id); }
function range(a, b) { const o = []; for (let i = a; i <= b; i++) o.push(i); return o; }

async function makeAll(page, base, channel, opts) {
  await page.evaluate(([b, ch, o]) => {
    ['ws', 'sse', 'longpoll', 'poll'].forEach(function (tr) {
      window.mk(tr, b, ch, Object.assign({ transports: [tr] }, o));
    });
  }, [base, channel, opts]);
  await L.waitFor(async () => {
    for (const tr of T) if ((await L.rec(page, tr)).readyState !== 'open') return false;
    return true;
  }, 15000, 'all four clients to open');
}

async function allHave(page, n, ch, ms) {
  await L.waitFor(async () => {
    for (const tr of T) if (ids(await L.rec(page, tr), ch).length < n) return false;
    return true;
  }, ms || 15000, 'every client to have ' + n + ' messages').catch(async (e) => {
    for (const tr of T) {
      const r = await L.rec(page, tr);
      console.log('# ' + tr + ': ' + ids(r, ch).join(',') + ' state ' + r.readyState + ' events ' + r.events.join(' '));
    }
    throw e;
  });
}

async function closeAll(page) {
  await page.evaluate(() => { Object.keys(window.R).forEach(function (k) { window.R[k].c.close(); }); window.R = {}; });
}

(async () => {
  let browser, page, gw;
  try {
    browser = await L.launch();
    gw = await L.startGateway(['--heartbeat', '1']);
    ({ page } = await L.clientPage(browser, gw.base));
    await L.installRecorder(page);
  } catch (e) {
    console.log('# setup failed: ' + (e && e.stack || e));
  }

  await t.test('network drop (connections cut, none possible for a while): every transport resumes, nothing lost', async () => {
    const proxy = await new L.Proxy(gw.base).listen();
    await makeAll(page, proxy.base, 'drop', fast);
    for (let i = 1; i <= 10; i++) await L.publish(gw.base, 'drop', 'score', i);
    await allHave(page, 10, 'drop');
    proxy.down = true;
    proxy.cut();
    for (let i = 11; i <= 20; i++) await L.publish(gw.base, 'drop', 'score', i);
    // every client notices and tries again while the network is away
    await L.waitFor(async () => {
      for (const tr of T) if ((await L.rec(page, tr)).events.indexOf('reconnecting:' + tr) < 0) return false;
      return true;
    }, 15000, 'every client to be reconnecting');
    proxy.down = false;
    for (let i = 21; i <= 25; i++) await L.publish(gw.base, 'drop', 'score', i);
    await allHave(page, 25, 'drop');
    await L.sleep(300);
    for (const tr of T) {
      const r = await L.rec(page, tr);
      assert.deepStrictEqual(ids(r, 'drop'), range(1, 25), tr);
      assert.strictEqual(r.gaps.length, 0, tr + ': no gap');
      assert.strictEqual(r.transport, tr, tr + ': stayed on its transport');
      assert(r.opens >= 2, tr + ': opened again');
    }
    await closeAll(page);
  });

  await t.test('a link that goes silent (frozen, not closed) is noticed and reopened; nothing lost', async () => {
    const proxy = await new L.Proxy(gw.base).listen();
    // the gateway's heartbeat is 1 s: ws notices after 2 beats + slack;
    // the HTTP transports by their request timeout
    await makeAll(page, proxy.base, 'frozen', Object.assign({}, fast, { longpollTimeout: 2 }));
    for (let i = 1; i <= 5; i++) await L.publish(gw.base, 'frozen', 'score', i);
    await allHave(page, 5, 'frozen');
    const opens = {};
    for (const tr of T) opens[tr] = (await L.rec(page, tr)).opens;
    proxy.freeze();
    for (let i = 6; i <= 10; i++) await L.publish(gw.base, 'frozen', 'score', i);
    await allHave(page, 10, 'frozen', 20000);
    for (const tr of T) {
      const r = await L.rec(page, tr);
      assert.deepStrictEqual(ids(r, 'frozen'), range(1, 10), tr);
      if (tr === 'ws' || tr === 'sse') assert(r.opens > opens[tr], tr + ' reopened after the silence');
    }
    await closeAll(page);
  });

  await t.test('gateway restarted on the same port: every transport reconnects and reports a gap', async () => {
    await makeAll(page, gw.base, 'rs', fast);
    for (let i = 1; i <= 10; i++) await L.publish(gw.base, 'rs', 'score', i);
    await allHave(page, 10, 'rs');
    await gw.restart();
    // history was in memory: ids start again at 1
    for (let i = 1; i <= 5; i++) await L.publish(gw.base, 'rs', 'note', 100 + i);
    await L.waitFor(async () => {
      for (const tr of T) {
        const r = await L.rec(page, tr);
        if (r.msgs.length < 15 || r.readyState !== 'open') return false;
      }
      return true;
    }, 20000, 'every client to get the 5 new messages').catch(async (e) => {
      for (const tr of T) {
        const r = await L.rec(page, tr);
        console.log('# ' + tr + ': ' + ids(r, 'rs').join(',') + ' gaps ' + JSON.stringify(r.gaps) + ' events ' + r.events.join(' '));
      }
      throw e;
    });
    for (const tr of T) {
      const r = await L.rec(page, tr);
      assert.deepStrictEqual(ids(r, 'rs'), range(1, 10).concat(range(1, 5)), tr);
      assert.deepStrictEqual(r.msgs.slice(10).map((m) => m.data), [101, 102, 103, 104, 105], tr + ' new data');
      assert.strictEqual(r.gaps.length, 1, tr + ': one gap');
      assert.strictEqual(r.gaps[0].channel, 'rs');
      assert.strictEqual(Number(r.gaps[0].last_seen), 10, tr + ' last_seen');
      assert.notStrictEqual(r.msgs[10].epoch, r.msgs[0].epoch, tr + ': the restarted channel has a new epoch');
      assert.strictEqual(r.gaps[0].epoch, r.msgs[10].epoch, tr + ' gap epoch');
      assert.strictEqual(r.cursor, r.msgs[10].epoch + ':5', tr + ' cursor');
      // the restart ends held streams; a poll may fall between two requests
      if (tr === 'ws' || tr === 'sse') assert(r.events.indexOf('reconnecting:' + tr) >= 0, tr + ' said reconnecting');
    }
  });

  await t.done();
})();
