/* The exhibition slideshow: one award-winning work per slide, advancing by itself every
 * data-interval seconds; arrow keys (and Page Up/Down) move, Space pauses, F goes full
 * screen, P plays the slide's song. Songs play only when asked: nothing sounds by itself,
 * and a song that is playing holds the slideshow until it ends. */
(function () {
  'use strict';
  var root = document.getElementById('vm-exhibition');
  if (!root) return;
  var slides = Array.prototype.slice.call(root.querySelectorAll('.vm-slide'));
  var count = document.getElementById('vm-ex-count');
  var pauseBtn = document.getElementById('vm-ex-pause');
  var strings = document.getElementById('vm-ex-strings').dataset;
  var audio = document.getElementById('vm-ex-audio');
  var seconds = Math.max(5, parseInt(root.dataset.interval, 10) || 12);
  var i = 0, paused = false, timer = null, playing = null;

  function stopSong() {
    if (playing) { playing.setAttribute('aria-pressed', 'false'); playing = null; }
    audio.pause();
  }
  function show(n) {
    if (!slides.length) return;
    stopSong();
    i = (n + slides.length) % slides.length;
    slides.forEach(function (s, j) { s.hidden = j !== i; });
    count.textContent = (i + 1) + ' / ' + slides.length;
    schedule();
  }
  function schedule() {
    clearTimeout(timer);
    if (!paused && !playing && slides.length > 1) {
      timer = setTimeout(function () { show(i + 1); }, seconds * 1000);
    }
  }
  function setPaused(p) {
    paused = p;
    pauseBtn.setAttribute('aria-pressed', String(p));
    pauseBtn.textContent = p ? strings.resume : strings.pause;
    root.dataset.paused = p ? '1' : '0';
    schedule();
  }
  function toggleSong(btn) {
    if (!btn) return;
    if (playing === btn) { stopSong(); schedule(); return; }
    stopSong();
    audio.src = btn.dataset.audio;
    audio.play().then(function () {
      playing = btn;
      btn.setAttribute('aria-pressed', 'true');
      clearTimeout(timer);
    }).catch(function () { /* refused: stay silent */ });
  }
  audio.addEventListener('ended', function () { stopSong(); schedule(); });
  function fullscreen() {
    if (document.fullscreenElement) document.exitFullscreen();
    else if (document.documentElement.requestFullscreen) document.documentElement.requestFullscreen().catch(function () {});
  }
  document.getElementById('vm-ex-prev').addEventListener('click', function () { show(i - 1); });
  document.getElementById('vm-ex-next').addEventListener('click', function () { show(i + 1); });
  pauseBtn.addEventListener('click', function () { setPaused(!paused); });
  document.getElementById('vm-ex-full').addEventListener('click', fullscreen);
  slides.forEach(function (s) {
    var b = s.querySelector('.vm-play');
    if (b) b.addEventListener('click', function () { toggleSong(b); });
  });
  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var k = e.key;
    if (k === 'ArrowRight' || k === 'PageDown') { show(i + 1); e.preventDefault(); }
    else if (k === 'ArrowLeft' || k === 'PageUp') { show(i - 1); e.preventDefault(); }
    else if (k === 'Home') { show(0); e.preventDefault(); }
    else if (k === 'End') { show(slides.length - 1); e.preventDefault(); }
    else if (k === ' ' && e.target.tagName !== 'BUTTON') { setPaused(!paused); e.preventDefault(); }
    else if (k === 'f' || k === 'F') { fullscreen(); }
    else if (k === 'p' || k === 'P') { toggleSong(slides[i] && slides[i].querySelector('.vm-play')); }
  });
  root.dataset.ready = '1';
  show(0);
}());
