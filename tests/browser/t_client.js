'use strict';
// web/anypush.js in headless Chromium against the real gateway: each
// transport pinned receives a published sequence exactly and in order;
// publish acks; several channels on one connection; since=.
const assert = require('assert');
const L = require('./lib');

const T = ['ws', 'sse', 'longpoll', 'poll'];
const t = L.tap(8, 85000);

function checkSeq(r, channel, from, to, what) {
  const got = r.msgs.filter((m) => m.ch === channel).map((m) => m.id);
  const want = [];
  for (let i = from; i <= to; i++) want.push(i);
  assert.deepStrictEqual(got, want, what + ': ids on ' + channel);
}

async function closeAll(page) {
  await page.evaluate(() => { Object.keys(window.R).forEach(function (k) { window.R[k].c.close(); }); });
}

(async () => {
  let gw, browser, page;
  const N = 40;
  const fast = { pollInterval: 200, openTimeout: 5000, reconnectDelay: 200, reconnectDelayMax: 2000 };
  // What a recorded client has (L.rec) when it is short of `want`.
  const behind = (r, want) => new Error(r.msgs.length + ' of ' + want + ' messages, the last ' +
    JSON.stringify(r.msgs.slice(-2).map((m) => m.ch + ':' + m.id)) + ', cursor ' + r.cursor + ', ' +
    r.readyState + ' on ' + r.transport + ', stats ' + JSON.stringify(r.stats) + ', opens ' + r.opens +
    ', errors ' + JSON.stringify((r.errors || []).slice(-3)) + ', gaps ' + r.gaps.length);

  try {
    gw = await L.startGateway();
    browser = await L.launch();
    ({ page } = await L.clientPage(browser, gw.base));
    await L.installRecorder(page);
    for (const tr of T) {
      await page.evaluate(([k, b, o]) => window.mk(k, b, 'seq', o), [tr, gw.base, Object.assign({ transports: [tr] }, fast)]);
    }
    await L.waitFor(async () => {
      for (const tr of T) if ((await L.rec(page, tr)).readyState !== 'open') return false;
      return true;
    }, 20000, 'all four pinned clients to open');
    // a mix of event names, data types and a non-ASCII string
    for (let i = 1; i <= N; i++) {
      const ev = i % 3 === 0 ? 'score' : (i % 3 === 1 ? 'message' : 'note');
      const data = i % 4 === 0 ? 'text ' + i + ' é✓' : { n: i, list: [i, i * 2], nested: { ok: true } };
      await L.publish(gw.base, 'seq', ev, data);
    }
  } catch (e) {
    console.log('# setup failed: ' + (e && e.stack || e));
  }

  for (const tr of T) {
    await t.test(tr + ' pinned: receives ' + N + ' messages exactly, in order', async () => {
      assert(page, 'no page');
      await L.waitFor(async () => (await L.rec(page, tr)).msgs.length >= N, 20000, tr + ' to get ' + N + ' messages');
      await L.sleep(300); // anything extra would show up now
      const r = await L.rec(page, tr);
      checkSeq(r, 'seq', 1, N, tr);
      assert.strictEqual(r.transport, tr);
      assert.deepStrictEqual(r.transports, [tr]);
      assert.strictEqual(r.gaps.length, 0, 'no gap');
      assert.strictEqual(r.stats.duplicates, 0, 'no duplicates');
      for (const m of r.msgs) {
        const i = m.id;
        const ev = i % 3 === 0 ? 'score' : (i % 3 === 1 ? 'message' : 'note');
        assert.strictEqual(m.ev, ev, 'event of ' + i);
        if (i % 4 === 0) assert.strictEqual(m.data, 'text ' + i + ' é✓');
        else assert.deepStrictEqual(m.data, { n: i, list: [i, i * 2], nested: { ok: true } });
      }
      assert(r.stats.bytes > 0 && r.stats.requests > 0, 'stats count: ' + JSON.stringify(r.stats));
      assert(/^[A-Za-z0-9_-]{1,64}$/.test(r.id), 'client id ' + r.id);
    });
  }

  await t.test('publish from the browser: ack carries the id; every transport gets it; a dead gateway times out', async () => {
    const res = await page.evaluate((base) => new Promise((resolve) => {
      const ch = window.R.ws.chs.seq;
      ch.publish('score', { from: 'browser' }, function (err, id, epoch) {
        const c2 = anypush.connect('http://127.0.0.1:1', { ackTimeout: 1500 });
        c2.publish('x', 'note', 1, function (err2) { resolve({ err: err, id: id, epoch: epoch, err2: err2 }); });
      });
    }), gw.base);
    assert.strictEqual(res.err, null);
    assert.strictEqual(res.id, N + 1);
    assert.strictEqual(res.epoch, (await L.rec(page, 'ws')).msgs[0].epoch, 'the ack names the epoch');
    assert(res.err2 && (res.err2.code === 'network' || res.err2.code === 'timeout'), 'error for a dead gateway: ' + JSON.stringify(res.err2));
    for (const tr of T) {
      await L.waitFor(async () => (await L.rec(page, tr)).msgs.length === N + 1, 10000, tr + ' to get the browser publish');
      const m = (await L.rec(page, tr)).msgs[N];
      assert.deepStrictEqual(m.data, { from: 'browser' });
    }
    // from: the publisher's client id
    const env = await page.evaluate(() => new Promise((resolve) => {
      window.R.ws.chs.seq.on('*', function (m) { resolve({ from: m.from, id: window.R.ws.c.id }); });
      window.R.ws.chs.seq.publish('score', 1);
    }));
    assert.strictEqual(env.from, env.id, 'from is the client id');
    const bad = await page.evaluate(() => new Promise((resolve) => {
      window.R.ws.c.publish('seq', 'note', 'x'.repeat(70000), function (err) { resolve(err); });
    }));
    assert.strictEqual(bad && bad.code, 'too_large');
  });

  await t.test('several channels share one connection per client (composite cursor), adding one resumes without loss', async () => {
    // Chromium allows 6 HTTP/1.1 connections per origin: close what the
    // earlier tests held open
    await closeAll(page);
    await page.evaluate(([b, o]) => {
      ['ws', 'sse', 'longpoll', 'poll'].forEach(function (tr) {
        window.mk('m-' + tr, b, ['ma', 'mb'], Object.assign({ transports: [tr] }, o));
      });
    }, [gw.base, fast]);
    await L.waitFor(async () => {
      for (const tr of T) if ((await L.rec(page, 'm-' + tr)).readyState !== 'open') return false;
      return true;
    }, 20000, 'multi-channel clients to open');
    for (const tr of ['ws', 'sse']) {
      assert.strictEqual((await L.rec(page, 'm-' + tr)).stats.requests, 1, tr + ': one connection for two channels');
    }
    for (let i = 1; i <= 5; i++) {
      await L.publish(gw.base, 'ma', 'note', i);
      await L.publish(gw.base, 'mb', 'note', i);
    }
    // add a third channel to each running client while messages flow
    await page.evaluate(() => {
      ['ws', 'sse', 'longpoll', 'poll'].forEach(function (tr) {
        const r = window.R['m-' + tr];
        const ch = r.c.subscribe('mc');
        ch.on('note', function (data, m) { r.msgs.push({ ch: m.channel, epoch: m.epoch, id: m.id, ev: m.event, data: data }); });
      });
    });
    for (let i = 6; i <= 10; i++) {
      await L.publish(gw.base, 'ma', 'note', i);
      await L.publish(gw.base, 'mb', 'note', i);
    }
    await L.waitFor(async () => {
      for (const tr of T) if ((await L.rec(page, 'm-' + tr)).readyState !== 'open') return false;
      return true;
    }, 20000, 'multi-channel clients to reopen');
    for (let i = 1; i <= 3; i++) await L.publish(gw.base, 'mc', 'note', i);
    for (const tr of T) {
      // a timeout says where the client stands, not only that it is behind
      await L.waitFor(async () => {
        const r = await L.rec(page, 'm-' + tr);
        if (r.msgs.length >= 23) return true;
        throw behind(r, 23);
      }, 15000, tr + ' to get 23 messages');
      const r = await L.rec(page, 'm-' + tr);
      checkSeq(r, 'ma', 1, 10, tr);
      checkSeq(r, 'mb', 1, 10, tr);
      checkSeq(r, 'mc', 1, 3, tr);
      assert.strictEqual(r.gaps.length, 0, tr + ': no gap');
      const ep = (ch) => r.msgs.find((m) => m.ch === ch).epoch;
      assert.strictEqual(r.cursor, ep('ma') + ':10,' + ep('mb') + ':10,' + ep('mc') + ':3', tr + ': composite cursor');
    }
  });

  await t.test('since: 0 replays history; since: N or EPOCH:N resumes after N; a gap is reported when history is gone or of another epoch', async () => {
    await closeAll(page);
    const last = N + 2; // two browser publishes above (the too_large one was refused)
    const epoch = JSON.parse((await L.httpReq('GET', gw.base + '/channels/seq/info')).body).epoch;
    assert(/^[0-9a-z]{1,13}$/.test(epoch), 'info epoch ' + epoch);
    const cursorIs = async (k, want) => assert.strictEqual((await L.rec(page, k)).cursor, want, k + ' cursor');
    for (const tr of T) {
      await page.evaluate(([b, o, tr, e]) => {
        window.mk('s0-' + tr, b, 'seq', Object.assign({ transports: [tr] }, o), { since: 0 });
        // a plain id is of the current epoch; a cursor the gateway gave
        // carries it
        window.mk('s30-' + tr, b, 'seq', Object.assign({ transports: [tr] }, o), { since: '30' });
        window.mk('e30-' + tr, b, 'seq', Object.assign({ transports: [tr] }, o), { since: e + ':30' });
        // a cursor the gateway never issued: it must say gap, then replay
        window.mk('s999-' + tr, b, 'seq', Object.assign({ transports: [tr] }, o), { since: 999 });
        // a cursor of another incarnation of the channel: the same
        window.mk('old-' + tr, b, 'seq', Object.assign({ transports: [tr] }, o), { since: 'zzz1:5' });
      }, [gw.base, fast, tr, epoch]);
      await L.waitFor(async () => (await L.rec(page, 's0-' + tr)).msgs.length >= last, 15000, tr + ' since=0');
      checkSeq(await L.rec(page, 's0-' + tr), 'seq', 1, last, tr + ' since=0');
      for (const k of ['s30-', 'e30-']) {
        await L.waitFor(async () => (await L.rec(page, k + tr)).msgs.length >= last - 30, 15000, tr + ' ' + k);
        checkSeq(await L.rec(page, k + tr), 'seq', 31, last, tr + ' ' + k);
        assert.strictEqual((await L.rec(page, k + tr)).gaps.length, 0, tr + ' ' + k + ': no gap');
      }
      for (const k of ['s999-', 'old-']) {
        await L.waitFor(async () => (await L.rec(page, k + tr)).msgs.length >= last, 15000, tr + ' ' + k)
          .catch(async (e) => { const r = await L.rec(page, k + tr); r.msgs = r.msgs.map((m) => m.id).join(','); console.log('# ' + JSON.stringify(r)); throw e; });
        const r = await L.rec(page, k + tr);
        checkSeq(r, 'seq', 1, last, tr + ' ' + k);
        assert.strictEqual(r.gaps.length, 1, tr + ' ' + k + ': one gap');
        assert.strictEqual(r.gaps[0].channel, 'seq');
        assert.strictEqual(Number(r.gaps[0].last_seen), k === 'old-' ? 5 : 999);
        assert.strictEqual(r.gaps[0].epoch, epoch, tr + ' ' + k + ': the gap names the current epoch');
      }
      for (const k of ['s0-', 's30-', 'e30-', 's999-', 'old-']) await cursorIs(k + tr, epoch + ':' + last);
      await closeAll(page);
    }
  });

  await t.test('poll and longpoll: a reply cut at 256 messages ("more":true) is followed at once, not after the interval', async () => {
    await closeAll(page);
    const M = 600;
    for (let i = 1; i <= M; i++) await L.publish(gw.base, 'big', 'note', i);
    const t0 = Date.now();
    await page.evaluate(([b, o]) => {
      window.mk('big-poll', b, 'big', Object.assign({}, o, { transports: ['poll'], pollInterval: 20000 }), { since: 0 });
      window.mk('big-longpoll', b, 'big', Object.assign({}, o, { transports: ['longpoll'] }), { since: 0 });
    }, [gw.base, fast]);
    for (const tr of ['poll', 'longpoll']) {
      await L.waitFor(async () => (await L.rec(page, 'big-' + tr)).msgs.length >= M, 15000, tr + ' to get ' + M);
      const r = await L.rec(page, 'big-' + tr);
      checkSeq(r, 'big', 1, M, tr);
      assert(r.stats.requests >= 3, tr + ': took several replies (' + r.stats.requests + ')');
    }
    assert(Date.now() - t0 < 15000, 'well before the 20 s poll interval');
    await closeAll(page);
  });

  await t.done();
})();
