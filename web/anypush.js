/*!
 * anypush.js: the browser client of the anypush gateway.
 *
 * One file, ES5, no build step, no dependencies. Loads with a <script> tag
 * (global `anypush`), as a CommonJS module or as an AMD module.
 *
 * API
 *
 *   var c = anypush.connect(url, options);
 *     url: the gateway ('http://host:8080'); '' means this page's origin.
 *     options (all optional):
 *       transports   ['ws', 'sse', 'longpoll', 'poll'], the order to try;
 *                    one name pins the client to that transport
 *       presence     true: announce this client on every channel it
 *                    subscribes to (?presence=1): the gateway publishes
 *                    'join' / 'leave' messages {client, transport}
 *       clientId     this client's id, [A-Za-z0-9_-]{1,64}; default: made
 *                    up here (22 random characters)
 *       ackTimeout   ms to wait for a publish acknowledgement (10000)
 *       openTimeout, pollInterval, longpollTimeout, requestTimeout,
 *       reconnectDelay, reconnectDelayMax, heartbeat, env: see DEFAULTS
 *
 *   c.id           the client id. Sent as ?client= on every transport (and
 *                  again after every reconnect and fallback) and as
 *                  X-Client-Id on publishes: it is `from` of what this
 *                  client publishes, and what broadcast() excludes.
 *   c.transport    the transport in use: 'ws', 'sse', 'longpoll', 'poll'
 *   c.readyState   'connecting', 'open', 'reconnecting', 'idle', 'closed'
 *
 *   var ch = c.subscribe('news');                  // from now on
 *   var ch = c.subscribe('news', {since: '17'});   // messages after id 17
 *   var ch = c.subscribe('news', {since: '0'});    // all the history kept
 *     Several channels on one connection: subscribe() calls made in the
 *     same tick share one connection (`/channels/a,b` with the composite
 *     cursor "17,4"). A subscribe() later on reconnects with every
 *     channel's cursor, losing nothing. At most 32 channels per client.
 *     ch.cursor is the id of the last message seen on the channel.
 *
 *   ch.on('score', function (data, msg) { ... });  // one event name
 *   ch.on('*', function (msg) { ... });            // every message
 *   ch.on('join', function (who, msg) { ... });    // presence: {client, transport}
 *   ch.on('leave', function (who, msg) { ... });
 *   ch.on('gap', function (info) { ... });         // messages were lost
 *   ch.once(name, fn), ch.off(name[, fn])          // as usual
 *     msg is the envelope {type, channel, event, data, ts, from, id}.
 *
 *   ch.publish(event, data, [opts], [ack])
 *   c.publish(channel, event, data, [opts], [ack])
 *     Everyone on the channel gets it, this client too.
 *   ch.broadcast(event, data, [opts], [ack])
 *   c.broadcast(channel, event, data, [opts], [ack])
 *     Everyone on the channel but this client (every connection whose
 *     client id is c.id, whatever its transport) gets it. Its ack lets the
 *     channel's cursor step over it, so that a resume does not report a
 *     gap for own messages that have left the history.
 *     data: any JSON value; an ArrayBuffer (binary); a string with
 *     {text: true} (sent as text/plain). opts.timeout: ms for the ack.
 *     ack(err, id): id is the message's id in the channel (they increase);
 *     err {code, message[, status]}: 'timeout' after ackTimeout, 'network',
 *     or the gateway's error code ('too_large', 'bad_channel', ...).
 *
 *   ch.unsubscribe();  c.close();  c.cursor()  // the composite cursor
 *
 *   Events of the client, c.on(name, fn):
 *     'open'         {transport, reconnect, cursor}: connected (again)
 *     'close'        {transport, code, reason}: the connection was lost
 *     'reconnecting' {attempt, delay, transport}
 *     'transport'    (name, previous): the transport changed (fallback)
 *     'message'      (msg): every message of every channel
 *     'gap'          {channel, last_seen, cursor, transport}: history was
 *                    too short to resume: reload your state
 *     'error'        {code, message, transport}
 *
 *   var c = anypush.connect('http://localhost:8080', {presence: true});
 *   var ch = c.subscribe('chat:lobby');
 *   ch.on('chat', function (data, msg) { show(data.nick, data.text); });
 *   ch.on('join', function (who) { show(who.client + ' joined'); });
 *   ch.broadcast('chat', {nick: 'ann', text: 'hi'}, function (err, id) { ... });
 *
 * Transports, by the protocol's names: 'ws' (WebSocket), 'sse' (EventSource),
 * 'longpoll' and 'poll' (XMLHttpRequest). By default the client tries them in
 * that order, skips what the browser lacks, and moves down the list at run
 * time when one does not work here (a WebSocket that never opens, a stream
 * that delivers nothing within `openTimeout`, `404 transport_disabled`).
 *
 * It keeps a cursor per channel and resumes with it after every reconnect
 * and every transport switch, drops duplicates, and reports `gap` when the
 * gateway says messages were lost.
 */
