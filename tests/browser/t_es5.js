'use strict';
// web/anypush.js is ES5 (acorn --ecma5), uses neither fetch nor Promise,
// and loads as a CommonJS module, an AMD module and a plain script.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const { execFileSync } = require('child_process');
const L = require('./lib');

const FILE = path.join(L.WEB, 'anypush.js');
const ACORN = path.join(__dirname, 'node_modules', 'acorn', 'bin', 'acorn');
const t = L.tap(4, 30000);

(async () => {
  const src = fs.readFileSync(FILE, 'utf8');

  await t.test('acorn --ecma5 parses anypush.js', async () => {
    try {
      execFileSync(process.execPath, [ACORN, '--ecma5', '--silent', FILE], { stdio: 'pipe' });
    } catch (e) {
      throw new Error('not ES5: ' + String(e.stderr || e.stdout || e.message));
    }
    // and the check itself bites: ES2015 syntax is refused
    let refused = false;
    try {
      execFileSync(process.execPath, [ACORN, '--ecma5', '--silent'], { input: 'var f = () => 1;', stdio: 'pipe' });
    } catch (e) { refused = true; }
    assert(refused, 'acorn --ecma5 accepted an arrow function');
  });

  await t.test('no fetch, Promise or other post-ES5 API in the code', async () => {
    const acorn = require('acorn');
    const names = new Set();
    // every identifier the code names (comments and strings do not count)
    for (const tok of acorn.tokenizer(src, { ecmaVersion: 5 })) {
      if (tok.type.label === 'name') names.add(tok.value);
    }
    for (const bad of ['fetch', 'Promise', 'Symbol', 'Map', 'Set', 'WeakMap', 'Proxy', 'Reflect',
      'async', 'await', 'includes', 'startsWith', 'endsWith', 'assign', 'padStart', 'find', 'findIndex']) {
      assert(!names.has(bad), 'uses ' + bad);
    }
  });

  await t.test('loads as a CommonJS module and as an AMD module', async () => {
    const cjs = require(FILE);
    assert.strictEqual(typeof cjs.connect, 'function');
    assert.deepStrictEqual(cjs.transports, ['ws', 'sse', 'longpoll', 'poll']);
    let amd = null;
    const define = function (deps, factory) { amd = factory(); };
    define.amd = {};
    vm.runInNewContext(src, { define: define });
    assert(amd && typeof amd.connect === 'function', 'AMD define got the module');
  });

  await t.test('loads as a plain script: a global anypush, even with only XMLHttpRequest', async () => {
    const ctx = { XMLHttpRequest: function () {}, setTimeout: setTimeout, clearTimeout: clearTimeout };
    ctx.self = ctx;
    vm.runInNewContext(src, ctx);
    assert(ctx.anypush && typeof ctx.anypush.connect === 'function');
    assert.strictEqual(ctx.anypush.supported('ws'), false);
    assert.strictEqual(ctx.anypush.supported('sse'), false);
    assert.strictEqual(ctx.anypush.supported('longpoll'), true);
    const c = ctx.anypush.connect('http://127.0.0.1:1');
    assert(/^[A-Za-z0-9_-]{22}$/.test(c.id), 'client id ' + c.id);
    c.close();
  });

  await t.done();
})();
