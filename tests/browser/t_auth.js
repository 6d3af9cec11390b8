'use strict';
// The client's token option (docs/security.md) against a gateway with
// --token-secret-file: a function is asked for a fresh token on every
// (re)connect, so a stream whose token expires (SSE event: error, WS close
// 4001, poll 401) comes back and loses nothing, on each transport; a
// string token subscribes and publishes (HTTP publish with Bearer); the
// token's sub is the client id the welcome gives. Tokens are minted in
// node with crypto's HMAC, as a backend would.
const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const L = require('./lib');

const SECRET = 'browser-secret-0123456789';
const KEY = 'browser-api-key-0123456789';
const TRANSPORTS = ['ws', 'sse', 'longpoll', 'poll'];
const t = L.tap(TRANSPORTS.length + 2, 150000);

function b64(x) { return Buffer.from(x).toString('base64url'); }
function mint(claims, ttl) {
  const head = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64(JSON.stringify(Object.assign({ exp: Math.floor(Date.now() / 1000) + ttl }, claims)));
  return head + '.' + body + '.' + crypto.createHmac('sha256', SECRET).update(head + '.' + body).digest('base64url');
}

(async () => {
  let browser, page, gw, minted = 0;
  try {
    const dir = L.tmpdir('auth');
    fs.writeFileSync(path.join(dir, 'secret'), SECRET);
    fs.writeFileSync(path.join(dir, 'key'), KEY);
    gw = await L.startGateway(['--token-secret-file', path.join(dir, 'secret'), '--api-key-file',
      path.join(dir, 'key'), '--heartbeat', '1']);
    browser = await L.launch();
    ({ page } = await L.clientPage(browser, gw.base));
    // the page's backend: 2 s tokens for 'sam' on its channels
    await page.exposeFunction('mintToken', (ch) => { minted++; return mint({ sub: 'sam', channels: [ch], publish: [ch] }, 2); });
  } catch (e) {
    console.log('# setup failed: ' + (e && e.stack || e));
  }
  const apikey = { 'Content-Type': 'application/json', Authorization: 'apikey ' + KEY };

  for (const tr of TRANSPORTS) {
    await t.test(tr + ': a token function is asked again on reconnect; the expiry loses nothing', async () => {
      const ch = 'tok-' + tr;
      const before = minted;
      await page.evaluate(([b, c, tr]) => {
        window.T = window.T || {};
        const r = window.T[tr] = { msgs: [], errors: [], opens: 0, id: null };
        const cl = anypush.connect(b, {
          transports: [tr], heartbeat: 1,
          token: function (cb) { window.mintToken(c).then(function (x) { cb(null, x); }, cb); }
        });
        r.c = cl;
        cl.on('open', function () { r.opens++; r.id = cl.id; });
        cl.on('error', function (e) { r.errors.push(e.code); });
        cl.subscribe(c).on('message', function (d) { r.msgs.push(d); });
      }, [gw.base, ch, tr]);
      await L.waitFor(async () => (await page.evaluate((tr) => window.T[tr].opens, tr)) >= 1, 10000, 'open');
      for (let i = 0; i < 8; i++) {
        const r = await L.httpReq('POST', gw.base + '/channels/' + ch, JSON.stringify(i), apikey);
        assert.strictEqual(r.status, 201, 'publish ' + i + ': ' + r.body);
        await L.sleep(600);
      }
      await L.waitFor(async () => (await page.evaluate((tr) => window.T[tr].msgs.length, tr)) >= 8, 15000,
        'all 8 messages');
      const r = await page.evaluate((tr) => { const x = window.T[tr]; x.c.close(); return { msgs: x.msgs, errors: x.errors, opens: x.opens, id: x.id }; }, tr);
      console.log('# ' + tr + ': ' + (minted - before) + ' tokens, ' + r.opens + ' opens, errors ' + JSON.stringify(r.errors));
      assert.deepStrictEqual(r.msgs, [0, 1, 2, 3, 4, 5, 6, 7], 'every message once, in order, across the expiries');
      assert.strictEqual(r.id, 'sam', "the client id is the token's sub");
      if (tr === 'poll' || tr === 'longpoll') {
        assert.ok(minted - before >= 1, 'the token function was asked');
      } else {
        assert.ok(minted - before >= 2 && r.opens >= 2, 'a fresh token after the expiry (' + (minted - before) + ')');
      }
    });
  }

  await t.test('a string token: subscribe and an HTTP publish with Bearer; a wrong one is an error', async () => {
    const tok = mint({ sub: 'pat', channels: ['s'], publish: ['s'] }, 60);
    const out = await page.evaluate(([b, tok]) => new Promise((resolve) => {
      const c = anypush.connect(b, { transports: ['longpoll'], token: tok });
      const got = [];
      c.subscribe('s').on('message', function (d) { got.push(d); });
      c.on('open', function () {
        c.publish('s', 'message', 'hi', function (err, id) {
          setTimeout(function () { c.close(); resolve({ err: err && err.code, id: id, got: got, who: c.id }); }, 1500);
        });
      });
    }), [gw.base, tok]);
    assert.deepStrictEqual(out, { err: null, id: 1, got: ['hi'], who: 'pat' }, 'publish acked and received');
    const bad = await page.evaluate((b) => new Promise((resolve) => {
      const c = anypush.connect(b, { transports: ['poll'], token: 'x.y.z' });
      c.subscribe('s');
      c.on('error', function (e) { c.close(); resolve(e.code || e.status); });
    }), gw.base);
    assert.ok(bad, 'a bad token is reported: ' + bad);
  });

  // a channel added to a running poll subscription: the client asks
  // /channels/X/info for its tail, which needs the token as a subscribe
  // does (a 401 there left the client retrying for ever)
  await t.test('poll: a channel added later learns its tail with the token', async () => {
    const tok = mint({ sub: 'quinn', channels: ['p1', 'p2'] }, 60);
    await page.evaluate(([b, tok]) => {
      const r = window.ADD = { got: [], errors: [], opens: 0 };
      const c = r.c = anypush.connect(b, { transports: ['poll'], token: tok, pollInterval: 200 });
      c.on('open', function () { r.opens++; });
      c.on('error', function (e) { r.errors.push(e.code); });
      c.subscribe('p1').on('message', function (d) { r.got.push(['p1', d]); });
    }, [gw.base, tok]);
    await L.waitFor(async () => (await page.evaluate(() => window.ADD.opens)) >= 1, 10000, 'open on p1');
    let r = await L.httpReq('POST', gw.base + '/channels/p1', '1', apikey);
    assert.strictEqual(r.status, 201, r.body);
    await L.waitFor(async () => (await page.evaluate(() => window.ADD.got.length)) >= 1, 10000, 'p1 message');
    await page.evaluate(() => {
      const ch = window.ADD.c.subscribe('p2');
      ch.on('subscribed', function () { window.ADD.p2 = true; });
      ch.on('message', function (d) { window.ADD.got.push(['p2', d]); });
    });
    await L.waitFor(async () => page.evaluate(() => window.ADD.p2 === true), 10000, 'p2 subscribed');
    r = await L.httpReq('POST', gw.base + '/channels/p2', '2', apikey);
    assert.strictEqual(r.status, 201, r.body);
    await L.waitFor(async () => (await page.evaluate(() => window.ADD.got.length)) >= 2, 10000, 'p2 message');
    const out = await page.evaluate(() => { const x = window.ADD; x.c.close(); return { got: x.got, errors: x.errors }; });
    assert.deepStrictEqual(out.got, [['p1', 1], ['p2', 2]], 'each message once');
    assert.deepStrictEqual(out.errors, [], 'no error on the way');
  });

  t.done();
})();