(function (root, factory) {
  if (typeof define === 'function' && define.amd) {
    define([], factory);
  } else if (typeof module === 'object' && module.exports) {
    module.exports = factory();
  } else {
    root.anypush = factory();
  }
}(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  var VERSION = '1.0.0';
  var ORDER = ['ws', 'sse', 'longpoll', 'poll'];
  var CHANNEL_RE = /^[A-Za-z0-9_.:~-]{1,200}$/;
  var EVENT_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
  var ID_RE = /^[0-9]{1,20}$/;
  var CLIENT_RE = /^[A-Za-z0-9_-]{1,64}$/;
  var MAX_CHANNELS = 32;

  var DEFAULTS = {
    transports: null,       // null: ORDER
    openTimeout: 8000,      // ms for a ws/sse connection to deliver its welcome
    pollInterval: 1000,     // ms between short polls, counted after each reply
    longpollTimeout: 25,    // s the gateway holds a long poll
    requestTimeout: 15000,  // ms for a poll request / a probe
    ackTimeout: 10000,      // ms for a publish acknowledgement
    reconnectDelay: 500,    // ms, first backoff ceiling
    reconnectDelayMax: 15000,
    heartbeat: 15,          // s; until a welcome says otherwise
    clientId: null,         // null: made here, sent as ?client=
    presence: false,        // true: ?presence=1, join/leave on the channels
    env: null               // where WebSocket, EventSource, XMLHttpRequest
                            // are looked up; null: the global object. The
                            // demo passes {XMLHttpRequest: ...} to play an
                            // old browser.
  };

  /* ------------------------------------------------------------------ */
  /* small helpers                                                       */

  function now() { return new Date().getTime(); }

  function hasOwn(o, k) { return Object.prototype.hasOwnProperty.call(o, k); }

  function extend(dst, src) {
    var k;
    if (src) {
      for (k in src) {
        if (hasOwn(src, k) && src[k] !== undefined) { dst[k] = src[k]; }
      }
    }
    return dst;
  }

  function isArray(a) { return Object.prototype.toString.call(a) === '[object Array]'; }

  function indexOf(list, x) {
    var i;
    for (i = 0; i < list.length; i++) { if (list[i] === x) { return i; } }
    return -1;
  }

  function trim(s) { return s.replace(/^\s+|\s+$/g, ''); }

  /* Ids are unsigned 64-bit decimals: compare them as strings, so ids past
     2^53 keep their order. */
  function normId(x) {
    var s = String(x).replace(/^0+(?=[0-9])/, '');
    return s;
  }
  function cmpId(a, b) {
    a = normId(a); b = normId(b);
    if (a.length !== b.length) { return a.length < b.length ? -1 : 1; }
    return a === b ? 0 : (a < b ? -1 : 1);
  }
  function incId(a) {
    var d = normId(a).split(''), i = d.length - 1;
    while (i >= 0) {
      if (d[i] === '9') { d[i] = '0'; i--; } else { d[i] = String.fromCharCode(d[i].charCodeAt(0) + 1); break; }
    }
    if (i < 0) { d.unshift('1'); }
    return d.join('');
  }

  /* UTF-8 length of a string, for the byte counters. */
  function utf8len(s) {
    var n = 0, i, c;
    if (typeof s !== 'string') {
      return s && s.byteLength !== undefined ? s.byteLength : 0;
    }
    for (i = 0; i < s.length; i++) {
      c = s.charCodeAt(i);
      if (c < 0x80) { n += 1; } else if (c < 0x800) { n += 2; } else if (c >= 0xd800 && c < 0xdc00) { n += 4; i++; } else { n += 3; }
    }
    return n;
  }

  var ALPHA = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  function makeId() {
    var out = '', i, bytes = null, g = typeof self !== 'undefined' ? self : null;
    var cr = g && (g.crypto || g.msCrypto);
    if (cr && cr.getRandomValues && typeof Uint8Array !== 'undefined') {
      bytes = new Uint8Array(22);
      cr.getRandomValues(bytes);
    }
    for (i = 0; i < 22; i++) {
      out += ALPHA.charAt(bytes ? bytes[i] & 63 : Math.floor(Math.random() * 64));
    }
    return out;
  }

  function parseJSON(text) {
    try { return JSON.parse(text); } catch (e) { return undefined; }
  }

  function global() {
    if (typeof self !== 'undefined') { return self; }
    if (typeof window !== 'undefined') { return window; }
    return {};
  }

  /* Which transports this browser has, looked up when needed (so a page
     that removes WebSocket before connecting is honoured). env: where to
     look (default the global object). */
  function supported(name, env) {
    var g = env || global();
    switch (name) {
    case 'ws': return typeof g.WebSocket === 'function' || typeof g.WebSocket === 'object';
    case 'sse': return typeof g.EventSource === 'function' || typeof g.EventSource === 'object';
    case 'longpoll':
    case 'poll': return typeof g.XMLHttpRequest !== 'undefined';
    }
    return false;
  }

  /* A tiny event emitter. */
  function Emitter() { this._handlers = {}; }
  Emitter.prototype.on = function (name, fn) {
    (this._handlers[name] = this._handlers[name] || []).push(fn);
    return this;
  };
  Emitter.prototype.off = function (name, fn) {
    var list = this._handlers[name], i;
    if (!list) { return this; }
    if (!fn) { delete this._handlers[name]; return this; }
    i = indexOf(list, fn);
    if (i >= 0) { list.splice(i, 1); }
    return this;
  };
  Emitter.prototype.once = function (name, fn) {
    var self = this;
    function once() { self.off(name, once); fn.apply(this, arguments); }
    return this.on(name, once);
  };
  Emitter.prototype.emit = function (name) {
    var list = this._handlers[name], args = Array.prototype.slice.call(arguments, 1), i;
    if (!list) { return false; }
    list = list.slice();
    for (i = 0; i < list.length; i++) {
      try {
        list[i].apply(this, args);
      } catch (e) {
        /* a throwing handler must not break delivery to the next one */
        if (typeof setTimeout === 'function') {
          (function (err) { setTimeout(function () { throw err; }, 0); }(e));
        }
      }
    }
    return true;
  };

  function inherit(Child, Parent) {
    function F() {}
    F.prototype = Parent.prototype;
    Child.prototype = new F();
    Child.prototype.constructor = Child;
  }

  /* ------------------------------------------------------------------ */
  /* HTTP                                                                */

  /* One XHR. cb(err, status, body, xhr); err is set only for network
     errors and timeouts (status 0). */
  function request(client, method, url, opts, cb) {
    var G = client.options.env || global(), xhr = new G.XMLHttpRequest(), done = false, timer = null, k;
    function finish(err, status, text) {
      if (done) { return; }
      done = true;
      if (timer) { clearTimeout(timer); }
      xhr.onreadystatechange = null;
      if (text) { client.stats.bytes += utf8len(text); }
      cb(err, status, text, xhr);
    }
    client.stats.requests++;
    try {
      xhr.open(method, url, true);
      if (opts.headers) {
        for (k in opts.headers) {
          if (hasOwn(opts.headers, k)) { xhr.setRequestHeader(k, opts.headers[k]); }
        }
      }
      xhr.onreadystatechange = function () {
        if (xhr.readyState !== 4) { return; }
        if (xhr.status === 0) {
          finish({code: 'network', message: 'network error'}, 0, '');
        } else {
          finish(null, xhr.status, xhr.responseText);
        }
      };
      if (opts.timeout) {
        timer = setTimeout(function () {
          timer = null;
          try { xhr.abort(); } catch (e) { /* ignore */ }
          finish({code: 'timeout', message: 'no answer within ' + opts.timeout + ' ms'}, 0, '');
        }, opts.timeout);
      }
      xhr.send(opts.body === undefined ? null : opts.body);
    } catch (e) {
      setTimeout(function () { finish({code: 'network', message: String(e && e.message || e)}, 0, ''); }, 0);
    }
    return {
      abort: function () {
        if (done) { return; }
        done = true;
        if (timer) { clearTimeout(timer); }
        xhr.onreadystatechange = null;
        try { xhr.abort(); } catch (e) { /* ignore */ }
      }
    };
  }

  function errorOf(status, text) {
    var j = parseJSON(text);
    if (j && j.error && j.error.code) {
      return {code: j.error.code, message: j.error.message || j.error.code, status: status};
    }
    return {code: 'http_' + status, message: 'HTTP ' + status, status: status};
  }

  /* ------------------------------------------------------------------ */
  /* Channel                                                             */

  function Channel(client, name, since) {
    Emitter.call(this);
    this.client = client;
    this.name = name;
    /* the id of the last message seen on this channel, a decimal string;
       null: not known yet (start at the tail) */
    this.cursor = since === undefined || since === null ? null : normId(since);
    this.subscribed = true;
    /* ids of this client's own broadcasts on the channel, past the cursor:
       the gateway never sends them here, so the cursor steps over them */
    this._own = {};
    this._nown = 0;
  }
  inherit(Channel, Emitter);

  /* ch.on(event, fn): fn(data, envelope) for messages with that event name;
     '*' gets every message of the channel. */
  Channel.prototype.on = function (name, fn) {
    Emitter.prototype.on.call(this, name, fn);
    this.client._listen(name);
    return this;
  };

  Channel.prototype.publish = function (event, data, opts, ack) {
    return this.client.publish(this.name, event, data, opts, ack);
  };

  /* Like publish, but not to this client: see Client.broadcast. */
  Channel.prototype.broadcast = function (event, data, opts, ack) {
    return this.client.broadcast(this.name, event, data, opts, ack);
  };

  Channel.prototype.unsubscribe = function () {
    this.client._unsubscribe(this);
  };

  /* ------------------------------------------------------------------ */
  /* Client                                                              */

  function Client(baseUrl, opts) {
    var list, i, t;
    Emitter.call(this);
    this.options = extend(extend({}, DEFAULTS), opts || {});
    this.url = String(baseUrl || '').replace(/\/+$/, '');
    if (!this.url && typeof location !== 'undefined') {
      this.url = location.protocol + '//' + location.host;
    }
    if (this.options.clientId !== null && !CLIENT_RE.test(String(this.options.clientId))) {
      throw new Error('anypush: clientId must match [A-Za-z0-9_-]{1,64}, got ' + this.options.clientId);
    }
    this.id = this.options.clientId || makeId();
    this.transport = null;
    this.readyState = 'connecting';
    this.channels = {};
    this.channelList = [];
    this.heartbeat = this.options.heartbeat;
    this.stats = {requests: 0, bytes: 0, messages: 0, duplicates: 0, gaps: 0,
                  reconnects: 0, fallbacks: 0};

    list = this.options.transports || ORDER;
    if (typeof list === 'string') { list = [list]; }
    this.order = [];
    for (i = 0; i < list.length; i++) {
      t = list[i];
      if (indexOf(ORDER, t) < 0) { throw new Error('anypush: unknown transport ' + t); }
      if (indexOf(this.order, t) < 0) { this.order.push(t); }
    }
    this.skipped = [];      // transports the browser lacks
    this.failed = {};       // transport -> why it was left
    this._events = {message: true, welcome: true, gap: true};
    this._gen = 0;          // connection generation, to drop stale callbacks
    this._conn = null;
    this._timer = null;     // reconnect / poll timer
    this._attempt = 0;
    this._ti = 0;
    this._pendingConnect = null;
    this._closed = false;
    this._worked = {};      // transport -> it delivered a welcome / reply here
    this._strikes = {};     // transport -> failed opens since it last worked
  }
  inherit(Client, Emitter);

  Client.prototype._available = function () {
    var out = [], i;
    this.skipped = [];
    for (i = 0; i < this.order.length; i++) {
      if (!supported(this.order[i], this.options.env)) { this.skipped.push(this.order[i]); } else if (!this.failed[this.order[i]]) { out.push(this.order[i]); }
    }
    return out;
  };

  Client.prototype.subscribe = function (name, opts) {
    var ch;
    if (typeof name !== 'string' || !CHANNEL_RE.test(name) || name === '.' || name === '..') {
      throw new Error('anypush: bad channel name ' + name);
    }
    opts = opts || {};
    if (opts.since !== undefined && opts.since !== null && !ID_RE.test(String(opts.since))) {
      throw new Error('anypush: since must be a message id, got ' + opts.since);
    }
    if (hasOwn(this.channels, name)) { return this.channels[name]; }
    if (this.channelList.length >= MAX_CHANNELS) {
      throw new Error('anypush: at most ' + MAX_CHANNELS + ' channels per client');
    }
    ch = new Channel(this, name, opts.since);
    this.channels[name] = ch;
    this.channelList.push(name);
    this._schedule('subscribe');
    return ch;
  };

  Client.prototype._unsubscribe = function (ch) {
    var i = indexOf(this.channelList, ch.name);
    if (i < 0) { return; }
    this.channelList.splice(i, 1);
    delete this.channels[ch.name];
    ch.subscribed = false;
    this._schedule('unsubscribe');
  };

  /* (Re)connect soon with the current channel list: several subscribe()
     calls in one tick make one connection. */
  Client.prototype._schedule = function (why) {
    var self = this;
    if (this._closed || this._pendingConnect) { return; }
    this._pendingConnect = setTimeout(function () {
      self._pendingConnect = null;
      if (self._closed) { return; }
      self._drop();
      self._attempt = 0;
      if (self._timer) { clearTimeout(self._timer); self._timer = null; }
      self._connect();
    }, 0);
  };

  /* Register an event name for EventSource, which delivers only named
     events someone listens to. */
  Client.prototype._listen = function (name) {
    if (name === '*' || hasOwn(this._events, name)) { return; }
    if (!EVENT_RE.test(name)) { return; }
    this._events[name] = true;
    if (this._conn && this._conn.listen) { this._conn.listen(name); }
  };

  Client.prototype.cursor = function () {
    var out = [], i, c;
    for (i = 0; i < this.channelList.length; i++) {
      c = this.channels[this.channelList[i]].cursor;
      out.push(c === null ? '' : c);
    }
    return out.join(',');
  };

  Client.prototype._setState = function (s) {
    this.readyState = s;
  };

  Client.prototype._setTransport = function (t) {
    var prev = this.transport;
    if (prev === t) { return; }
    this.transport = t;
    this.emit('transport', t, prev);
  };

  /* Stop the current connection without telling anyone. */
  Client.prototype._drop = function () {
    this._gen++;
    if (this._conn) {
      var c = this._conn;
      this._conn = null;
      c.close();
    }
  };

  Client.prototype._connect = function () {
    var self = this, avail, t, missing = [], i, gen;
    if (this._closed) { return; }
    if (!this.channelList.length) {
      this._setState('idle');
      return;
    }
    avail = this._available();
    if (!avail.length) {
      this._setState('closed');
      this.emit('error', {code: 'no_transport', message: 'no usable transport (skipped: ' +
        this.skipped.join(',') + '; failed: ' + this._failedList() + ')'});
      return;
    }
    if (this._ti >= avail.length) { this._ti = avail.length - 1; }
    t = avail[this._ti];
    this._setTransport(t);
    if (this.readyState !== 'reconnecting') { this._setState('connecting'); }

    /* A composite cursor needs an id for every channel. When some channels
       have one and others do not (a channel added to a running
       subscription), learn where the others' tails are first. */
    for (i = 0; i < this.channelList.length; i++) {
      if (this.channels[this.channelList[i]].cursor === null) { missing.push(this.channelList[i]); }
    }
    if (missing.length && missing.length < this.channelList.length) {
      gen = ++this._gen;
      this._tails(missing, function (err) {
        if (gen !== self._gen) { return; }
        if (err) {
          /* the gateway is away, not this transport: try again later */
          self.emit('error', err);
          self._retry();
          return;
        }
        self._open(t);
      });
      return;
    }
    this._open(t);
  };

  Client.prototype._tails = function (names, cb) {
    var self = this, i = 0;
    function next() {
      var name;
      if (i >= names.length) { cb(null); return; }
      name = names[i++];
      request(self, 'GET', self.url + '/channels/' + name + '/info', {timeout: self.options.requestTimeout},
        function (err, status, text) {
          var j;
          if (err) { cb(err); return; }
          j = parseJSON(text);
          if (status !== 200 || !j || j.last_id === undefined) { cb(errorOf(status, text)); return; }
          if (self.channels[name] && self.channels[name].cursor === null) {
            self.channels[name].cursor = normId(j.last_id);
          }
          next();
        });
    }
    next();
  };

  Client.prototype._failedList = function () {
    var out = [], k;
    for (k in this.failed) { if (hasOwn(this.failed, k)) { out.push(k + ':' + this.failed[k]); } }
    return out.join(',');
  };

  Client.prototype._query = function (t) {
    var q = '?transport=' + t, cur = this.cursor();
    /* cursor() has an empty slot for a channel without a cursor; with
       every slot empty we start at the tail */
    if (cur.replace(/,/g, '') !== '') { q += '&since=' + cur; }
    q += '&client=' + this.id;
    if (this.options.presence) { q += '&presence=1'; }
    return q;
  };

  Client.prototype._path = function () {
    return '/channels/' + this.channelList.join(',');
  };

  Client.prototype._open = function (t) {
    var gen = ++this._gen, self = this;
    var ctx = {
      gen: gen,
      transport: t,
      live: function () { return gen === self._gen && !self._closed; }
    };
    this._conn = TRANSPORTS[t](this, ctx);
  };

  /* The connection is up (a welcome, or a first poll reply). */
  Client.prototype._opened = function (ctx, info) {
    if (!ctx.live()) { return; }
    var wasReconnect = this.readyState === 'reconnecting' || this._everOpened;
    this._attempt = 0;
    this._worked[ctx.transport] = true;
    this._strikes[ctx.transport] = 0;
    this._everOpened = true;
    if (info && info.heartbeat) { this.heartbeat = info.heartbeat; }
    if (info && info.client) { this.id = info.client; }
    this._setState('open');
    this.emit('open', {transport: ctx.transport, reconnect: !!wasReconnect, cursor: this.cursor()});
  };

  /* The composite cursor the gateway started us at: fill in unknown ones. */
  Client.prototype._startCursor = function (cursor) {
    var parts, i, ch;
    if (cursor === undefined || cursor === null) { return; }
    parts = String(cursor).split(',');
    if (parts.length !== this.channelList.length) { return; }
    for (i = 0; i < parts.length; i++) {
      ch = this.channels[this.channelList[i]];
      if (ch && ch.cursor === null && ID_RE.test(parts[i])) { ch.cursor = normId(parts[i]); this._skipOwn(ch); }
    }
  };

  /* One message envelope from any transport. */
  Client.prototype._message = function (ctx, m) {
    var ch;
    if (!ctx.live() || !m || m.id === undefined) { return; }
    ch = this.channels[m.channel];
    if (!ch) {
      /* a single-channel stream may omit nothing, but be lenient */
      if (this.channelList.length === 1 && m.channel === undefined) { ch = this.channels[this.channelList[0]]; } else { return; }
    }
    if (ch.cursor !== null && cmpId(m.id, ch.cursor) <= 0) {
      this.stats.duplicates++;
      return;
    }
    ch.cursor = normId(m.id);
    this._skipOwn(ch);
    this.stats.messages++;
    ch.emit(m.event || 'message', m.data, m);
    ch.emit('*', m);
    this.emit('message', m);
  };

  Client.prototype._gap = function (ctx, g) {
    var ch;
    if (!ctx.live() || !g) { return; }
    ch = this.channels[g.channel];
    if (!ch) { return; }
    if (g.cursor !== undefined && g.cursor !== null) { ch.cursor = normId(g.cursor); }
    /* the ids we knew of may mean other messages now (a restarted gateway
       counts from 1 again): forget them */
    ch._own = {};
    ch._nown = 0;
    this.stats.gaps++;
    var info = {channel: g.channel, last_seen: g.last_seen, cursor: g.cursor, transport: ctx.transport};
    ch.emit('gap', info);
    this.emit('gap', info);
  };

  /* Something went wrong with the connection of ctx.
     opened: it had opened (a welcome or reply arrived) at some point.
     err.code 'transport_disabled' / 'upgrade_required': this transport is
     turned off here; move down for good. */
  Client.prototype._fail = function (t, err, opened, ctx) {
    var self = this;
    if (ctx && !ctx.live()) { return; }
    if (this._closed) { return; }
    this._drop();
    if (err) { err.transport = t; }
    if (this.readyState === 'open') {
      this.emit('close', {transport: t, code: err && err.code, reason: err && err.message});
    }
    if (err && err.code !== 'silence' && err.code !== 'closed') { this.emit('error', err); }

    if (err && (err.code === 'transport_disabled' || err.code === 'upgrade_required' || err.code === 'bad_transport')) {
      this._demote(t, err.code);
      return;
    }
    if (opened || t === 'poll' || t === 'longpoll') {
      /* it worked here before, or it is plain HTTP, whose errors we can
         read: the network or the gateway is away; retry the same */
      this._retry();
      return;
    }
    /* A ws/sse connection that never delivered its welcome. A proxy that
       blocks upgrades or buffers streams, or the gateway being away: ask
       the gateway something plain to tell them apart. */
    this._setState('reconnecting');
    var gen = ++this._gen;
    request(this, 'GET', this.url + '/healthz', {timeout: this.options.requestTimeout}, function (perr, status) {
      if (gen !== self._gen || self._closed) { return; }
      if (perr || status === 0 || status >= 500) {
        self._retry();
        return;
      }
      /* The gateway answers plain HTTP, so this transport is what fails
         here. One that worked before gets a second chance. */
      self._strikes[t] = (self._strikes[t] || 0) + 1;
      if (self._worked[t] && self._strikes[t] < 2) {
        self._retry();
      } else {
        self._demote(t, err && err.code || 'failed');
      }
    });
  };

  Client.prototype._demote = function (t, why) {
    var avail = this._available();
    if (avail.length <= 1) {
      /* never give up the last one: keep retrying it */
      this._retry();
      return;
    }
    this.failed[t] = why;
    this.stats.fallbacks++;
    this._ti = 0;
    this._attempt = 0;
    this._setState('reconnecting');
    this._connect();
  };

  Client.prototype._retry = function () {
    var self = this, ceil, delay;
    if (this._closed) { return; }
    ceil = Math.min(this.options.reconnectDelayMax, this.options.reconnectDelay * Math.pow(2, this._attempt));
    delay = Math.floor(Math.random() * ceil); /* full jitter */
    this._attempt++;
    this.stats.reconnects++;
    this._setState('reconnecting');
    this.emit('reconnecting', {attempt: this._attempt, delay: delay, transport: this.transport});
    if (this._timer) { clearTimeout(this._timer); }
    this._timer = setTimeout(function () {
      self._timer = null;
      self._connect();
    }, delay);
  };

  /* Publish over HTTP. ack(err, id) once the gateway has the message. */
  Client.prototype.publish = function (channel, event, data, opts, ack) {
    var url, body, type, exclude, self = this;
    if (typeof opts === 'function') { ack = opts; opts = null; }
    opts = opts || {};
    if (event === null || event === undefined) { event = 'message'; }
    if (!CHANNEL_RE.test(channel)) { throw new Error('anypush: bad channel name ' + channel); }
    if (!EVENT_RE.test(event)) { throw new Error('anypush: bad event name ' + event); }
    url = this.url + '/channels/' + channel + '?event=' + event;
    exclude = !!(opts.excludeSender || opts.exclude_sender);
    if (exclude) { url += '&exclude_sender=1'; }
    if (typeof ArrayBuffer !== 'undefined' && data instanceof ArrayBuffer) {
      type = 'application/octet-stream'; body = data;
    } else if (opts.text && typeof data === 'string') {
      type = 'text/plain; charset=utf-8'; body = data;
    } else {
      type = 'application/json'; body = JSON.stringify(data === undefined ? null : data);
    }
    request(this, 'POST', url, {
      headers: {'Content-Type': type, 'X-Client-Id': this.id},
      body: body,
      timeout: opts.timeout || this.options.ackTimeout
    }, function (err, status, text) {
      var j = err ? null : parseJSON(text), ok = !err && status === 201 && j && j.id !== undefined;
      if (ok && exclude) { self._ownSent(channel, j.id); }
      if (!ack) { return; }
      if (err) { ack(err); } else if (ok) { ack(null, j.id); } else { ack(errorOf(status, text)); }
    });
    return self;
  };

  /* Publish to everyone on the channel but this client: the gateway leaves
     out every connection whose client id is this.id (X-Client-Id plus
     ?exclude_sender=1), whatever its transport. socket.io's
     socket.broadcast.emit. ack(err, id) as for publish. */
  Client.prototype.broadcast = function (channel, event, data, opts, ack) {
    var o = {}, k;
    if (typeof opts === 'function') { ack = opts; opts = null; }
    if (opts) {
      for (k in opts) { if (hasOwn(opts, k)) { o[k] = opts[k]; } }
    }
    o.excludeSender = true;
    return this.publish(channel, event, data, o, ack);
  };

  /* The ack of a broadcast: message id of channel name will never come
     here. Once the cursor reaches id - 1 it moves on to id, so a resume
     does not ask for it (and, once it has left the history, is not told of
     a gap). Only then: messages before it may still be on their way. */
  Client.prototype._ownSent = function (name, id) {
    var ch = hasOwn(this.channels, name) ? this.channels[name] : null, k;
    if (!ch || !ID_RE.test(String(id))) { return; }
    id = normId(id);
    if (ch.cursor !== null && cmpId(id, ch.cursor) <= 0) { return; }
    if (ch._nown >= 256) {
      /* forget the ones a gap skipped */
      for (k in ch._own) { if (hasOwn(ch._own, k) && ch.cursor !== null && cmpId(k, ch.cursor) <= 0) { delete ch._own[k]; ch._nown--; } }
      if (ch._nown >= 256) { return; }
    }
    if (!ch._own[id]) { ch._own[id] = true; ch._nown++; }
    this._skipOwn(ch);
  };

  Client.prototype._skipOwn = function (ch) {
    var n;
    if (ch.cursor === null || !ch._nown) { return; }
    n = incId(ch.cursor);
    while (ch._own[n]) {
      delete ch._own[n];
      ch._nown--;
      ch.cursor = n;
      n = incId(n);
    }
  };

  Client.prototype.close = function () {
    if (this._closed) { return; }
    var wasOpen = this.readyState === 'open';
    this._closed = true;
    this._drop();
    if (this._timer) { clearTimeout(this._timer); this._timer = null; }
    if (this._pendingConnect) { clearTimeout(this._pendingConnect); this._pendingConnect = null; }
    this._setState('closed');
    if (wasOpen) { this.emit('close', {transport: this.transport, code: 'client', reason: 'closed by the client'}); }
  };

  /* A watchdog: fn() after ms of silence; kick() restarts the count. */
  function watchdog(ms, fn) {
    var timer = null, w = {
      kick: function () {
        if (timer) { clearTimeout(timer); }
        timer = setTimeout(function () { timer = null; fn(); }, ms);
      },
      stop: function () { if (timer) { clearTimeout(timer); timer = null; } }
    };
    w.kick();
    return w;
  }

  function silenceMs(client) {
    /* more than two heartbeat intervals, plus slack for the gateway's tick */
    return client.heartbeat * 2000 + 2000;
  }

  /* ------------------------------------------------------------------ */
  /* Transports. Each returns {close(), listen?(name)}.                  */

  var TRANSPORTS = {};

  TRANSPORTS.ws = function (client, ctx) {
    var G = client.options.env || global(), ws, opened = false, dog, base;
    base = client.url.replace(/^http/, 'ws');
    function fail(err) {
      if (dog) { dog.stop(); }
      if (ws) {
        ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
        try { ws.close(); } catch (e) { /* ignore */ }
        ws = null;
      }
      client._fail('ws', err, opened, ctx);
    }
    client.stats.requests++;
    try {
      ws = new G.WebSocket(base + client._path() + client._query('ws'), 'anypush.v1');
    } catch (e) {
      setTimeout(function () { fail({code: 'ws_failed', message: String(e && e.message || e)}); }, 0);
      return {close: function () {}};
    }
    dog = watchdog(client.options.openTimeout, function () {
      fail({code: 'open_timeout', message: 'no welcome within ' + client.options.openTimeout + ' ms'});
    });
    ws.onmessage = function (e) {
      var f;
      if (!ctx.live()) { return; }
      client.stats.bytes += utf8len(e.data);
      f = parseJSON(e.data);
      if (!f) { return; }
      if (f.type === 'welcome') {
        opened = true;
        client._startCursor(f.cursor);
        client._opened(ctx, f);
        dog.stop();
        dog = watchdog(silenceMs(client), function () {
          fail({code: 'silence', message: 'no frame for two heartbeats'});
        });
        return;
      }
      if (dog && opened) { dog.kick(); }
      if (f.type === 'message') { client._message(ctx, f); } else if (f.type === 'gap') { client._gap(ctx, f); }
    };
    ws.onerror = function () { /* onclose follows */ };
    ws.onclose = function (e) {
      fail({code: opened ? 'closed' : 'ws_failed', message: 'WebSocket closed (' + e.code + (e.reason ? ' ' + e.reason : '') + ')', wsCode: e.code});
    };
    return {
      close: function () {
        if (dog) { dog.stop(); }
        if (ws) {
          ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
          try { ws.close(1000); } catch (e) { /* ignore */ }
          ws = null;
        }
      }
    };
  };

  TRANSPORTS.sse = function (client, ctx) {
    var G = client.options.env || global(), es, opened = false, dog, k;
    function fail(err) {
      if (dog) { dog.stop(); }
      if (es) { try { es.close(); } catch (e) { /* ignore */ } es = null; }
      client._fail('sse', err, opened, ctx);
    }
    function handler(e) {
      var d;
      if (!ctx.live() || !es) { return; }
      client.stats.bytes += utf8len(e.data);
      if (opened) { dog.kick(); }
      d = parseJSON(e.data);
      if (!d) { return; }
      if (e.type === 'welcome') {
        opened = true;
        client._startCursor(d.cursor !== undefined ? d.cursor : e.lastEventId);
        client._opened(ctx, d);
        dog.stop();
        /* The gateway sends its heartbeat as an "event: ping" too
           (EventSource hides comments), so silence past two heartbeats
           means a dead stream: reopen with the cursor, losing nothing. */
        dog = watchdog(silenceMs(client), function () {
          fail({code: 'silence', message: 'no event for two heartbeats'});
        });
      } else if (e.type === 'gap') {
        client._gap(ctx, d);
      } else if (d.type === 'message') {
        client._message(ctx, d);
      }
    }
    client.stats.requests++;
    try {
      es = new G.EventSource(client.url + client._path() + client._query('sse'));
    } catch (e) {
      setTimeout(function () { fail({code: 'sse_failed', message: String(e && e.message || e)}); }, 0);
      return {close: function () {}};
    }
    for (k in client._events) {
      if (hasOwn(client._events, k)) { es.addEventListener(k, handler, false); }
    }
    es.addEventListener('ping', handler, false);
    dog = watchdog(client.options.openTimeout, function () {
      fail({code: 'open_timeout', message: 'no welcome within ' + client.options.openTimeout + ' ms'});
    });
    es.onerror = function () {
      /* The browser would reconnect by itself with Last-Event-ID after a
         fixed 2 s; we reconnect ourselves, with backoff and our cursor. */
      if (!ctx.live()) { return; }
      fail({code: opened ? 'closed' : 'sse_failed', message: 'event stream ' + (opened ? 'ended' : 'failed')});
    };
    return {
      close: function () {
        if (dog) { dog.stop(); }
        if (es) { try { es.close(); } catch (e) { /* ignore */ } es = null; }
      },
      listen: function (name) { if (es) { es.addEventListener(name, handler, false); } }
    };
  };

  /* poll and longpoll: one request at a time, the next one only after the
     previous reply. */
  function httpTransport(t) {
    return function (client, ctx) {
      var req = null, timer = null, opened = false, stopped = false;
      function stop() {
        stopped = true;
        if (req) { req.abort(); req = null; }
        if (timer) { clearTimeout(timer); timer = null; }
      }
      function ask() {
        var url = client.url + client._path() + client._query(t), to = client.options.requestTimeout, hold;
        timer = null;
        if (stopped || !ctx.live()) { return; }
        if (t === 'longpoll') {
          /* the first request of a connection holds only a second: it
             tells us soon that long polling works here (and where the
             tail is); the next ones hold the full time */
          hold = opened ? client.options.longpollTimeout : 1;
          url += '&timeout=' + hold;
          to = hold * 1000 + client.options.requestTimeout;
        }
        req = request(client, 'GET', url, {timeout: to}, function (err, status, text, xhr) {
          var j, more;
          req = null;
          if (stopped || !ctx.live()) { return; }
          if (err) { stop(); client._fail(t, err, opened, ctx); return; }
          j = parseJSON(text);
          if (status !== 200 || !j || !isArray(j.messages)) {
            stop();
            client._fail(t, errorOf(status, text), opened, ctx);
            return;
          }
          if (!opened) {
            opened = true;
            var id = null;
            try { id = xhr.getResponseHeader('X-Client-Id'); } catch (e) { /* ignore */ }
            client._opened(ctx, id ? {client: id} : null);
            if (!ctx.live()) { return; }
          }
          more = client._reply(ctx, j);
          if (stopped || !ctx.live()) { return; }
          if (more || t === 'longpoll') {
            timer = setTimeout(ask, 0);
          } else {
            timer = setTimeout(ask, client.options.pollInterval);
          }
        });
      }
      ask();
      return {close: stop};
    };
  }
  TRANSPORTS.longpoll = httpTransport('longpoll');
  TRANSPORTS.poll = httpTransport('poll');

  /* A poll / long-poll reply: {"messages":[...],"next":"N"[,"gap":true][,"more":true]} */
  Client.prototype._reply = function (ctx, j) {
    var names = this.channelList.slice(), next = j.next !== undefined ? String(j.next).split(',') : null;
    var first = {}, i, m, name, ch, pos;
    if (next && next.length !== names.length) { next = null; }
    for (i = 0; i < j.messages.length; i++) {
      m = j.messages[i];
      if (m && m.channel !== undefined && !hasOwn(first, m.channel)) { first[m.channel] = m.id; }
    }
    if (j.gap && isArray(j.gaps) && j.gaps.length) {
      /* the gateway names the channels that lost messages */
      for (i = 0; i < j.gaps.length; i++) {
        if (j.gaps[i] && hasOwn(this.channels, j.gaps[i].channel)) {
          this._gap(ctx, j.gaps[i]);
          if (!ctx.live()) { return false; }
        }
      }
    } else if (j.gap) {
      /* An older gateway does not say which channel lost messages: it is the one
         whose first message (or, with none, whose next) does not follow
         our cursor. */
      for (i = 0; i < names.length; i++) {
        ch = this.channels[names[i]];
        if (!ch || ch.cursor === null) { continue; }
        if (hasOwn(first, names[i])) {
          if (cmpId(first[names[i]], incId(ch.cursor)) === 0) { continue; }
          pos = String(first[names[i]]);
          pos = pos === '0' ? '0' : (function (s) {
            /* s - 1 for a decimal string */
            var d = s.split(''), k = d.length - 1;
            while (k >= 0) { if (d[k] === '0') { d[k] = '9'; k--; } else { d[k] = String.fromCharCode(d[k].charCodeAt(0) - 1); break; } }
            return normId(d.join(''));
          }(pos));
        } else if (next && cmpId(next[i], ch.cursor) !== 0) {
          pos = next[i];
        } else {
          continue;
        }
        this._gap(ctx, {channel: names[i], last_seen: Number(ch.cursor), cursor: Number(pos)});
        ch.cursor = normId(pos);
        if (!ctx.live()) { return false; }
      }
    }
    for (i = 0; i < j.messages.length; i++) {
      this._message(ctx, j.messages[i]);
      if (!ctx.live()) { return false; }
    }
    if (next) {
      for (i = 0; i < names.length; i++) {
        name = names[i];
        ch = this.channels[name];
        if (ch && ID_RE.test(next[i]) && (ch.cursor === null || cmpId(next[i], ch.cursor) > 0)) { ch.cursor = normId(next[i]); }
        if (ch) { this._skipOwn(ch); }
      }
    }
    return !!j.more;
  };

  /* ------------------------------------------------------------------ */

  function connect(baseUrl, opts) {
    return new Client(baseUrl, opts);
  }

  return {
    connect: connect,
    Client: Client,
    Channel: Channel,
    transports: ORDER.slice(),
    supported: supported,
    version: VERSION
  };
}));
