'use strict';
// web/anypush.d.ts against web/anypush.js: an example app type-checks
// with `tsc --strict`, the usual mistakes are caught, every export and
// public method is declared, and web/package.json installs the client
// with npm from a tarball (require() and the types both resolve).
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const L = require('./lib');

const TSC = path.join(__dirname, 'node_modules', 'typescript', 'bin', 'tsc');
const TYPES = path.join(__dirname, 'types');
const DTS = path.join(L.WEB, 'anypush.d.ts');
const t = L.tap(4, 120000);

// tsc's diagnostics ("file(line,col): error TSnnnn: ..."), or [] when clean
function tsc(args, cwd) {
  try {
    execFileSync(process.execPath, [TSC].concat(args), { cwd: cwd, stdio: 'pipe' });
    return [];
  } catch (e) {
    const out = String(e.stdout || '') + String(e.stderr || '');
    const errs = out.split('\n').filter((l) => / error TS\d+/.test(l));
    if (!errs.length) throw new Error('tsc failed without a diagnostic: ' + out + e.message);
    return errs;
  }
}


(async () => {
  await t.test('an example app type-checks with tsc --strict', async () => {
    const errs = tsc(['-p', path.join(TYPES, 'tsconfig.json')], TYPES);
    assert.deepStrictEqual(errs, []);
  });

  await t.test('the usual mistakes are errors, each on its own line', async () => {
    // a copy of the project with misuse.ts in place of example.ts
    const dir = L.tmpdir('types');
    const conf = JSON.parse(fs.readFileSync(path.join(TYPES, 'tsconfig.json'), 'utf8'));
    conf.compilerOptions.paths = { 'anypush-client': [DTS] };
    conf.files = ['misuse.ts'];
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(conf));
    const src = fs.readFileSync(path.join(TYPES, 'misuse.ts'), 'utf8');
    fs.writeFileSync(path.join(dir, 'misuse.ts'), src);
    const want = [];
    src.split('\n').forEach((l, i) => { if (/\/\/ MISUSE$/.test(l)) want.push(i + 1); });
    assert(want.length >= 5, 'misuse.ts marks its mistakes');
    const got = new Set(tsc(['-p', path.join(dir, 'tsconfig.json')], dir).map((l) => {
      const m = /misuse\.ts\((\d+),\d+\)/.exec(l);
      assert(m, 'a diagnostic outside misuse.ts: ' + l);
      return Number(m[1]);
    }));
    assert.deepStrictEqual([...got].sort((a, b) => a - b), want);
  });

  await t.test('every export and public method of anypush.js is declared', async () => {
    const mod = require(path.join(L.WEB, 'anypush.js'));
    const dts = fs.readFileSync(DTS, 'utf8');
    const body = (cls) => {
      const m = new RegExp('class ' + cls + ' \\{([\\s\\S]*?)\\n  \\}').exec(dts);
      assert(m, 'class ' + cls + ' declared');
      return m[1];
    };
    for (const k of Object.keys(mod)) {
      assert(new RegExp('(function|const|class) ' + k + '\\b').test(dts), 'export ' + k + ' declared');
    }
    for (const cls of ['Client', 'Channel']) {
      const decl = body(cls);
      const names = new Set();
      for (let p = mod[cls].prototype; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
        Object.keys(p).filter((k) => k[0] !== '_' && k !== 'constructor').forEach((k) => names.add(k));
      }
      assert(names.size >= 5, cls + ' has public methods');
      for (const k of names) {
        assert(new RegExp('\\n    ' + k + '[<(]').test(decl), cls + '.' + k + ' declared');
      }
    }
  });

  await t.test('npm installs web/ from its tarball: require() and the types resolve', async () => {
    const dir = L.tmpdir('pkg');
    const npm = (args, cwd) => execFileSync('npm', args.concat(['--no-audit', '--no-fund',
      '--loglevel=error', '--offline']), { cwd: cwd, stdio: 'pipe' }).toString();
    const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', dir], L.WEB));
    const files = packed[0].files.map((f) => f.path).sort();
    assert.deepStrictEqual(files, ['anypush.d.ts', 'anypush.js', 'package.json']);
    const app = path.join(dir, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), '{"name":"app","private":true}');
    npm(['install', path.join(dir, packed[0].filename)], app);
    const out = execFileSync(process.execPath, ['-e',
      'const a = require("anypush-client"); console.log(typeof a.connect, a.version)'],
    { cwd: app }).toString().trim();
    assert.strictEqual(out, 'function ' + require(path.join(L.WEB, 'package.json')).version);
    // the types come with it: the example compiles against node_modules
    fs.copyFileSync(path.join(TYPES, 'example.ts'), path.join(app, 'example.ts'));
    const conf = JSON.parse(fs.readFileSync(path.join(TYPES, 'tsconfig.json'), 'utf8'));
    delete conf.compilerOptions.paths;
    delete conf.compilerOptions.baseUrl;
    fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify(conf));
    assert.deepStrictEqual(tsc(['-p', path.join(app, 'tsconfig.json')], app), []);
  });

  await t.done();
})();
