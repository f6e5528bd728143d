/* voicemap's service worker: only venues a family saved for offline, nothing else.
 *
 * Each saved venue has one Cache Storage cache, "vm-offline-<venue id>", holding the venue
 * page, the page's own scripts and styles, each clip's MP3 (the whole 200 response) and a
 * small record at META (what was saved, when, how big). The page (vm/offline.js) fills and
 * deletes these caches; this worker answers from them and prunes them:
 *  - a venue page: the network first (and the fresh copy replaces the saved one), the saved
 *    copy when offline;
 *  - a saved MP3: from the cache, Range requests answered by slicing the stored file;
 *  - on every online load of a saved venue page, on activation and on a "check" message,
 *    it asks GET /api/clips/status which saved clips are still published and deletes the
 *    others (withdrawn, rejected, or replaced by a new recording), so that a withdrawn
 *    child's voice does not stay on the phone once it is back online.
 * Requests for anything not saved go to the network untouched. */
'use strict';

var PREFIX = 'vm-offline-';
var META = '/__vm_offline__/meta';

function venueOfPath(path) {
  var m = /^\/venues\/([^\/?#]+)$/.exec(path);
  return m ? decodeURIComponent(m[1]) : null;
}

function savedNames() {
  return caches.keys().then(function (keys) {
    return keys.filter(function (k) { return k.indexOf(PREFIX) === 0; });
  });
}

function readMeta(cache) {
  return cache.match(META).then(function (r) { return r ? r.json() : null; });
}

function writeMeta(cache, meta) {
  return cache.put(META, new Response(JSON.stringify(meta),
    {headers: {'Content-Type': 'application/json'}}));
}

/* Ask which saved clips are still published; delete the others from the cache, and refresh
 * the saved page (it names the clips and carries their transcripts). Resolves to the
 * updated record, or null when the venue is not saved; rejects when offline. */
function prune(name) {
  return caches.open(name).then(function (cache) {
    return readMeta(cache).then(function (meta) {
      if (!meta) return null;
      var ids = Object.keys(meta.clips || {});
      var asked = ids.length ? fetch('/api/clips/status?ids=' + ids.map(encodeURIComponent)
        .join(','), {cache: 'no-store'}).then(function (r) {
          if (!r.ok) throw new Error('status ' + r.status);
          return r.json();
        }) : Promise.resolve({published: {}});
      return asked.then(function (status) {
        var gone = ids.filter(function (id) {
          var etag = meta.clips[id].etag;
          return status.published[id] === undefined || (etag && status.published[id] !== etag);
        });
        return Promise.all(gone.map(function (id) {
          return cache.delete(meta.clips[id].url).then(function () { delete meta.clips[id]; });
        })).then(function () {
          if (!gone.length) return meta;
          return refreshPages(cache, meta).then(function () {
            meta.bytes = Object.keys(meta.clips).reduce(function (n, id) {
              return n + (meta.clips[id].bytes || 0);
            }, meta.page_bytes || 0);
            meta.pruned = (meta.pruned || []).concat(gone);
            return writeMeta(cache, meta).then(function () { return meta; });
          });
        });
      });
    });
  });
}

/* Save a fresh copy of a venue page, with the scripts and styles it names (after a new
 * release their versioned /assets/ URLs change, and the saved page must still work
 * offline); the old versions' files are dropped. */
function keepPage(cache, url, response) {
  return response.text().then(function (html) {
    var wanted = [];
    var re = /(?:href|src)="(\/assets\/[^"?#]+)"/g;
    var m;
    while ((m = re.exec(html)) !== null) {
      if (wanted.indexOf(m[1]) < 0) wanted.push(m[1]);
    }
    return Promise.all(wanted.map(function (a) {
      return cache.match(a).then(function (have) {
        if (have) return null;
        return fetch(a).then(function (r) { if (r.ok) return cache.put(a, r); });
      });
    })).then(function () {
      var headers = new Headers(response.headers);
      headers.delete('Content-Encoding');  // the text is decoded now
      headers.delete('Content-Length');
      return cache.put(url, new Response(html, {status: response.status,
        statusText: response.statusText, headers: headers}));
    }).then(function () { return wanted; });
  });
}

function dropUnusedAssets(cache, used) {
  return cache.keys().then(function (keys) {
    return Promise.all(keys.map(function (req) {
      var path = new URL(req.url).pathname;
      if (path.indexOf('/assets/') === 0 && used.indexOf(path) < 0) return cache.delete(req);
    }));
  });
}

function refreshPages(cache, meta) {
  var used = [];
  var failed = false;
  return Promise.all((meta.pages || []).map(function (url) {
    return fetch(url, {cache: 'no-store'}).then(function (r) {
      if (r.ok) return keepPage(cache, url, r).then(function (w) { used = used.concat(w); });
      failed = true;
      if (r.status === 404) return cache.delete(url);
    }).catch(function () { failed = true; });
  })).then(function () {
    if (!failed && used.length) return dropUnusedAssets(cache, used);
  });
}

function pruneAll() {
  return savedNames().then(function (names) {
    return Promise.all(names.map(function (n) { return prune(n).catch(function () {}); }));
  });
}

// Any online page load of the site also checks every saved venue, at most once a minute
// while this worker runs (a new worker checks at once): a family who only opens the map
// still loses a withdrawn voice.
var CHECK_EVERY_MS = 60 * 1000;
var lastCheck = 0;

function checkSoon() {
  var now = Date.now();
  if (now - lastCheck < CHECK_EVERY_MS) return Promise.resolve();
  lastCheck = now;
  return pruneAll();
}

self.addEventListener('install', function () { self.skipWaiting(); });

// Where the browser offers it (an installed app in Chrome), a periodic check as well.
self.addEventListener('periodicsync', function (event) {
  if (event.tag === 'vm-offline-check') event.waitUntil(pruneAll());
});

self.addEventListener('activate', function (event) {
  event.waitUntil(self.clients.claim().then(pruneAll));
});

self.addEventListener('message', function (event) {
  var data = event.data || {};
  if (data.type !== 'check') return;
  var port = event.ports && event.ports[0];
  var done = (data.venue ? prune(PREFIX + data.venue) : pruneAll()).then(
    function (meta) { if (port) port.postMessage({ok: true, meta: meta || null}); },
    function (err) { if (port) port.postMessage({ok: false, error: String(err)}); });
  event.waitUntil(done);
});

function parseRange(header, size) {
  var m = /^bytes=(\d*)-(\d*)$/.exec(header || '');
  if (!m || (m[1] === '' && m[2] === '')) return null;
  var start, end;
  if (m[1] === '') {  // the last N bytes
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) return {unsatisfiable: true};
  return {start: start, end: end};
}

/* The saved MP3, whole or the asked range of it. */
function fromSaved(saved, request) {
  var range = request.headers.get('Range');
  if (!range) return saved;
  return saved.blob().then(function (blob) {
    var r = parseRange(range, blob.size);
    var type = saved.headers.get('Content-Type') || 'audio/mpeg';
    if (!r) return new Response(blob, {status: 200, headers: {'Content-Type': type,
      'Content-Length': String(blob.size), 'Accept-Ranges': 'bytes'}});
    if (r.unsatisfiable) return new Response(null, {status: 416, headers: {
      'Content-Range': 'bytes */' + blob.size}});
    return new Response(blob.slice(r.start, r.end + 1), {status: 206, headers: {
      'Content-Type': type, 'Accept-Ranges': 'bytes',
      'Content-Length': String(r.end - r.start + 1),
      'Content-Range': 'bytes ' + r.start + '-' + r.end + '/' + blob.size}});
  });
}

function matchSaved(request, name) {
  var url = new URL(request.url);
  var key = url.pathname + url.search;
  if (name) return caches.open(name).then(function (c) { return c.match(key); });
  return caches.match(key);
}

self.addEventListener('fetch', function (event) {
  var request = event.request;
  if (request.method !== 'GET') return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  var path = url.pathname;
  var venue = venueOfPath(path);

  if (venue !== null && request.mode === 'navigate') {
    var name = PREFIX + venue;
    event.respondWith(caches.has(name).then(function (saved) {
      if (!saved) {
        event.waitUntil(savedNames().then(function (names) {
          return names.length ? checkSoon() : null;
        }).catch(function () {}));
        return fetch(request);
      }
      function savedCopy() {
        return caches.open(name).then(function (c) {
          return c.match(path + url.search).then(function (r) {
            return r || c.match(path, {ignoreSearch: true});
          });
        });
      }
      return fetch(request).then(function (response) {
        if (response.status >= 500) {  // the server is down or busy: the saved copy is better
          return savedCopy().then(function (r) { return r || response; });
        }
        if (response.ok) {
          // Online: keep the saved copy current, and drop what is no longer published.
          var copy = response.clone();
          event.waitUntil(caches.open(name).then(function (c) {
            return readMeta(c).then(function (meta) {
              var key = path + url.search;
              if (meta && (meta.pages || []).indexOf(key) >= 0) return keepPage(c, key, copy);
            });
          }).then(function () { return prune(name); }).catch(function () {}));
        }
        return response;
      }, function () {
        return savedCopy().then(function (r) { return r || Response.error(); });
      });
    }));
    return;
  }

  if (request.mode === 'navigate') {
    event.waitUntil(savedNames().then(function (names) {
      return names.length ? checkSoon() : null;
    }).catch(function () {}));
    return;
  }

  if (/^\/audio\/[^\/]+\.mp3$/.test(path)) {
    event.respondWith(matchSaved(request).then(function (saved) {
      return saved ? fromSaved(saved, request) : fetch(request);
    }));
    return;
  }

  if (path.indexOf('/assets/') === 0) {
    event.respondWith(matchSaved(request).then(function (saved) {
      return saved || fetch(request);
    }));
  }
});
