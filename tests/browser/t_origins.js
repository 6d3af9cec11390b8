'use strict';
// Origins (issue 11): a page on another origin than the gateway is refused
// by the gateway itself, WebSocket and XMLHttpRequest alike (no cross-site
// WebSocket hijacking, no cross-site publish), until the gateway lists that
// origin in --allow-origin; then both work, with the page's origin echoed.
// The page is on one gateway (127.0.0.1:P1); the target gateways listen on
// other ports, which are other origins.
const assert = require('assert');
const L = require('./lib');

const t = L.tap(2, 60000);

// In the page: open a WebSocket on the channel, then publish over XHR, and
// say what each got. Raw browser APIs, so what is seen is the browser's.
// The publish waits for the welcome frame, not for onopen: lws writes the
// 101 before the session is on the bus, and the welcome's cursor is where
// a subscription without `since` starts (docs/protocol.md); a publish sent
// at onopen can land before it, and then is rightly not delivered.
async function tryBoth(page, base, ch) {
  return page.evaluate(([b, c]) => new Promise((resolve) => {
    const out = { ws: null, msg: null, xhr: null };
    const ws = new WebSocket(b.replace('http', 'ws') + '/channels/' + c + '?transport=ws', 'anypush.v1');
    const done = () => { try { ws.close(); } catch (e) { /* closed */ } resolve(out); };
    const publish = () => {
      const x = new XMLHttpRequest();
      x.open('POST', b + '/channels/' + c);
      x.setRequestHeader('Content-Type', 'application/json');
      x.onloadend = () => {
        out.xhr = x.status;
        if (out.ws !== 'open' || out.msg) done();
      };
      x.send('{"n":1}');
    };
    ws.onopen = () => { out.ws = 'open'; };
    ws.onmessage = (e) => {
      if (String(e.data).indexOf('"type":"welcome"') >= 0) { publish(); return; }
      if (String(e.data).indexOf('"n":1') < 0) return;
      out.msg = true;
      if (out.xhr !== null) done();
    };
    ws.onclose = (e) => { if (out.ws === null) { out.ws = 'closed ' + e.code; publish(); } };
    setTimeout(done, 8000);
  }), [base, ch]);
}

async function refused(gw) {
  const r = await L.httpReq('GET', gw.base + '/metrics');
  const m = /^anypush_origin_refused_total (\d+)$/m.exec(r.body);
  return m ? Number(m[1]) : -1;
}

(async () => {
  let browser, page, gw;
  try {
    browser = await L.launch();
    gw = await L.startGateway();
    ({ page } = await L.clientPage(browser, gw.base));
  } catch (e) {
    console.log('# setup failed: ' + (e && e.stack || e));
  }

  await t.test('a gateway without --allow-origin refuses a page on another origin: WebSocket and XHR publish', async () => {
    const other = await L.startGateway();
    const got = await tryBoth(page, other.base, 'x');
    console.log('# ' + JSON.stringify(got));
    assert.strictEqual(got.ws, 'closed 1006', 'the WebSocket handshake failed');
    assert.strictEqual(got.xhr, 0, 'the browser saw no readable answer (no CORS header on the 403)');
    assert.strictEqual(await refused(other), 2, 'the gateway refused both (anypush_origin_refused_total)');
    const info = JSON.parse((await L.httpReq('GET', other.base + '/channels/x/info')).body);
    assert.strictEqual(info.last_id, 0, 'the refused publish was not stored');
    await other.stop();
  });

  await t.test('with --allow-origin the page\'s origin, the same WebSocket and publish work, the origin echoed', async () => {
    const other = await L.startGateway(['--allow-origin', gw.base]);
    const got = await tryBoth(page, other.base, 'x');
    console.log('# ' + JSON.stringify(got));
    assert.strictEqual(got.ws, 'open', 'the WebSocket opened');
    // a status the page can read: the browser found its origin in
    // Access-Control-Allow-Origin (a header it does not let pages read)
    assert.strictEqual(got.xhr, 201, 'the publish was stored and readable');
    assert.strictEqual(got.msg, true, 'the WebSocket got the published message');
    assert.strictEqual(await refused(other), 0, 'nothing refused');
    await other.stop();
  });

  await t.done();
})();
