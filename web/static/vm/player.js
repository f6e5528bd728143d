/* Clip players that show the clip's known length before anything is downloaded.
 *
 * A browser's own controls on <audio preload="none"> say "0:00 / 0:00" until the file is
 * fetched. enhance() hides them and puts a play button, a position slider and
 * "0:00 / 1:23" (from the clip's stored duration, data-duration-ms) beside the element;
 * nothing is fetched until the play button is pressed (or the slider moved). Without
 * JavaScript the native controls stay.
 */
(function (root) {
  'use strict';

  var SVGNS = 'http://www.w3.org/2000/svg';
  var PATHS = {play: 'M8 5v14l11-7z', pause: 'M7 5h4v14H7zM13 5h4v14h-4z'};

  function icon(name) {
    var s = document.createElementNS(SVGNS, 'svg');
    s.setAttribute('viewBox', '0 0 24 24');
    s.setAttribute('width', '22');
    s.setAttribute('height', '22');
    s.setAttribute('aria-hidden', 'true');
    s.setAttribute('focusable', 'false');
    var p = document.createElementNS(SVGNS, 'path');
    p.setAttribute('d', PATHS[name]);
    p.setAttribute('fill', 'currentColor');
    s.appendChild(p);
    return s;
  }

  /** 83.4 -> "1:23" */
  function clock(seconds) {
    var s = Math.max(0, Math.round(seconds || 0));
    return Math.floor(s / 60) + ':' + ('0' + (s % 60)).slice(-2);
  }

  /** Replace `audio`'s native controls by a player showing its known duration. */
  function enhance(audio, t) {
    if (!audio || audio.getAttribute('data-vm-player') || !audio.parentNode) return null;
    var known = parseInt(audio.getAttribute('data-duration-ms'), 10);
    if (!(known > 0)) return null;  // nothing to show: keep the browser's controls
    audio.setAttribute('data-vm-player', '1');
    audio.removeAttribute('controls');
    audio.preload = 'none';
    var duration = known / 1000;
    var btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'vm-player-btn';
    var slider = document.createElement('input');
    slider.type = 'range';
    slider.className = 'vm-player-pos';
    slider.min = '0';
    slider.step = '1';
    slider.value = '0';
    slider.setAttribute('aria-label', t.ven_position);
    var time = document.createElement('span');
    time.className = 'vm-player-time';
    time.setAttribute('aria-hidden', 'true');  // the slider says it (aria-valuetext)
    var box = document.createElement('div');
    box.className = 'vm-player';
    box.appendChild(btn);
    box.appendChild(slider);
    box.appendChild(time);
    audio.parentNode.insertBefore(box, audio.nextSibling);

    function paintTime() {
      var pos = audio.currentTime || 0;
      var text = clock(pos) + ' / ' + clock(duration);
      time.textContent = text;
      slider.max = String(Math.max(1, Math.round(duration)));
      slider.value = String(Math.round(pos));
      slider.setAttribute('aria-valuetext', text);
    }
    function paintButton() {
      var playing = !audio.paused && !audio.ended;
      btn.textContent = '';
      btn.appendChild(icon(playing ? 'pause' : 'play'));
      btn.setAttribute('aria-label', playing ? t.pause : t.play);
    }
    btn.addEventListener('click', function () {
      if (audio.paused) {
        var p = audio.play();  // only ever from this tap
        if (p && p.catch) p.catch(paintButton);
      } else {
        audio.pause();
      }
    });
    slider.addEventListener('input', function () {
      audio.currentTime = Number(slider.value);
      paintTime();
    });
    audio.addEventListener('loadedmetadata', function () {
      if (isFinite(audio.duration) && audio.duration > 0) duration = audio.duration;
      paintTime();
    });
    audio.addEventListener('timeupdate', paintTime);
    ['play', 'pause', 'ended'].forEach(function (e) { audio.addEventListener(e, paintButton); });
    paintTime();
    paintButton();
    return box;
  }

  function enhanceAll(scope, t) {
    Array.prototype.forEach.call(scope.querySelectorAll('audio[data-duration-ms]'),
      function (a) { enhance(a, t); });
  }

  var api = {enhance: enhance, enhanceAll: enhanceAll, clock: clock};
  if (typeof module === 'object' && module.exports) module.exports = api;
  else root.vmPlayer = api;
}(this));
