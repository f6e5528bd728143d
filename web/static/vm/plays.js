/* Play counts: the first "play" of each clip on a page sends POST /api/clips/<id>/played
 * (no body, no cookie, nothing about the listener). Used on the map (popups, near-me list)
 * and the venue page. A saved clip plays from the offline cache without any request, so
 * this beacon is the only count; a play with no signal (or a server error) is remembered
 * as a number per clip in localStorage and sent when the phone is online again. */
(function () {
  'use strict';
  if (window.vmPlays) return;
  var PENDING = 'vm-plays-pending';
  var counted = {};

  function pending() {
    try { return JSON.parse(localStorage.getItem(PENDING) || '{}') || {}; } catch (e) { return {}; }
  }
  function remember(id) {
    try {
      var p = pending();
      p[id] = (p[id] || 0) + 1;
      localStorage.setItem(PENDING, JSON.stringify(p));
    } catch (e) { /* private mode: the play is not counted */ }
  }
  function send(id) {
    return fetch('/api/clips/' + encodeURIComponent(id) + '/played',
      {method: 'POST', keepalive: true, credentials: 'omit', cache: 'no-store'})
      .then(function (r) {
        // A server in trouble has not counted it: keep it for later. 404: the clip is gone.
        if (r.status >= 500 || r.status === 429) throw new Error('not counted: ' + r.status);
        return r.status;
      });
  }
  function flush() {
    var p = pending();
    var ids = Object.keys(p);
    if (!ids.length || !navigator.onLine) return;
    try { localStorage.removeItem(PENDING); } catch (e) { return; }
    ids.forEach(function (id) {
      var n = p[id];
      (function next() {
        if (n-- <= 0) return;
        send(id).then(next, function () { remember(id); });
      }());
    });
  }
  function clipOf(audio) {
    var fig = audio.closest && audio.closest('[data-clip]');
    if (fig) return fig.getAttribute('data-clip');
    var m = /\/audio\/([^\/?#]+)\.mp3(?:[?#]|$)/.exec(audio.getAttribute('src') || '');
    return m ? decodeURIComponent(m[1]) : null;
  }
  document.addEventListener('play', function (e) {
    if (!e.target || e.target.tagName !== 'AUDIO') return;
    var id = clipOf(e.target);
    if (!id || counted[id]) return;
    counted[id] = true;
    send(id).catch(function () { remember(id); });
  }, true);
  window.addEventListener('online', flush);
  flush();
  window.vmPlays = {flush: flush};
}());
