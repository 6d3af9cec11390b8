'use strict';
// Old browsers, honestly (issue 13): an XMLHttpRequest without CORS (IE 8
// and 9) pointed at another origin is a clear 'no_transport' error at once,
// with no request and no retry, while the same XHR on the page's own origin
// works; and every GET carries a parameter of its own, so a browser that
// caches GETs (old IE) never answers a poll from its cache.
const assert = require('assert');
const L = require('./lib');

const t = L.tap(3, 60000);
const fast = { openTimeout: 2000, reconnectDelay: 100, reconnectDelayMax: 300, pollInterval: 100, requestTimeout: 3000 };

// In the page: an XMLHttpRequest like IE 9's (no withCredentials), made of
// the real one, that records every URL it opens.
async function installOldXhr(page) {
  await page.evaluate(() => {
    window.URLS = [];
    function OldXHR() {
      const self = this, x = new XMLHttpRequest();
      this._x = x; this.readyState = 0; this.status = 0; this.responseText = '';
      x.onreadystatechange = function () {
        self.readyState = x.readyState;
        if (x.readyState === 4) { self.status = x.status; self.responseText = x.responseText; }
        if (self.onreadystatechange) self.onreadystatechange();
      };
    }
    OldXHR.prototype.open = function (m, url, a) { window.URLS.push(m + ' ' + url); this._x.open(m, url, a); };
    OldXHR.prototype.setRequestHeader = function (k, v) { this._x.setRequestHeader(k, v); };
    OldXHR.prototype.send = function (b) { this._x.send(b); };
    OldXHR.prototype.abort = function () { this._x.abort(); };
    OldXHR.prototype.getResponseHeader = function (k) { return this._x.getResponseHeader(k); };
    window.OldXHR = OldXHR;
  });
}

(async () => {
  let browser, page, gw;
  try {
    browser = await L.launch();
    gw = await L.startGateway();
    ({ page } = await L.clientPage(browser, gw.base));
    await L.installRecorder(page);
    await installOldXhr(page);
  } catch (e) {
    console.log('# setup failed: ' + (e && e.stack || e));
  }

  await t.test('no CORS, another origin: no_transport at once, saying why; no request, no retry', async () => {
    // the page is on 127.0.0.1; localhost is the same gateway, another origin
    const other = gw.base.replace('127.0.0.1', 'localhost');
    assert.notStrictEqual(other, gw.base);
    await page.evaluate(([b, o]) => {
      o.env = { XMLHttpRequest: window.OldXHR };
      o.transports = ['longpoll', 'poll'];
      window.mk('cross', b, 'ie', o);
    }, [other, fast]);
    await L.waitFor(async () => (await L.rec(page, 'cross')).errors.length > 0, 5000, 'an error');
    await L.sleep(1500);
    const r = await L.rec(page, 'cross');
    assert.deepStrictEqual(r.errors, ['no_transport'], 'one error, no retry');
    assert.strictEqual(r.readyState, 'closed');
    assert.deepStrictEqual(await page.evaluate(() => window.URLS), [], 'no request was sent');
    const msg = await page.evaluate(() => new Promise((resolve) => {
      const c = anypush.connect(location.protocol + '//localhost:' + location.port,
        { env: { XMLHttpRequest: window.OldXHR }, transports: 'poll' });
      c.on('error', (e) => resolve(e.message));
      c.subscribe('ie2');
    }));
    assert(/cannot poll another origin/.test(msg) && msg.indexOf('localhost') >= 0, msg);
  });

  await t.test('no CORS, the page\'s own origin: long polling works and gets everything', async () => {
    await page.evaluate(([b, o]) => {
      o.env = { XMLHttpRequest: window.OldXHR };
      o.transports = ['longpoll'];
      window.URLS = [];
      window.mk('same', b, 'ie', o);
    }, [gw.base, fast]);
    await L.waitFor(async () => (await L.rec(page, 'same')).readyState === 'open', 10000, 'open');
    for (let i = 1; i <= 5; i++) await L.publish(gw.base, 'ie', 'score', i);
    await L.waitFor(async () => (await L.rec(page, 'same')).msgs.length >= 5, 10000, '5 messages');
    const r = await L.rec(page, 'same');
    assert.deepStrictEqual(r.msgs.map((m) => m.data), [1, 2, 3, 4, 5]);
    assert.deepStrictEqual(r.errors, []);
  });

  await t.test('every GET has a parameter of its own: polls with an unchanged cursor never repeat a URL', async () => {
    await page.evaluate(([b, o]) => {
      o.env = { XMLHttpRequest: window.OldXHR };
      o.transports = ['poll'];
      window.URLS = [];
      window.mk('poll', b, 'quiet', o);
    }, [gw.base, fast]);
    await L.waitFor(async () => (await page.evaluate(() => window.URLS.filter((u) => /transport=poll/.test(u)).length)) >= 6,
      10000, '6 polls');
    await L.publish(gw.base, 'quiet', 'score', 7);
    await L.waitFor(async () => (await L.rec(page, 'poll')).msgs.length >= 1, 10000, 'the message');
    const urls = await page.evaluate(() => window.URLS.filter((u) => /^GET /.test(u)));
    assert.strictEqual(new Set(urls).size, urls.length, 'a GET URL repeated: ' + urls.join(' '));
    // without the parameter, the polls after the first ask the same thing
    const bare = urls.filter((u) => /transport=poll/.test(u)).map((u) => u.replace(/[?&]_=[0-9a-z]+$/, ''));
    assert(bare.length >= 6 && new Set(bare.slice(1, 5)).size === 1, 'the cursor did not move: ' + bare.join(' '));
    assert.deepStrictEqual((await L.rec(page, 'poll')).msgs.map((m) => m.data), [7]);
  });

  await t.done();
})();
