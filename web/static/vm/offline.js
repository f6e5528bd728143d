/* "Save for offline" on a venue page.
 *
 * Saving fills one Cache Storage cache ("vm-offline-<venue id>") with this page, its own
 * scripts and styles, and every clip's MP3; the service worker (/sw.js) answers from it when
 * there is no signal and prunes withdrawn clips when there is. What is saved is kept in the
 * cache itself (a record at /__vm_offline__/meta), so the button tells the truth even after
 * the browser was closed. Where there is no service worker (some in-app browsers) the button
 * stays hidden.
 * Play counts are vm/plays.js's.
 */
(function () {
  'use strict';
  var PREFIX = 'vm-offline-';
  var META = '/__vm_offline__/meta';
  var raw = document.getElementById('vm-offline-settings');
  if (!raw) return;
  var s = JSON.parse(raw.textContent);
  var t = s.t;
  if (s.manifest && !document.querySelector('link[rel="manifest"]')) {
    var link = document.createElement('link');
    link.rel = 'manifest';
    link.href = s.manifest;
    document.head.appendChild(link);
  }

  // --- save for offline ------------------------------------------------------------------
  var box = document.getElementById('vm-offline');
  if (!box || !('serviceWorker' in navigator) || !window.caches || !window.isSecureContext) return;
  var button = box.querySelector('button');
  var label = box.querySelector('.vm-off-label');
  var note = box.querySelector('.vm-off-note');
  var name = PREFIX + s.venue;
  var busy = false;

  function size(bytes) {
    if (bytes < 1024 * 1024) return Math.max(1, Math.round(bytes / 1024)) + ' KB';
    return (bytes / 1048576).toFixed(1) + ' MB';
  }
  function say(text) { note.textContent = text || ''; }

  function readMeta() {
    return caches.has(name).then(function (has) {
      if (!has) return null;
      return caches.open(name).then(function (c) { return c.match(META); })
        .then(function (r) { return r ? r.json() : null; });
    });
  }

  function show(meta) {
    box.hidden = false;
    box.setAttribute('data-saved', meta ? 'true' : 'false');
    button.setAttribute('aria-pressed', meta ? 'true' : 'false');
    label.textContent = meta ? t.off_remove : t.off_save;
    box.querySelector('.vm-off-state').textContent =
      meta ? t.off_saved.replace(/%\(size\)s|\{size\}/, size(meta.bytes)) : t.off_save_hint;
  }

  function own(url) {
    var u = new URL(url, location.href);
    return u.origin === location.origin ? u.pathname + u.search : null;
  }

  function pageUrls() {
    var urls = [];
    Array.prototype.forEach.call(document.querySelectorAll(
      'link[rel="stylesheet"][href], script[src]'), function (el) {
      var u = own(el.getAttribute('href') || el.getAttribute('src'));
      if (u && u.indexOf('/assets/') === 0 && urls.indexOf(u) < 0) urls.push(u);
    });
    return urls;
  }

  function save() {
    var cache;
    var meta = {venue: s.venue, saved_at: new Date().toISOString(), pages: [], clips: {},
      bytes: 0, page_bytes: 0};
    var here = location.pathname + location.search;
    var pages = [here];
    if (location.search) pages.push(location.pathname);

    function keep(url, response) {
      if (!response.ok || response.status !== 200) throw new Error(url + ': ' + response.status);
      return response.clone().blob().then(function (b) {
        return cache.put(url, response).then(function () { return b.size; });
      });
    }
    return navigator.serviceWorker.ready.then(function () {
      return caches.open(name);
    }).then(function (c) {
      cache = c;
      var jobs = pages.concat(pageUrls()).map(function (url) {
        return fetch(url, {cache: 'no-store', credentials: 'same-origin'}).then(function (r) {
          return keep(url, r);
        }).then(function (n) {
          if (pages.indexOf(url) >= 0) meta.pages.push(url);
          meta.page_bytes += n;
        });
      });
      Array.prototype.forEach.call(document.querySelectorAll('[data-clip] audio[src]'),
        function (audio) {
          var id = audio.closest('[data-clip]').getAttribute('data-clip');
          var url = own(audio.getAttribute('src'));
          if (!url) return;
          jobs.push(fetch(url, {cache: 'no-store'}).then(function (r) {
            var etag = (r.headers.get('ETag') || '').replace(/^W\//, '').replace(/"/g, '');
            return keep(url, r).then(function (n) {
              meta.clips[id] = {url: url, bytes: n, etag: etag};
            });
          }));
        });
      return Promise.all(jobs);
    }).then(function () {
      meta.bytes = meta.page_bytes + Object.keys(meta.clips).reduce(function (n, id) {
        return n + meta.clips[id].bytes;
      }, 0);
      return cache.put(META, new Response(JSON.stringify(meta),
        {headers: {'Content-Type': 'application/json'}}));
    }).then(function () { return meta; }, function (err) {
      // Nothing half-saved: a venue is saved whole or not at all.
      return caches.delete(name).then(function () { throw err; });
    });
  }

  function remove() { return caches.delete(name); }

  button.addEventListener('click', function () {
    if (busy) return;
    busy = true;
    button.disabled = true;
    readMeta().then(function (meta) {
      if (meta) {
        return remove().then(function () { show(null); say(t.off_removed); });
      }
      label.textContent = t.off_saving;
      say('');
      return save().then(function (m) {
        show(m);
        say('');
        // A periodic check of withdrawn clips where the browser offers it (installed apps).
        navigator.serviceWorker.ready.then(function (reg) {
          if (reg.periodicSync) {
            return reg.periodicSync.register('vm-offline-check', {minInterval: 12 * 3600 * 1000});
          }
        }).catch(function () {});
      },
        function () { show(null); say(t.off_failed); });
    }).then(function () { busy = false; button.disabled = false; });
  });

  // The worker's scope is the whole site (it is served from /sw.js) but it only ever
  // answers for what a family saved.
  navigator.serviceWorker.register(s.sw, {scope: '/'}).catch(function () {});

  // On every online load of a saved venue, ask the worker to drop withdrawn clips (it also
  // does so by itself when it sees the page load); then show what is left.
  function check() {
    var ctl = navigator.serviceWorker.controller;
    if (!ctl || !navigator.onLine) return readMeta();
    return new Promise(function (resolve) {
      var ch = new MessageChannel();
      var timer = setTimeout(resolve, 8000);
      ch.port1.onmessage = function () { clearTimeout(timer); resolve(); };
      ctl.postMessage({type: 'check', venue: s.venue}, [ch.port2]);
    }).then(readMeta);
  }
  readMeta().then(function (meta) {
    show(meta);
    if (meta && !navigator.onLine) say(t.off_offline);
    return meta ? check().then(function (m) {
      show(m);
      document.documentElement.setAttribute('data-vm-offline-checked', '1');
    }) : null;
  }).catch(function () {});
}());
